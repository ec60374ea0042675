// libFuzzer target: the audit log's Merkle proof verifiers, tree state
// restore and signed-checkpoint parser on arbitrary bytes. The first byte
// picks a mode; the rest is split into fields.
//
// Invariants (abort() when violated):
//   - every error carries a message;
//   - a proof that verifies stops verifying when one bit of its root flips;
//   - a note from the input never verifies under the key generated at
//     start-up (no forgeries); its text, re-signed with that key, verifies
//     as exactly that text, and as a checkpoint iff the text parses, and a
//     parsed checkpoint writes back byte for byte;
//   - for a tree of input-derived leaves, TreeBuilder (through a
//     Serialize/Restore at an input-chosen point) agrees with
//     RootFromLeafHashes, genuine proofs verify and mutated ones do not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/crypto.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/merkle.h"

namespace {

namespace audit = warden::controlplane::audit;

// Consumes the input front to back; reads past the end give zeros / "".
class Input {
 public:
  explicit Input(absl::string_view data) : rest_(data) {}
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | Byte();
    return v;
  }
  std::string Take(size_t n) {
    const absl::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(out.size());
    return std::string(out);
  }
  // The rest as hashes: 32-byte chunks, the last possibly shorter.
  std::vector<std::string> Hashes() {
    std::vector<std::string> out;
    while (!rest_.empty()) out.push_back(Take(audit::kHashSize));
    return out;
  }
  absl::string_view rest() const { return rest_; }

 private:
  absl::string_view rest_;
};

void Check(bool ok) {
  if (!ok) abort();
}

void CheckError(const absl::Status& s) {
  Check(s.ok() || !s.message().empty());
}

std::string FlipBit(std::string s, size_t bit) {
  if (!s.empty()) s[(bit / 8) % s.size()] ^= static_cast<char>(1 << (bit % 8));
  return s;
}

struct Trust {
  warden::crypto::Ed25519KeyPair key;
  std::string name = "fuzz.example/log";
  std::string verifier;
};

const Trust& GetTrust() {
  static const Trust* const kTrust = [] {
    auto* t = new Trust;
    auto key = warden::crypto::GenerateEd25519Key();
    if (!key.ok()) abort();
    t->key = *key;
    auto vkey = audit::VerifierKey(t->name, t->key.public_pem);
    if (!vkey.ok()) abort();
    t->verifier = *vkey;
    return t;
  }();
  return *kTrust;
}

void FuzzInclusion(Input& in) {
  const uint64_t index = in.U64();
  const uint64_t size = in.U64();
  const std::string leaf = in.Take(audit::kHashSize);
  const std::string root = in.Take(audit::kHashSize);
  const std::vector<std::string> proof = in.Hashes();
  const absl::Status s = audit::VerifyInclusion(leaf, index, size, proof, root);
  CheckError(s);
  if (s.ok()) {
    Check(!audit::VerifyInclusion(leaf, index, size, proof, FlipBit(root, 0))
               .ok());
  }
}

void FuzzConsistency(Input& in) {
  const uint64_t old_size = in.U64();
  const uint64_t new_size = in.U64();
  const std::string old_root = in.Take(audit::kHashSize);
  const std::string new_root = in.Take(audit::kHashSize);
  const std::vector<std::string> proof = in.Hashes();
  const absl::Status s =
      audit::VerifyConsistency(old_size, new_size, old_root, new_root, proof);
  CheckError(s);
  if (s.ok() && old_size != 0) {  // from size 0 only old_root is checked.
    Check(!audit::VerifyConsistency(old_size, new_size, old_root,
                                    FlipBit(new_root, 7), proof)
               .ok());
  }
}

void FuzzCheckpoint(Input& in) {
  const Trust& trust = GetTrust();
  const absl::string_view note = in.rest();

  // Arbitrary bytes as a note, a body, a verifier key and a tree state.
  const absl::StatusOr<audit::Checkpoint> forged =
      audit::VerifyCheckpoint(note, trust.verifier);
  CheckError(forged.status());
  Check(!forged.ok());
  CheckError(audit::VerifyNote(note, trust.verifier).status());
  Check(!audit::VerifyNote(note, trust.verifier).ok());

  const absl::StatusOr<audit::Checkpoint> body =
      audit::ParseCheckpointBody(note);
  CheckError(body.status());
  if (body.ok()) Check(audit::CheckpointBody(*body).value() == note);

  const absl::StatusOr<audit::ParsedVerifierKey> vkey =
      audit::ParseVerifierKey(note);
  CheckError(vkey.status());
  if (vkey.ok()) {
    Check(audit::VerifierKey(vkey->name, vkey->public_pem).value() == note);
  }

  const absl::StatusOr<audit::TreeBuilder> tree =
      audit::TreeBuilder::Restore(note);
  CheckError(tree.status());
  if (tree.ok()) Check(tree->Serialize() == note);

  // Re-sign the text part with the trusted key to reach the body parser
  // behind the signature check.
  const size_t split = note.rfind("\n\n");
  const absl::string_view text =
      split == absl::string_view::npos ? note : note.substr(0, split + 1);
  const absl::StatusOr<std::string> signed_note =
      audit::SignNote(text, trust.name, trust.key.private_pem);
  CheckError(signed_note.status());
  if (!signed_note.ok()) return;
  const absl::StatusOr<std::string> opened =
      audit::VerifyNote(*signed_note, trust.verifier);
  Check(opened.ok() && *opened == text);
  const absl::StatusOr<audit::Checkpoint> parsed =
      audit::ParseCheckpointBody(text);
  const absl::StatusOr<audit::Checkpoint> verified =
      audit::VerifyCheckpoint(*signed_note, trust.verifier);
  CheckError(verified.status());
  Check(verified.ok() == parsed.ok());
  if (verified.ok()) {
    Check(*verified == *parsed);
    Check(audit::SignCheckpoint(*verified, trust.name, trust.key.private_pem)
              .value() == *signed_note);  // Ed25519 is deterministic.
  }
}

void FuzzTree(Input& in) {
  const uint64_t n = in.Byte() % 80;
  const uint64_t restore_at = n == 0 ? 0 : in.Byte() % (n + 1);
  std::vector<std::string> hashes;
  for (uint64_t i = 0; i < n; ++i) {
    hashes.push_back(audit::LeafHash(in.Take(in.Byte() % 16)));
  }
  const uint64_t index = n == 0 ? 0 : in.Byte() % n;
  const uint64_t old_size = in.Byte() % (n + 1);
  const size_t bit = in.Byte() | (size_t{in.Byte()} << 8);

  const std::string root = audit::RootFromLeafHashes(hashes).value();
  audit::TreeBuilder tree;
  for (uint64_t i = 0; i < n; ++i) {
    if (i == restore_at) {
      absl::StatusOr<audit::TreeBuilder> again =
          audit::TreeBuilder::Restore(tree.Serialize());
      Check(again.ok() && again->Root() == tree.Root());
      tree = *std::move(again);
    }
    Check(tree.AppendLeafHash(hashes[i]).ok());
  }
  Check(tree.size() == n && tree.Root() == root);
  const audit::VectorHashReader reader(hashes);

  if (n > 0) {
    const std::vector<std::string> proof =
        audit::InclusionProof(reader, index, n).value();
    Check(audit::VerifyInclusion(hashes[index], index, n, proof, root).ok());
    if (!proof.empty()) {
      std::vector<std::string> bad = proof;
      const size_t which = (bit / 256) % bad.size();
      bad[which] = FlipBit(bad[which], bit % 256);
      Check(!audit::VerifyInclusion(hashes[index], index, n, bad, root).ok());
      bad = proof;
      bad.pop_back();
      Check(!audit::VerifyInclusion(hashes[index], index, n, bad, root).ok());
    }
    std::vector<std::string> longer = proof;
    longer.push_back(root);
    Check(!audit::VerifyInclusion(hashes[index], index, n, longer, root).ok());
    // A different leaf at the same place. (Not "the same leaf elsewhere":
    // with repeated leaves, e.g. a,b,a,b, that can be true.)
    if (index + 1 < n && hashes[index + 1] != hashes[index]) {
      Check(!audit::VerifyInclusion(hashes[index + 1], index, n, proof, root)
                 .ok());
    }
  }

  const std::vector<std::string> prefix(hashes.begin(),
                                        hashes.begin() + old_size);
  const std::string old_root = audit::RootFromLeafHashes(prefix).value();
  const std::vector<std::string> proof =
      audit::ConsistencyProof(reader, old_size, n).value();
  Check(audit::VerifyConsistency(old_size, n, old_root, root, proof).ok());
  Check(proof.empty() == (old_size == 0 || old_size == n));
  if (!proof.empty()) {
    std::vector<std::string> bad = proof;
    const size_t which = (bit / 256) % bad.size();
    bad[which] = FlipBit(bad[which], bit % 256);
    Check(!audit::VerifyConsistency(old_size, n, old_root, root, bad).ok());
    Check(!audit::VerifyConsistency(old_size, n, FlipBit(old_root, bit), root,
                                    proof)
               .ok());
    bad = proof;
    bad.pop_back();
    Check(!audit::VerifyConsistency(old_size, n, old_root, root, bad).ok());
  }
  std::vector<std::string> longer = proof;
  longer.push_back(root);
  Check(!audit::VerifyConsistency(old_size, n, old_root, root, longer).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 65536) return 0;
  Input in(
      absl::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  switch (data[0] % 4) {
    case 0:
      FuzzInclusion(in);
      break;
    case 1:
      FuzzConsistency(in);
      break;
    case 2:
      FuzzCheckpoint(in);
      break;
    default:
      FuzzTree(in);
      break;
  }
  return 0;
}
