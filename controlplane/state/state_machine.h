// The control plane's replicated state machine: every change is appended to
// the ordered log first, then applied to the store in log order, in one
// synced batch that also records the entry's index. After a crash between
// the two, CatchUp() applies what the log has and the store lacks, so the
// store is always the log's prefix. With etcd (the HA issue) the same
// entries arrive from the cluster and are applied the same way.
#ifndef WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_
#define WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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

  // Commit appends `entry` to the log and applies it; returns its index.
  // Serialized: commits are applied in the order they were appended.
  absl::StatusOr<uint64_t> Commit(const warden::v1::LogEntry& entry);

  // CommitAt builds the entry knowing the index it will get (a policy
  // revision is its log index and is signed into the bundle), then commits
  // it. Nothing else commits in between. Internal if the log assigns a
  // different index.
  absl::StatusOr<uint64_t> CommitAt(
      const std::function<absl::StatusOr<warden::v1::LogEntry>(uint64_t)>&
          build);

  // CatchUp applies every log entry after the store's applied index. Call
  // at start, before serving. DataLoss if the store is ahead of the log.
  absl::Status CatchUp();

 private:
  absl::Status Apply(const warden::v1::LogEntry& entry, uint64_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CatchUpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stages a directory change (the record and its name index).
  absl::Status StageDirectory(const warden::v1::DirectoryChange& change,
                              uint64_t index, store::Batch* batch) const;

  log::Log* const log_;
  store::Store* const store_;
  absl::Mutex mu_;
};

}  // namespace warden::controlplane::state

#endif  // WARDEN_CONTROLPLANE_STATE_STATE_MACHINE_H_
