// EtcdLog: the ordered log of a warden-control cluster, kept in etcd (3.4+)
// through its v3 gRPC API. Every replica appends to it and follows it; etcd's
// revisions order the entries, so every replica applies the same entries in
// the same order.
//
// Layout: each append is one etcd key,
//   <prefix><16 hex: this client's writer id>/<20-digit counter>-<count>
// holding a warden.log.EtcdBatch of `count` entries. Keys never collide
// (a random writer id per client, a counter per append), so appends from
// several replicas never conflict: etcd orders them by revision, and each
// entry's index is its position in that order (the batches in revision
// order, the entries of a batch in turn), counted the same way by every
// replica. Indexes are therefore gap-free and identical everywhere, and an
// append learns its index once the watch has reached its revision.
//
// An append is a Txn that creates its key only if it does not exist yet, so
// a call that timed out is retried with the same key without writing the
// batch twice. AppendBatchAt (an entry that must know its index, such as a
// policy revision signed with it) adds a compare that no batch was created
// after the one holding index `first - 1`; kAborted when one was.
//
// A background watch on the prefix follows every replica's appends in
// revision order and numbers them; LastIndex() is what it numbered so far,
// and Refresh() waits until it has caught up with etcd's current revision.
// Open() numbers the existing batches (their keys only, in revision order).
// The numbering of every batch since the log's start is kept in memory
// (about 100 bytes per append); trimming it with the log's compaction is
// issue 19's next step.
//
// Connections: a list of etcd endpoints ("host:port"); a call that finds an
// endpoint unreachable moves to the next one. TLS with a client certificate
// (etcd's --client-cert-auth) unless `plaintext` is set explicitly.
#ifndef WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_
#define WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
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

namespace warden::log {
class EtcdBatch;
}  // namespace warden::log

namespace etcdserverpb {
class RangeRequest;
class RangeResponse;
class TxnRequest;
class TxnResponse;
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
  // The cluster's secret for authenticating batches (every replica has
  // the same; warden-control derives it from the shared signing key).
  // Each batch carries an HMAC of its key and entries, and Read refuses a
  // batch without a valid one (kDataLoss): someone who can only write to
  // etcd cannot add entries the replicas apply. Required.
  std::string mac_key;
  // Deadline of each etcd call; an append retries within it on another
  // endpoint.
  absl::Duration call_timeout = absl::Seconds(10);
  // One append's limits: etcd refuses requests over --max-request-bytes
  // (1.5 MiB by default); what is left is room for the key and framing.
  // Audit events are bounded to 1 MiB, so the largest one fits alone.
  size_t max_batch_entries = 1000;
  size_t max_batch_bytes = 1400u << 10;
};

class EtcdLog : public Log {
 public:
  // Open connects (TLS files read now: kInvalidArgument naming a file that
  // cannot be read), numbers the log's batches (kUnavailable naming the
  // endpoints when none answers; kDataLoss for a key under the prefix that
  // is not a batch) and starts following the prefix.
  static absl::StatusOr<std::unique_ptr<EtcdLog>> Open(EtcdOptions options);

  EtcdLog(const EtcdLog&) = delete;
  EtcdLog& operator=(const EtcdLog&) = delete;
  ~EtcdLog() override;

  // Append and AppendBatch write one batch and return the index of its
  // first entry once the watch has numbered it. kResourceExhausted for a
  // batch over max_batch_entries or max_batch_bytes.
  absl::StatusOr<uint64_t> Append(std::string entry) override;
  absl::StatusOr<uint64_t> AppendBatch(
      std::vector<std::string> entries) override;
  absl::StatusOr<uint64_t> AppendBatchAt(
      uint64_t first, const std::vector<std::string>& entries) override;
  // Entries from..from+max-1 that exist, read from etcd. kDataLoss if a
  // batch numbered earlier is gone (deleted behind Warden's back);
  // kOutOfRange for `from` beyond the log's end + 1.
  absl::StatusOr<std::vector<Entry>> Read(uint64_t from, size_t max) override;
  uint64_t LastIndex() const override;
  std::string Fingerprint(uint64_t index) const override;
  absl::StatusOr<uint64_t> Refresh() override;
  uint64_t WaitBeyond(uint64_t index, absl::Time deadline) override;
  size_t MaxBatchEntries() const override {
    return options_.max_batch_entries;
  }
  size_t MaxBatchBytes() const override { return options_.max_batch_bytes; }

 private:
  // One batch as numbered: its key, etcd revision, first index and count.
  struct Batch {
    std::string key;
    int64_t revision = 0;
    uint64_t first = 0;
    uint64_t count = 0;
  };

  explicit EtcdLog(EtcdOptions options);

  std::shared_ptr<grpc::Channel> Channel() const;
  void NextEndpoint(const std::shared_ptr<grpc::Channel>& failed);
  void SetDeadline(grpc::ClientContext* context) const;
  // One Range, moving to the next endpoint when one is unreachable.
  absl::Status Range(const etcdserverpb::RangeRequest& request,
                     absl::string_view what,
                     etcdserverpb::RangeResponse* response);
  // One Txn, likewise, retried on another endpoint until the call timeout
  // (callers make it idempotent).
  absl::Status Txn(const etcdserverpb::TxnRequest& request,
                   absl::string_view what,
                   etcdserverpb::TxnResponse* response);
  // The MAC of `batch` (its entries and its `after` claim) written under
  // `key`.
  std::string Mac(const std::string& key,
                  const warden::log::EtcdBatch& batch) const;
  // The key of the numbered batch holding `index` ("" for 0 or unknown).
  std::string KeyHoldingLocked(uint64_t index) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry count a batch key carries; false for any other key.
  bool ParseKey(const std::string& key, uint64_t* count) const;
  // Numbers a batch created at `revision` (in revision order).
  void Number(const std::string& key, int64_t revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Numbers every batch that exists (Open).
  absl::Status Scan();
  // Writes `entries` as one batch (conditions added by `guard`), waits
  // until it is numbered and returns its first index.
  absl::StatusOr<uint64_t> WriteBatch(
      const std::vector<std::string>& entries, int64_t created_before);
  // Waits until the watch has numbered everything up to `revision`.
  absl::Status WaitForRevision(int64_t revision, absl::Time deadline);
  // Follows the prefix with etcd's Watch until the log is closed.
  void Follow();
  // One Watch stream from `revision` until it ends.
  void WatchOnce(int64_t revision);

  const EtcdOptions options_;
  std::string range_end_;  // the prefix's end, for ranges over it
  std::string writer_;     // this client's writer id, 16 hex digits
  std::vector<std::shared_ptr<grpc::Channel>> channels_;

  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Batch> batches_ ABSL_GUARDED_BY(mu_);
  uint64_t last_index_ ABSL_GUARDED_BY(mu_) = 0;
  // The highest etcd revision numbered (batches up to it are in batches_).
  int64_t numbered_revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Set when the watch cannot go on (a batch it cannot number): every
  // call then fails with it.
  absl::Status broken_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  absl::Mutex watch_mu_;
  grpc::ClientContext* watch_context_ ABSL_GUARDED_BY(watch_mu_) = nullptr;
  std::thread follower_;
};

}  // namespace warden::controlplane::log

#endif  // WARDEN_CONTROLPLANE_LOG_ETCD_LOG_H_
