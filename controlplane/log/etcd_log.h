// EtcdLog: the ordered log of a warden-control cluster, kept in etcd (3.4+)
// through its v3 gRPC API. Every replica appends to it and follows it; etcd's
// consensus orders the entries, so every replica applies the same entries in
// the same order.
//
// Layout: entry i is the key `<prefix><20-digit zero-padded i>`, its value
// the entry's bytes. Indexes are gap-free: an append is one etcd Txn that
// creates keys first..first+n-1 only if none of them exists yet (a Compare
// on each key's create revision), so two replicas racing for the same index
// cannot both win; the loser gets kAborted, applies what the winner wrote
// and retries. Keys are created in index order, so etcd's revisions order the
// entries the same way as their indexes.
//
// LastIndex() is the last index this client knows of: what it appended, what
// Refresh() read, and what a watch on the prefix reports (a background
// thread), so that a replica learns of other replicas' appends within about
// a round trip. WaitBeyond() waits for that.
//
// Connections: a list of etcd endpoints ("host:port"); a call that finds an
// endpoint unreachable moves to the next one. TLS with a client certificate
// (etcd's --client-cert-auth) unless `plaintext` is set explicitly.
#ifndef WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_
#define WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "controlplane/log/log.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace etcdserverpb {
class RangeRequest;
class RangeResponse;
}  // namespace etcdserverpb

namespace warden::controlplane::log {

struct EtcdOptions {
  // etcd client endpoints, "host:port" (at least one).
  std::vector<std::string> endpoints;
  // Where the entries live; one cluster's log per prefix. Must end in '/'.
  std::string prefix = "/warden/log/";
  // PEM files: the CA that signed etcd's serving certificates, and this
  // replica's client certificate and key. All three, unless `plaintext`.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // No TLS at all (etcd on a trusted loopback only); must be asked for.
  bool plaintext = false;
  // Deadline of each etcd call.
  absl::Duration call_timeout = absl::Seconds(10);
  // One Txn's limits: etcd refuses more than --max-txn-ops (128 by default)
  // operations per branch and requests over --max-request-bytes (1.5 MiB).
  size_t max_batch_entries = 100;
  size_t max_batch_bytes = 1u << 20;
};

class EtcdLog : public Log {
 public:
  // Open connects (TLS files read now: kInvalidArgument naming a file that
  // cannot be read), reads where the log ends (kUnavailable naming the
  // endpoints when none answers) and starts following the prefix.
  static absl::StatusOr<std::unique_ptr<EtcdLog>> Open(EtcdOptions options);

  EtcdLog(const EtcdLog&) = delete;
  EtcdLog& operator=(const EtcdLog&) = delete;
  ~EtcdLog() override;

  // Append and AppendBatch append after the last index this client knows
  // of, catching up with other writers and retrying on a conflict (their
  // entries are never overwritten). kResourceExhausted for a batch over
  // max_batch_entries or max_batch_bytes.
  absl::StatusOr<uint64_t> Append(std::string entry) override;
  absl::StatusOr<uint64_t> AppendBatch(
      std::vector<std::string> entries) override;
  absl::StatusOr<uint64_t> AppendBatchAt(
      uint64_t first, const std::vector<std::string>& entries) override;
  // A linearizable read of entries from..from+max-1 that exist. kDataLoss
  // if one in the middle is missing (the log was edited behind Warden's
  // back); kOutOfRange for `from` beyond the log's end + 1.
  absl::StatusOr<std::vector<Entry>> Read(uint64_t from, size_t max) override;
  uint64_t LastIndex() const override;
  absl::StatusOr<uint64_t> Refresh() override;
  uint64_t WaitBeyond(uint64_t index, absl::Time deadline) override;
  size_t MaxBatchEntries() const override {
    return options_.max_batch_entries;
  }
  size_t MaxBatchBytes() const override { return options_.max_batch_bytes; }

  // The key of entry `index`.
  std::string KeyOf(uint64_t index) const;

 private:
  explicit EtcdLog(EtcdOptions options);

  // The channel to use now, and a move to the next endpoint after a call
  // found this one unreachable.
  std::shared_ptr<grpc::Channel> Channel() const;
  void NextEndpoint(const std::shared_ptr<grpc::Channel>& failed);
  void SetDeadline(grpc::ClientContext* context) const;
  // The highest key under the prefix: where the log ends.
  void LastKeyRequest(etcdserverpb::RangeRequest* request) const;
  // One Range, moving to the next endpoint when one is unreachable.
  absl::Status Range(const etcdserverpb::RangeRequest& request,
                     absl::string_view what,
                     etcdserverpb::RangeResponse* response);
  // Records that the log reaches at least `index`, waking WaitBeyond.
  void Saw(uint64_t index);
  // Parses an entry key of this prefix; false for any other key.
  bool IndexOf(const std::string& key, uint64_t* index) const;
  // Follows the prefix with etcd's Watch until Close (reconnecting).
  void Follow();
  // One Watch stream from `revision` until it ends; the next revision.
  int64_t WatchOnce(int64_t revision);

  const EtcdOptions options_;
  std::string range_end_;  // the prefix's end, for ranges over it
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_index_ ABSL_GUARDED_BY(mu_) = 0;
  // etcd's revision when Refresh last read the log's end: a new watch
  // starts after it.
  int64_t refreshed_revision_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Notification stop_;
  std::atomic<grpc::ClientContext*> watch_context_{nullptr};
  absl::Mutex watch_mu_;
  std::thread follower_;
};

}  // namespace warden::controlplane::log

#endif  // WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_
