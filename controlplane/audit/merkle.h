// Merkle tree hashing, proofs and verification for the audit log, exactly as
// RFC 6962 section 2.1 / RFC 9162 section 2.1 define them, with SHA-256.
//
//   leaf hash  = SHA-256(0x00 || leaf)
//   node hash  = SHA-256(0x01 || left || right)
//   empty tree = SHA-256("")
//
// A tree of n > 1 leaves splits at k, the largest power of two below n: its
// root is NodeHash(MTH(D[0:k]), MTH(D[k:n])). Every hash is 32 bytes of raw
// binary; sizes and indices are 0-based leaf counts.
//
// Verification needs only hashes, so a proxy, an auditor or `wardenctl audit
// verify` can check a proof without the log. Error codes, for every function
// here: InvalidArgument for input that cannot describe any proof (a hash not
// 32 bytes long, an index outside the tree, an old size above the new one);
// PermissionDenied for a well-formed request whose proof does not verify
// (wrong length, wrong hashes, wrong root): the data must not be trusted.
//
// Thread-safety: free functions are pure. A TreeBuilder is a value type with
// no internal locking; share one only under the caller's lock.
#ifndef WARDEN_CONTROLPLANE_AUDIT_MERKLE_H_
#define WARDEN_CONTROLPLANE_AUDIT_MERKLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::controlplane::audit {

// Every hash in this file: SHA-256 output size.
inline constexpr size_t kHashSize = 32;

// LeafHash("abc") = SHA-256(0x00 || "abc").
std::string LeafHash(absl::string_view leaf);

// NodeHash(l, r) = SHA-256(0x01 || l || r). Takes any byte strings; callers
// pass two 32-byte hashes.
std::string NodeHash(absl::string_view left, absl::string_view right);

// EmptyRoot() = SHA-256(""), the root of the tree with no leaves
// (e3b0c442...b855).
std::string EmptyRoot();

// RootFromLeafHashes(hashes) is MTH over the leaves whose leaf hashes are
// `hashes` (already LeafHash()ed), e.g. to recompute a tree from an exported
// log. EmptyRoot() for an empty list; InvalidArgument if any entry is not 32
// bytes. O(n) time, O(log n) extra memory.
absl::StatusOr<std::string> RootFromLeafHashes(
    const std::vector<std::string>& leaf_hashes);

// TreeBuilder is the compact range [0, size) of an append-only tree: the
// roots of the perfect subtrees along its right edge, one per set bit of
// size (the "frontier"), so memory is O(log n). It gives the root of the
// current size without access to earlier leaves, and Serialize()/Restore()
// let the control plane persist it (e.g. next to the log entries in RocksDB,
// in the same WriteBatch) and resume after a restart.
//
//   TreeBuilder tree;
//   tree.AppendLeaf("record 0");
//   std::string root = tree.Root();          // == LeafHash("record 0")
//   std::string saved = tree.Serialize();
//   absl::StatusOr<TreeBuilder> again = TreeBuilder::Restore(saved);
class TreeBuilder {
 public:
  TreeBuilder() = default;

  // AppendLeafHash adds one leaf given its LeafHash(). InvalidArgument if
  // `leaf_hash` is not 32 bytes; OutOfRange if the tree already holds
  // 2^64 - 1 leaves. On error the builder is unchanged.
  absl::Status AppendLeafHash(absl::string_view leaf_hash);

  // AppendLeaf(leaf) is AppendLeafHash(LeafHash(leaf)).
  absl::Status AppendLeaf(absl::string_view leaf);

  // Number of leaves appended.
  uint64_t size() const { return size_; }

  // Root() is MTH of the leaves so far (EmptyRoot() when size() == 0).
  // O(log n) hashes.
  std::string Root() const;

  // Serialize() returns a self-describing byte string: version byte 0x01,
  // size as 8 bytes big-endian, then the frontier hashes (popcount(size) of
  // them, 32 bytes each, largest subtree first). At most 2057 bytes.
  std::string Serialize() const;

  // Restore(bytes) rebuilds a builder from Serialize() output. DataLoss for
  // anything else (unknown version, truncated, wrong number of hashes):
  // persisted state that does not parse must not be silently reset.
  static absl::StatusOr<TreeBuilder> Restore(absl::string_view bytes);

 private:
  uint64_t size_ = 0;
  // Roots of the perfect subtrees covering [0, size_), left to right (one
  // per set bit of size_, highest bit first).
  std::vector<std::string> frontier_;
};

// HashReader gives random access to stored leaf hashes, so proofs can be
// generated from whatever holds the log (RocksDB in the control plane, a
// vector in tests). Implementations must be safe to call concurrently if
// the caller generates proofs concurrently.
class HashReader {
 public:
  virtual ~HashReader() = default;
  // LeafHashAt(i) returns the LeafHash() of leaf i (32 bytes). Any error
  // (e.g. OutOfRange, NotFound, Unavailable) is passed through by the proof
  // functions unchanged.
  virtual absl::StatusOr<std::string> LeafHashAt(uint64_t index) const = 0;
};

// VectorHashReader serves leaf hashes from memory (tests, small tools).
class VectorHashReader final : public HashReader {
 public:
  explicit VectorHashReader(std::vector<std::string> leaf_hashes)
      : leaf_hashes_(std::move(leaf_hashes)) {}
  // OutOfRange for an index past the end.
  absl::StatusOr<std::string> LeafHashAt(uint64_t index) const override;
  uint64_t size() const { return leaf_hashes_.size(); }

 private:
  std::vector<std::string> leaf_hashes_;
};

// InclusionProof(reader, index, tree_size) is PATH(index, D[0:tree_size])
// of RFC 9162 2.1.3.1: the sibling hashes from the leaf up to the root.
// InvalidArgument if index >= tree_size; DataLoss if the reader returns a
// hash that is not 32 bytes; reader errors pass through. Reads all
// tree_size leaf hashes: O(n) time per proof (see README).
absl::StatusOr<std::vector<std::string>> InclusionProof(
    const HashReader& reader, uint64_t index, uint64_t tree_size);

// ConsistencyProof(reader, old_size, new_size) is PROOF(old_size,
// D[0:new_size]) of RFC 9162 2.1.4.1; empty when old_size is 0 or equals
// new_size. InvalidArgument if old_size > new_size; otherwise as
// InclusionProof. O(new_size) time per proof.
absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    const HashReader& reader, uint64_t old_size, uint64_t new_size);

// VerifyInclusion checks that the leaf with hash `leaf_hash` is at `index`
// in the tree of `tree_size` leaves whose root is `root` (RFC 9162
// 2.1.3.2). InvalidArgument if index >= tree_size or a hash is not 32
// bytes; PermissionDenied if the proof has the wrong number of hashes or
// does not lead to `root`.
//
// The proof binds the leaf to `root`; it binds `tree_size` only as far as
// the shape of the path depends on it, so `root` must come from a signed
// checkpoint that names the size.
absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t index,
                             uint64_t tree_size,
                             const std::vector<std::string>& proof,
                             absl::string_view root);

// VerifyConsistency checks that the tree of `old_size` leaves with root
// `old_root` is a prefix of the tree of `new_size` leaves with root
// `new_root` (RFC 9162 2.1.4.2). Edge cases: old_size == new_size needs an
// empty proof and equal roots; old_size == 0 needs an empty proof and
// old_root == EmptyRoot() (an empty tree is a prefix of every tree).
// InvalidArgument if old_size > new_size or a hash is not 32 bytes;
// PermissionDenied if the proof has the wrong length or does not verify.
absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                               absl::string_view old_root,
                               absl::string_view new_root,
                               const std::vector<std::string>& proof);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_MERKLE_H_
