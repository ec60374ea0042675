#include "controlplane/audit/merkle.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/status_macros.h"

namespace warden::controlplane::audit {
namespace {

constexpr char kLeafPrefix = '\x00';
constexpr char kNodePrefix = '\x01';
constexpr char kSerializeVersion = '\x01';
constexpr size_t kSerializeHeader = 1 + 8;  // version, size.

// Largest power of two strictly below n; n >= 2.
uint64_t SplitPoint(uint64_t n) {
  return uint64_t{1} << (63 - __builtin_clzll(n - 1));
}

absl::Status CheckHash(absl::string_view what, absl::string_view hash) {
  if (hash.size() != kHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", hash.size(), " bytes, want ", kHashSize));
  }
  return absl::OkStatus();
}

absl::Status CheckProofHashes(absl::string_view kind,
                              const std::vector<std::string>& proof) {
  for (size_t i = 0; i < proof.size(); ++i) {
    if (proof[i].size() != kHashSize) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind, " proof hash ", i, " is ", proof[i].size(),
                       " bytes, want ", kHashSize));
    }
  }
  return absl::OkStatus();
}

// One step of the RFC 9162 verification loops (2.1.3.2 step 4, 2.1.4.2
// step 6) on the indices only: returns whether the proof hash is a left
// sibling, and advances fn and sn. Shared by the length computations and
// the verifiers so that both follow the same walk.
bool Step(uint64_t* fn, uint64_t* sn) {
  bool left = false;
  if ((*fn & 1) != 0 || *fn == *sn) {
    left = true;
    if ((*fn & 1) == 0) {
      while ((*fn & 1) == 0 && *fn != 0) {
        *fn >>= 1;
        *sn >>= 1;
      }
    }
  }
  *fn >>= 1;
  *sn >>= 1;
  return left;
}

// Number of hashes in the inclusion proof for index < size.
size_t InclusionProofLength(uint64_t index, uint64_t size) {
  uint64_t fn = index;
  uint64_t sn = size - 1;
  size_t n = 0;
  while (sn != 0) {
    Step(&fn, &sn);
    ++n;
  }
  return n;
}

// Number of hashes in the consistency proof for 0 < old_size < new_size.
size_t ConsistencyProofLength(uint64_t old_size, uint64_t new_size) {
  const bool power_of_two = (old_size & (old_size - 1)) == 0;
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  size_t n = power_of_two ? 0 : 1;  // the seed hash, unless it is old_root.
  while (sn != 0) {
    Step(&fn, &sn);
    ++n;
  }
  return n;
}

absl::StatusOr<std::string> ReadLeafHash(const HashReader& reader,
                                         uint64_t index) {
  WARDEN_ASSIGN_OR_RETURN(std::string hash, reader.LeafHashAt(index));
  if (hash.size() != kHashSize) {
    return absl::DataLossError(absl::StrCat("stored hash of leaf ", index,
                                            " is ", hash.size(),
                                            " bytes, want ", kHashSize));
  }
  return hash;
}

// MTH(D[begin : begin + n]) for n >= 1, recomputed from leaf hashes.
absl::StatusOr<std::string> SubtreeHash(const HashReader& reader,
                                        uint64_t begin, uint64_t n) {
  if (n == 1) return ReadLeafHash(reader, begin);
  const uint64_t k = SplitPoint(n);
  WARDEN_ASSIGN_OR_RETURN(std::string left, SubtreeHash(reader, begin, k));
  WARDEN_ASSIGN_OR_RETURN(std::string right,
                          SubtreeHash(reader, begin + k, n - k));
  return NodeHash(left, right);
}

// PATH(m, D[begin : begin + n]), appended to `out` leaf-first.
absl::Status Path(const HashReader& reader, uint64_t begin, uint64_t m,
                  uint64_t n, std::vector<std::string>* out) {
  if (n == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    WARDEN_RETURN_IF_ERROR(Path(reader, begin, m, k, out));
    WARDEN_ASSIGN_OR_RETURN(std::string sibling,
                            SubtreeHash(reader, begin + k, n - k));
    out->push_back(std::move(sibling));
  } else {
    WARDEN_RETURN_IF_ERROR(Path(reader, begin + k, m - k, n - k, out));
    WARDEN_ASSIGN_OR_RETURN(std::string sibling, SubtreeHash(reader, begin, k));
    out->push_back(std::move(sibling));
  }
  return absl::OkStatus();
}

// SUBPROOF(m, D[begin : begin + n], b), appended to `out`.
absl::Status SubProof(const HashReader& reader, uint64_t begin, uint64_t m,
                      uint64_t n, bool b, std::vector<std::string>* out) {
  if (m == n) {
    if (!b) {
      WARDEN_ASSIGN_OR_RETURN(std::string hash, SubtreeHash(reader, begin, n));
      out->push_back(std::move(hash));
    }
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    WARDEN_RETURN_IF_ERROR(SubProof(reader, begin, m, k, b, out));
    WARDEN_ASSIGN_OR_RETURN(std::string hash,
                            SubtreeHash(reader, begin + k, n - k));
    out->push_back(std::move(hash));
  } else {
    WARDEN_RETURN_IF_ERROR(
        SubProof(reader, begin + k, m - k, n - k, false, out));
    WARDEN_ASSIGN_OR_RETURN(std::string hash, SubtreeHash(reader, begin, k));
    out->push_back(std::move(hash));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LeafHash(absl::string_view leaf) {
  const char prefix = kLeafPrefix;
  return crypto::Sha256Concat({absl::string_view(&prefix, 1), leaf});
}

std::string NodeHash(absl::string_view left, absl::string_view right) {
  const char prefix = kNodePrefix;
  return crypto::Sha256Concat({absl::string_view(&prefix, 1), left, right});
}

std::string EmptyRoot() { return crypto::Sha256(""); }

absl::StatusOr<std::string> RootFromLeafHashes(
    const std::vector<std::string>& leaf_hashes) {
  TreeBuilder tree;
  for (size_t i = 0; i < leaf_hashes.size(); ++i) {
    if (leaf_hashes[i].size() != kHashSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("leaf hash ", i, " is ", leaf_hashes[i].size(),
                       " bytes, want ", kHashSize));
    }
    WARDEN_RETURN_IF_ERROR(tree.AppendLeafHash(leaf_hashes[i]));
  }
  return tree.Root();
}

// --- TreeBuilder ---

absl::Status TreeBuilder::AppendLeafHash(absl::string_view leaf_hash) {
  WARDEN_RETURN_IF_ERROR(CheckHash("leaf hash", leaf_hash));
  if (size_ == UINT64_MAX) {
    return absl::OutOfRangeError("tree is full (2^64 - 1 leaves)");
  }
  std::string hash(leaf_hash);
  // Each trailing set bit of size_ is a perfect subtree of the same height
  // as the one being completed: merge them, right to left.
  for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    hash = NodeHash(frontier_.back(), hash);
    frontier_.pop_back();
  }
  frontier_.push_back(std::move(hash));
  ++size_;
  return absl::OkStatus();
}

absl::Status TreeBuilder::AppendLeaf(absl::string_view leaf) {
  return AppendLeafHash(LeafHash(leaf));
}

std::string TreeBuilder::Root() const {
  if (frontier_.empty()) return EmptyRoot();
  std::string root = frontier_.back();
  for (size_t i = frontier_.size() - 1; i-- > 0;) {
    root = NodeHash(frontier_[i], root);
  }
  return root;
}

std::string TreeBuilder::Serialize() const {
  std::string out;
  out.reserve(kSerializeHeader + frontier_.size() * kHashSize);
  out.push_back(kSerializeVersion);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((size_ >> shift) & 0xff));
  }
  for (const std::string& hash : frontier_) out.append(hash);
  return out;
}

absl::StatusOr<TreeBuilder> TreeBuilder::Restore(absl::string_view bytes) {
  if (bytes.size() < kSerializeHeader) {
    return absl::DataLossError(absl::StrCat("tree state is ", bytes.size(),
                                            " bytes, shorter than its ",
                                            kSerializeHeader, "-byte header"));
  }
  if (bytes[0] != kSerializeVersion) {
    return absl::DataLossError(
        absl::StrCat("tree state has unknown version ",
                     static_cast<int>(static_cast<unsigned char>(bytes[0]))));
  }
  uint64_t size = 0;
  for (size_t i = 1; i < kSerializeHeader; ++i) {
    size = (size << 8) | static_cast<unsigned char>(bytes[i]);
  }
  const size_t count = __builtin_popcountll(size);
  const size_t want = kSerializeHeader + count * kHashSize;
  if (bytes.size() != want) {
    return absl::DataLossError(
        absl::StrCat("tree state of size ", size, " must be ", want, " bytes (",
                     count, " frontier hashes), got ", bytes.size()));
  }
  TreeBuilder tree;
  tree.size_ = size;
  tree.frontier_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    tree.frontier_.emplace_back(
        bytes.substr(kSerializeHeader + i * kHashSize, kHashSize));
  }
  return tree;
}

// --- Proofs ---

absl::StatusOr<std::string> VectorHashReader::LeafHashAt(uint64_t index) const {
  if (index >= leaf_hashes_.size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "leaf ", index, " is past the end (", leaf_hashes_.size(), " leaves)"));
  }
  return leaf_hashes_[index];
}

absl::StatusOr<std::vector<std::string>> InclusionProof(
    const HashReader& reader, uint64_t index, uint64_t tree_size) {
  if (index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is outside a tree of size ", tree_size));
  }
  std::vector<std::string> proof;
  WARDEN_RETURN_IF_ERROR(Path(reader, 0, index, tree_size, &proof));
  return proof;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const HashReader& reader, uint64_t old_size, uint64_t new_size) {
  if (old_size > new_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "old size ", old_size, " is larger than new size ", new_size));
  }
  std::vector<std::string> proof;
  if (old_size == 0 || old_size == new_size) return proof;
  WARDEN_RETURN_IF_ERROR(SubProof(reader, 0, old_size, new_size, true, &proof));
  return proof;
}

// --- Verification ---

absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t index,
                             uint64_t tree_size,
                             const std::vector<std::string>& proof,
                             absl::string_view root) {
  // RFC 9162 2.1.3.2 step 1.
  if (index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is outside a tree of size ", tree_size));
  }
  WARDEN_RETURN_IF_ERROR(CheckHash("leaf hash", leaf_hash));
  WARDEN_RETURN_IF_ERROR(CheckHash("root hash", root));
  WARDEN_RETURN_IF_ERROR(CheckProofHashes("inclusion", proof));
  const size_t want = InclusionProofLength(index, tree_size);
  if (proof.size() != want) {
    return absl::PermissionDeniedError(
        absl::StrCat("inclusion proof has ", proof.size(), " hashes; leaf ",
                     index, " of a tree of size ", tree_size, " needs ", want));
  }
  // Steps 2-5.
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) {  // unreachable after the length check; kept per the RFC.
      return absl::PermissionDeniedError("inclusion proof is too long");
    }
    r = Step(&fn, &sn) ? NodeHash(p, r) : NodeHash(r, p);
  }
  if (sn != 0) {
    return absl::PermissionDeniedError("inclusion proof is too short");
  }
  if (r != root) {
    return absl::PermissionDeniedError(
        absl::StrCat("inclusion proof for leaf ", index, " of a tree of size ",
                     tree_size, " does not lead to the given root"));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                               absl::string_view old_root,
                               absl::string_view new_root,
                               const std::vector<std::string>& proof) {
  if (old_size > new_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "old size ", old_size, " is larger than new size ", new_size));
  }
  WARDEN_RETURN_IF_ERROR(CheckHash("old root hash", old_root));
  WARDEN_RETURN_IF_ERROR(CheckHash("new root hash", new_root));
  WARDEN_RETURN_IF_ERROR(CheckProofHashes("consistency", proof));
  if (old_size == new_size) {
    if (!proof.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "consistency proof between equal sizes must be empty, has ",
          proof.size(), " hashes"));
    }
    if (old_root != new_root) {
      return absl::PermissionDeniedError(absl::StrCat(
          "trees of equal size ", old_size, " have different roots"));
    }
    return absl::OkStatus();
  }
  if (old_size == 0) {
    if (!proof.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "consistency proof from the empty tree must be empty, has ",
          proof.size(), " hashes"));
    }
    if (old_root != EmptyRoot()) {
      return absl::PermissionDeniedError(
          "old root of size 0 is not the empty tree's root");
    }
    return absl::OkStatus();
  }
  // RFC 9162 2.1.4.2. Step 1 (an empty proof fails) is covered by the
  // length check: 0 < old_size < new_size always needs at least one hash.
  const size_t want = ConsistencyProofLength(old_size, new_size);
  if (proof.size() != want) {
    return absl::PermissionDeniedError(
        absl::StrCat("consistency proof has ", proof.size(), " hashes; sizes ",
                     old_size, " -> ", new_size, " need ", want));
  }
  // Step 2: a power-of-two old tree is itself a node of the new tree.
  size_t next = 0;
  std::string fr;
  if ((old_size & (old_size - 1)) == 0) {
    fr = std::string(old_root);
  } else {
    fr = proof[next++];
  }
  std::string sr = fr;
  // Steps 3-4.
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  // Steps 5-6.
  for (; next < proof.size(); ++next) {
    const std::string& c = proof[next];
    if (sn == 0) {  // unreachable after the length check; kept per the RFC.
      return absl::PermissionDeniedError("consistency proof is too long");
    }
    if (Step(&fn, &sn)) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
    } else {
      sr = NodeHash(sr, c);
    }
  }
  // Step 7.
  if (sn != 0) {
    return absl::PermissionDeniedError("consistency proof is too short");
  }
  if (fr != old_root) {
    return absl::PermissionDeniedError(
        absl::StrCat("consistency proof ", old_size, " -> ", new_size,
                     " does not lead to the old root"));
  }
  if (sr != new_root) {
    return absl::PermissionDeniedError(
        absl::StrCat("consistency proof ", old_size, " -> ", new_size,
                     " does not lead to the new root"));
  }
  return absl::OkStatus();
}

}  // namespace warden::controlplane::audit
