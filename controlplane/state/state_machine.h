// The control plane's replicated state machine: every change is appended to
// the ordered log first, then applied to the store in log order, in one
// synced batch that also records the entry's index. After a crash between
// the two, CatchUp() applies what the log has and the store lacks, so the
// store is always the log's prefix. With etcd (the HA issue) the same
// entries arrive from the cluster and are applied the same way.
#ifndef WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_
#define WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/log/log.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::state {

// Key layout in the store, shared by the readers of each column.
// Column::kTokens: "tok/<id>" -> serialized warden.v1.TokenRecord.
// Column::kBundles: "rev/<20-digit revision>" -> serialized
// warden.v1.BundleRecord; "head" -> the head revision, decimal.
inline constexpr char kTokenPrefix[] = "tok/";
// Enrolled proxies, "proxy/<environment>/<proxy_id>", in the tokens column
// (they are credentials too).
inline constexpr char kProxyPrefix[] = "proxy/";
inline constexpr char kRevisionPrefix[] = "rev/";
inline constexpr char kHeadKey[] = "head";
// Column::kDirectory: "user/<id>" -> serialized warden.v1.DirectoryUser
// (tombstones included); "group/<id>" -> warden.v1.DirectoryGroup;
// "name/<lower-case userName>" -> the id of the live user of that name.
inline constexpr char kDirectoryUserPrefix[] = "user/";
inline constexpr char kDirectoryGroupPrefix[] = "group/";
inline constexpr char kDirectoryNamePrefix[] = "name/";
std::string DirectoryNameKey(absl::string_view user_name);
std::string RevisionKey(uint64_t revision);

class StateMachine {
 public:
  // Neither is owned; both must outlive the state machine.
  StateMachine(log::Log* log, store::Store* store);
  ~StateMachine();

  // Commit appends `entry` to the log and applies it; returns its index.
  // Commits are applied in the order they were appended. Concurrent
  // commits are written together (group commit): while one group is being
  // written the next ones queue, and the next group is one synced log
  // append of all of them and, for a run of audit appends, one synced
  // store batch; each caller returns once its own entry is applied.
  absl::StatusOr<uint64_t> Commit(const warden::v1::LogEntry& entry);

  // CommitAt builds the entry knowing the index it will get (a policy
  // revision is its log index and is signed into the bundle), then commits
  // it. Nothing else commits in between. Internal if the log assigns a
  // different index.
  absl::StatusOr<uint64_t> CommitAt(
      const std::function<absl::StatusOr<warden::v1::LogEntry>(uint64_t)>&
          build);

  // The largest entry the log takes (a cluster's etcd limits a request;
  // a single node takes anything): callers split what they can.
  size_t MaxEntryBytes() const { return log_->MaxBatchBytes(); }

  // CatchUp applies every log entry after the store's applied index. Call
  // at start, before serving. DataLoss if the store is ahead of the log.
  absl::Status CatchUp();

  // Sync returns once this replica has applied everything the log held
  // when it was called (for etcd, a linearizable read of where the log
  // ends): a read after Sync sees every write any replica completed
  // before it. Free on a single node. The log's error (UNAVAILABLE when
  // etcd cannot be reached) otherwise: the caller fails closed.
  absl::Status Sync();

  // When this replica last confirmed with the log's source of truth where
  // the log ends (Sync, or the follower's check every 2 s): a replica of a
  // cluster that cannot reach etcd stops being current without noticing
  // otherwise (red team). InfinitePast before the first confirmation.
  absl::Time LastConfirmedCurrent() const {
    return absl::FromUnixNanos(confirmed_unix_ns_.load());
  }

  // How many directory changes this replica has applied since it started,
  // whoever committed them (this replica or, in a cluster, another): a
  // cache of the directory knows from it whether it is still current.
  uint64_t DirectoryChangesApplied() const {
    return directory_applied_.load(std::memory_order_acquire);
  }

  // StartFollowing applies, on a thread of its own, what other replicas
  // append to a shared log (etcd): within about a round trip of etcd's
  // watch, and at least every 500 ms. `applied` (optional) is called with
  // the store's applied index after each catch-up that applied something
  // (to publish a new policy revision to this replica's proxies). Errors
  // are logged and retried with backoff. Once, after CatchUp().
  void StartFollowing(std::function<void(uint64_t applied_index)> applied);
  // Stops following (the destructor does too).
  void StopFollowing();

 private:
  // A commit waiting in (or written by) a group.
  struct Pending {
    const warden::v1::LogEntry* entry;
    std::string bytes;
    absl::StatusOr<uint64_t> result = absl::UnknownError("not written");
    bool done = false;
  };

  absl::Status Apply(const warden::v1::LogEntry& entry, uint64_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies entries first, first + 1, ... in order, a run of audit
  // appends in one store batch; `results[i]` is entry i's outcome. Stops
  // at the first failure (the rest get it too; CatchUp applies them).
  void ApplyEntries(const std::vector<const warden::v1::LogEntry*>& entries,
                    uint64_t first, std::vector<absl::Status>* results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends and applies one group of commits, in runs the log takes at
  // once (WriteRun: group[begin, end)); with a shared log, entries other
  // replicas appended before a run are applied before it.
  void WriteGroup(const std::vector<Pending*>& group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRun(const std::vector<Pending*>& group, size_t begin, size_t end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the log's entries after the store's applied index, through
  // `through` (or the log's LastIndex(), whichever is lower).
  absl::Status CatchUpLocked(uint64_t through = UINT64_MAX)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stages the store writes of an entry other than an audit append.
  absl::Status Stage(const warden::v1::LogEntry& entry, uint64_t index,
                     store::Batch* batch) const;
  // Stages a directory change (the record and its name index).
  absl::Status StageDirectory(const warden::v1::DirectoryChange& change,
                              uint64_t index, store::Batch* batch) const;

  log::Log* const log_;
  store::Store* const store_;
  // Held while appending and applying; log order is apply order.
  absl::Mutex mu_;
  audit::AuditApplier audit_ ABSL_GUARDED_BY(mu_);

  // The group commit's queue: commits not yet taken by a group, and
  // whether a group is being written.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::CondVar queue_cv_;
  std::vector<Pending*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool writing_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Notification stop_following_;
  std::thread follower_;
  std::atomic<uint64_t> directory_applied_{0};
  std::atomic<int64_t> confirmed_unix_ns_{INT64_MIN};
};

}  // namespace warden::controlplane::state

#endif  // WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_
