// The control plane's audit log in the store: every AuditAppend log entry
// the state machine applies becomes leaves of one append-only RFC 6962
// Merkle tree, de-duplicated by (source, sequence), and this serves reads
// (entries, tree size and root, inclusion and consistency proofs) from it.
//
// Leaf i is LeafHash(leaf i-1) (zeros for i = 0) followed by the AuditLeaf
// bytes of the log entry, so the leaves also form a hash chain that names
// the first entry a tampered copy breaks.
//
// Keys in store::Column::kAudit:
//   "leaf/<20-digit index>"  -> the leaf bytes
//   "hash/<20-digit index>"  -> its 32-byte leaf hash
//   "tree"                   -> TreeBuilder::Serialize() (size, frontier)
//   "src/<source>"           -> highest sequence appended from that source
//   "dig/<source>/<20-digit sequence>" -> SHA-256 of that event as sent
#ifndef WARDEN_CONTROLPLANE_AUDIT_LEDGER_H_
#define WARDEN_CONTROLPLANE_AUDIT_LEDGER_H_

#include <cstdint>
#include <string>
#include <vector>

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
