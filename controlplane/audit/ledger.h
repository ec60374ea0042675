// The control plane's audit log in the store: every AuditAppend log entry
// the state machine applies becomes leaves of one append-only RFC 6962
// Merkle tree, de-duplicated by (source, sequence), and this serves reads
// (entries, tree size and root, inclusion and consistency proofs) from it.
//
// Leaf i is LeafHash(leaf i-1) (zeros for i = 0) followed by the AuditLeaf
// bytes of the log entry, so the leaves also form a hash chain that names
// the first entry a tampered copy breaks.
//
// Keys, per store column (each per-event kind in its own column, written
// in ascending key order per source; the store's schema version 1 had them
// all in kAudit, with the same keys):
//   kAuditLeaves:  "leaf/<20-digit index>"  -> the leaf bytes
//   kAuditHashes:  "hash/<20-digit index>"  -> its 32-byte leaf hash
//   kAuditDigests: "dig/<source>/<20-digit sequence>" -> SHA-256 of that
//                  event as sent
//   kAudit:        "tree"         -> TreeBuilder::Serialize() (size,
//                                    frontier)
//                  "src/<source>" -> highest sequence appended from it
#ifndef WARDEN_CONTROLPLANE_AUDIT_LEDGER_H_
#define WARDEN_CONTROLPLANE_AUDIT_LEDGER_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::audit {

// StageAppend adds to `batch` what applying `append` changes: the leaves
// of the events whose sequence follows the source's highest one, in order;
// events already appended are skipped, and so is everything from a gap on
// (the source resends from its acknowledged sequence). Total: an entry
// whose sequences do not pair with its leaves changes nothing, so
// replaying the log never fails on its content.
// Reads the current tree from `store` (the state machine applies entries
// one at a time).
absl::Status StageAppend(const store::Store& store,
                         const warden::v1::AuditAppend& append,
                         store::Batch* batch);

// StageAppend for a run of entries applied in one store batch (the state
// machine's group commit): each entry is staged on top of the ones staged
// before it (their leaves, tree and sequences), which the store does not
// have yet. Keeps the tree's frontier, the last leaf hash and the sources'
// sequences in memory between batches, so applying reads the store only
// after a batch failed or for a source not seen yet. Not thread-safe (the
// state machine applies under its lock); the only writer of the audit
// column.
//
//   AuditApplier applier(&store);
//   applier.Stage(first);  applier.Stage(second);
//   store::Batch batch;  applier.TakeStaged(&batch);
//   applier.Written(store.Apply(batch, index).ok());
class AuditApplier {
 public:
  explicit AuditApplier(const store::Store* store) : store_(store) {}

  // Stages what applying `append` changes (as StageAppend). On error the
  // staged batch must not be written: call Written(false).
  absl::Status Stage(const warden::v1::AuditAppend& append);

  // Whether anything was staged since the last TakeStaged.
  bool has_staged() const { return staged_ops_ > 0; }
  // Puts in the store's batch so far (to bound a batch).
  size_t staged_ops() const { return staged_ops_; }

  // Moves the staged writes into `batch`: the digests, leaf hashes and
  // leaves in ascending key order (so the store inserts each run in
  // sequence), then each source's new sequence and the tree, once each.
  void TakeStaged(store::Batch* batch);

  // After the batch of TakeStaged was written (true) or not (false: what
  // was kept in memory is dropped and read again from the store).
  void Written(bool ok);

 private:
  absl::Status Load();
  absl::StatusOr<uint64_t> Sequence(const std::string& source);

  const store::Store* const store_;
  bool loaded_ = false;
  TreeBuilder tree_;
  std::string last_hash_;  // of leaf tree_.size() - 1; zeros when empty
  // Highest sequence per source, as staged (sources read so far).
  absl::flat_hash_map<std::string, uint64_t> sequences_;
  // Staged writes, by kind.
  struct Put {
    std::string key;
    std::string value;
  };
  std::vector<Put> digests_, hashes_, leaves_;
  std::set<std::string> touched_;  // sources whose sequence moved
  bool tree_changed_ = false;
  size_t staged_ops_ = 0;
};

class Ledger {
 public:
  explicit Ledger(const store::Store* store) : store_(store) {}

  // The tree as of the last applied entry (size 0 for a new log).
  absl::StatusOr<TreeBuilder> Tree() const;

  // The highest sequence appended from `source`; 0 when none.
  absl::StatusOr<uint64_t> Acknowledged(absl::string_view source) const;

  // The SHA-256 of event `sequence` of `source` as it was sent
  // (AuditAppend.digests); NotFound for events appended without one.
  absl::StatusOr<std::string> Digest(absl::string_view source,
                                     uint64_t sequence) const;

  // Leaves [start, min(end, size)); at most `limit`, and no more once
  // their bytes reach `max_bytes` (but always the first: one entry larger
  // than the budget is returned alone, so a reader always moves on).
  absl::StatusOr<std::vector<warden::v1::AuditEntry>> Entries(
      uint64_t start, uint64_t end, size_t limit,
      size_t max_bytes = kMaxPageBytes) const;

  // What one page of entries may hold: well inside gRPC's default 4 MiB
  // message limit, so every reader (export, tail, search, the SIEM
  // stream) gets through any stretch of the log.
  static constexpr size_t kMaxPageBytes = 2 << 20;

  // Proofs for the stored tree; InvalidArgument for sizes beyond it.
  absl::StatusOr<std::vector<std::string>> InclusionProof(
      uint64_t index, uint64_t tree_size) const;
  absl::StatusOr<std::vector<std::string>> ConsistencyProof(
      uint64_t first_size, uint64_t second_size) const;

 private:
  const store::Store* const store_;
};

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_LEDGER_H_
