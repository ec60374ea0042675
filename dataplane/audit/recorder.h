// Where sessions hand their audit events: the recorder stamps each with
// the time and writes it to the spool (so it is on disk, write(2)-durable,
// before the session goes on), and a Sender streams the spool to
// warden-control. Thread-safe; one per proxy.
#ifndef WARDEN_DATAPLANE_AUDIT_RECORDER_H_
#define WARDEN_DATAPLANE_AUDIT_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/address.h"
#include "dataplane/audit/sink.h"
#include "dataplane/audit/spool.h"
#include "proto/warden/v1/audit.pb.h"

namespace grpc {
class Channel;
class ClientContext;
namespace internal {
class RpcMethod;
}
}

namespace warden::dataplane::audit {

class Recorder : public AuditSink {
 public:
  explicit Recorder(Spool* spool) : spool_(spool) {}

  // Record appends `event` (its time is set here; the caller sets the
  // environment it belongs to; proxy id and sequence are the spool's and
  // the sender's business). An error
  // (spool full, disk failing) means the event is NOT recorded: the caller
  // must not let the statement run.
  // `size` (optional): the encoded event's bytes, what the spool holds of
  // it (sessions budget audit bytes by it).
  absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent event,
                                  size_t* size = nullptr) override;
  absl::StatusOr<uint64_t> Record(absl::string_view shared,
                                  warden::v1::AuditEvent event,
                                  size_t* size = nullptr) override;
  absl::StatusOr<uint64_t> Stage(absl::string_view shared,
                                 warden::v1::AuditEvent* event,
                                 size_t* size = nullptr) override;
  absl::Status WriteStaged() override;
  double Fill() const override { return spool_->Fill(); }
  uint64_t CapacityBytes() const override { return spool_->max_bytes(); }

  Spool* spool() const { return spool_; }

 private:
  // The recorded bytes, into `*bytes` (replaced): stamped, bounded,
  // encoded. An error when the pair is over the event limit and `shared`
  // does not decode (it came from EncodeShared, so this is a bug): nothing
  // over the limit is recorded.
  static absl::Status Encode(absl::string_view shared,
                             warden::v1::AuditEvent* event, std::string* bytes);
  Spool* const spool_;
};

// Appends to `request` (an encoded AppendAuditRequest) one element of
// its encoded_events: the `spooled` bytes of an event, then `source` (the
// encoding of an AuditEvent with only proxy_id set) and the event's
// `sequence`, exactly what AppendAuditRequest::add_encoded_events with
// those three concatenated would serialize to. For the sender, which
// encodes its requests itself instead of copying every event into one.
void AppendEncodedEvent(absl::string_view spooled, absl::string_view source,
                        uint64_t sequence, std::string* request);

// Streams the spool to warden-control (AuditIngest.Append, mTLS with the
// proxy's certificate) and truncates it as the control plane acknowledges.
// At-least-once: after any failure it resends from the last sequence the
// control plane acknowledged to it; the control plane skips what it has
// (comparing content, so an event of another proxy under the same id and
// sequence is refused, never taken for ours) and only what was sent is
// acknowledged. Also fsyncs the spool every `sync_interval`, so one fsync
// covers many events.
struct SenderOptions {
  // warden-control, host:port; a cluster's replicas comma-separated (the
  // sender moves to the next when the one in use cannot be reached).
  std::string address;
  std::string ca_pem;  // CA of warden-control's certificate
  size_t batch_events = 1000;
  size_t batch_bytes = 2u << 20;
  absl::Duration sync_interval = absl::Milliseconds(20);
  // How often the syncer also writes the spool's "acked" (a file replace
  // and fsync): it only spares resending after a crash what the control
  // plane then skips, so not at every sync_interval (it cost about as
  // much as the events' own fdatasync). Before a segment is deleted and
  // on Stop it is written regardless.
  absl::Duration acked_interval = absl::Seconds(1);
  absl::Duration idle_poll = absl::Milliseconds(50);
  // After a call that sent less than a full batch, how long the sender
  // waits before the next one unless a statement waits for it (sync
  // mode): fewer, larger calls cost both processes less per event.
  absl::Duration batch_delay = absl::Milliseconds(10);
};

class Sender : public AuditAcks {
 public:
  struct Identity {
    std::string key_pem;
    std::string cert_pem;
    std::string proxy_id;
    std::string environment;
  };
  // Returns the proxy's current certificate; not ok before enrollment.
  using IdentityFn = std::function<absl::StatusOr<Identity>()>;

  Sender(Spool* spool, SenderOptions options, IdentityFn identity);
  ~Sender() override;  // Stop()s

  void Start();
  void Stop();

  // Highest sequence the control plane acknowledged (this process).
  uint64_t acknowledged() const override { return acknowledged_.load(); }
  std::string last_error() const;

  // Calls `done` (from the sender's thread, or at once from this one) when
  // the control plane has acknowledged `sequence`. For `sync` mode.
  void WhenAcknowledged(uint64_t sequence,
                        std::function<void()> done) override;
  // Sends now instead of at the next poll (sync mode: a statement waits).
  void Nudge() override;

 private:
  void Run();
  absl::Status SendOnce(const Identity& identity, size_t* sent);

  Spool* const spool_;
  const SenderOptions options_;
  warden::AddressRing addresses_;
  const IdentityFn identity_;
  std::atomic<uint64_t> acknowledged_{0};
  // Run() thread only: whether one Append (even an empty one) succeeded.
  bool synced_with_server_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::string channel_cert_;
  std::string channel_address_;
  // Run() thread only: AuditIngest.Append registered on channel_, the
  // encoded request (reused between calls) and the encoding of the proxy
  // id appended to each event.
  std::unique_ptr<grpc::internal::RpcMethod> append_method_;
  std::string request_;
  std::string source_bytes_;
  std::string source_proxy_id_;
  mutable absl::Mutex mu_;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::multimap<uint64_t, std::function<void()>> waiters_ ABSL_GUARDED_BY(mu_);
  bool nudged_ ABSL_GUARDED_BY(mu_) = false;
  // The Append in flight, cancelled by Stop: a proxy told to stop does not
  // wait out the call's deadline on a control plane that does not answer
  // (its events stay in the spool and are sent after the restart).
  grpc::ClientContext* inflight_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Notification stop_;
  std::thread thread_;
  std::thread syncer_;
};

}  // namespace warden::dataplane::audit

#endif  // WARDEN_DATAPLANE_AUDIT_RECORDER_H_
