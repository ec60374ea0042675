#include "dataplane/audit/recorder.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/proto_time.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit_bounds.h"
#include "proto/warden/v1/audit.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::audit {
namespace {

// AuditIngest.Append, called with a request encoded by the sender.
constexpr char kAppendMethod[] = "/warden.v1.AuditIngest/Append";

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

}  // namespace

void AppendEncodedEvent(absl::string_view spooled, absl::string_view source,
                        uint64_t sequence, std::string* request) {
  // AuditEvent.sequence: field 5, varint.
  constexpr char kSequenceTag = (5 << 3) | 0;
  // AppendAuditRequest.encoded_events: field 2, length-delimited.
  constexpr char kEncodedEventsTag = (2 << 3) | 2;
  const size_t length =
      spooled.size() + source.size() +
      (sequence != 0 ? 1 + VarintSize(sequence) : 0);
  request->push_back(kEncodedEventsTag);
  AppendVarint(length, request);
  request->append(spooled.data(), spooled.size());
  request->append(source.data(), source.size());
  if (sequence != 0) {
    request->push_back(kSequenceTag);
    AppendVarint(sequence, request);
  }
}

absl::Status Recorder::Encode(absl::string_view shared,
                              warden::v1::AuditEvent* event,
                              std::string* bytes) {
  SetTimestamp(absl::Now(), event->mutable_time());
  // Valid UTF-8 and bounded, or warden-control could not decode it and
  // every later event would wait behind it. The encoding of a message is
  // the concatenation of its fields', so the shared part's bytes go as
  // they are, followed by this event's own.
  bytes->clear();
  bytes->append(shared.data(), shared.size());
  audit_bounds::AppendBounded(event, bytes);
  if (!shared.empty() && bytes->size() > audit_bounds::Limits().max_event) {
    // Each part within bounds, not both together: bounded as one event.
    warden::v1::AuditEvent whole;
    if (!whole.ParseFromArray(shared.data(), static_cast<int>(shared.size()))) {
      return absl::InternalError(
          "the session's shared audit fields do not decode, and with this "
          "event they are over the event size limit");
    }
    whole.MergeFrom(*event);
    bytes->clear();
    audit_bounds::AppendBounded(&whole, bytes);
  }
  return absl::OkStatus();
}

namespace {
// Where this thread encodes its events before the spool copies them: one
// buffer reused instead of an allocation per event; one that grew for a
// large event is let go.
constexpr size_t kKeptEncodeBuffer = 64u << 10;
thread_local std::string encode_buffer;

void ReleaseIfLarge(std::string* buffer) {
  if (buffer->capacity() > kKeptEncodeBuffer) std::string().swap(*buffer);
}
}  // namespace

absl::StatusOr<uint64_t> Recorder::Record(warden::v1::AuditEvent event,
                                          size_t* size) {
  return Record("", std::move(event), size);
}

absl::StatusOr<uint64_t> Recorder::Record(absl::string_view shared,
                                          warden::v1::AuditEvent event,
                                          size_t* size) {
  if (absl::Status s = Encode(shared, &event, &encode_buffer); !s.ok()) {
    return s;
  }
  if (size != nullptr) *size = encode_buffer.size();
  absl::StatusOr<uint64_t> sequence = spool_->Append(encode_buffer);
  ReleaseIfLarge(&encode_buffer);
  return sequence;
}

namespace {
// What this thread staged since its last WriteStaged.
struct ThreadStaged {
  bool any = false;
  SpoolTicket first;
  SpoolTicket last;
};
thread_local ThreadStaged thread_staged;
}  // namespace

absl::StatusOr<uint64_t> Recorder::Stage(absl::string_view shared,
                                         warden::v1::AuditEvent* event,
                                         size_t* size) {
  if (absl::Status s = Encode(shared, event, &encode_buffer); !s.ok()) {
    return s;
  }
  if (size != nullptr) *size = encode_buffer.size();
  auto ticket = spool_->Stage(encode_buffer);
  ReleaseIfLarge(&encode_buffer);
  if (!ticket.ok()) return ticket.status();
  if (!thread_staged.any) thread_staged.first = *ticket;
  thread_staged.any = true;
  thread_staged.last = *ticket;
  return ticket->sequence;
}

absl::Status Recorder::WriteStaged() {
  const absl::Status status = spool_->WriteStaged();
  if (!thread_staged.any) return status;
  const ThreadStaged mine = thread_staged;
  thread_staged = ThreadStaged();
  // Sequences rise within a thread: its last event written in the epoch
  // of its first means all of them are.
  if (mine.first.epoch == mine.last.epoch && spool_->Written(mine.last)) {
    return absl::OkStatus();
  }
  return status.ok() ? absl::DataLossError(
                           "audit events staged by this session thread were "
                           "dropped by a failed spool write")
                     : status;
}

Sender::Sender(Spool* spool, SenderOptions options, IdentityFn identity)
    : spool_(spool),
      options_(std::move(options)),
      addresses_(options_.address),
      identity_(std::move(identity)) {
  acknowledged_ = spool_->stats().acked;
}

Sender::~Sender() { Stop(); }

std::string Sender::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void Sender::WhenAcknowledged(uint64_t sequence, std::function<void()> done) {
  {
    absl::MutexLock lock(&mu_);
    if (acknowledged_.load() < sequence) {
      waiters_.emplace(sequence, std::move(done));
      nudged_ = true;
      return;
    }
  }
  done();
}

void Sender::Nudge() {
  absl::MutexLock lock(&mu_);
  nudged_ = true;
}

void Sender::Start() {
  thread_ = std::thread([this] { Run(); });
  syncer_ = std::thread([this] {
    absl::Time acked_due = absl::Now() + options_.acked_interval;
    while (!stop_.WaitForNotificationWithTimeout(options_.sync_interval)) {
      const absl::Time now = absl::Now();
      const bool persist_acked = now >= acked_due;
      if (persist_acked) acked_due = now + options_.acked_interval;
      if (absl::Status s = spool_->Sync(persist_acked); !s.ok()) {
        spdlog::error("audit spool fsync: {}", s.ToString());
      }
    }
    (void)spool_->Sync();
  });
}

void Sender::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_.HasBeenNotified()) stop_.Notify();
    nudged_ = true;  // (wakes a sender waiting for its next poll)
    if (inflight_ != nullptr) inflight_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  if (syncer_.joinable()) syncer_.join();
}

absl::Status Sender::SendOnce(const Identity& identity, size_t* sent) {
  *sent = 0;
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options_.ca_pem;
  ssl.pem_private_key = identity.key_pem;
  ssl.pem_cert_chain = identity.cert_pem;
  // One channel per certificate; gRPC reuses the connection between calls.
  if (channel_ == nullptr || channel_cert_ != identity.cert_pem) {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);
    channel_address_ = addresses_.Current();
    channel_ = grpc::CreateCustomChannel(channel_address_,
                                         grpc::SslCredentials(ssl), args);
    channel_cert_ = identity.cert_pem;
    append_method_ = std::make_unique<grpc::internal::RpcMethod>(
        kAppendMethod, grpc::internal::RpcMethod::NORMAL_RPC, channel_);
  }
  // Always from what the control plane acknowledged to this sender: a
  // sequence it has from someone else is never taken as ours (it compares
  // what we resend with what it has, and refuses a different event).
  //
  // The request is encoded here, not built as a message: each event is
  // the spooled bytes as they are, with this proxy's id and the sequence
  // appended (a later field of a message sets it; the spooled events
  // carry neither), as field 2 (encoded_events) of AppendAuditRequest.
  // The environment is the listener's, set when the event was recorded;
  // warden-control fills in the certificate's for events that carry none
  // (spooled by an older proxy). One buffer, reused: no string per event.
  if (source_proxy_id_ != identity.proxy_id || source_bytes_.empty()) {
    warden::v1::AuditEvent source;
    source.set_proxy_id(identity.proxy_id);
    source_bytes_ = source.SerializeAsString();
    source_proxy_id_ = identity.proxy_id;
  }
  request_.clear();
  uint64_t last_sent = 0;
  size_t count = 0;
  const absl::Status read = spool_->ReadEach(
      acknowledged_.load() + 1, options_.batch_events, options_.batch_bytes,
      [&](uint64_t sequence, absl::string_view payload) {
        AppendEncodedEvent(payload, source_bytes_, sequence, &request_);
        last_sent = sequence;
      },
      &count);
  if (!read.ok()) return read;
  // Nothing to send: no call at all, except a first one that checks the
  // control plane does not have more of ours than the spool.
  if (count == 0 && synced_with_server_) return absl::OkStatus();
  warden::v1::AppendAuditResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) {
      return absl::CancelledError("audit append: the proxy is stopping");
    }
    inflight_ = &context;
  }
  grpc::Slice slice(request_);
  grpc::ByteBuffer request(&slice, 1);
  const grpc::Status status = grpc::internal::BlockingUnaryCall<
      grpc::ByteBuffer, warden::v1::AppendAuditResponse, grpc::ByteBuffer,
      grpc::protobuf::MessageLite>(channel_.get(), *append_method_, &context,
                                   request, &response);
  {
    absl::MutexLock lock(&mu_);
    inflight_ = nullptr;
  }
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      // The next call goes to the next replica, if there is one. Resending
      // from what was acknowledged keeps the log free of gaps and
      // duplicates whichever replica takes it (one ordered log).
      if (addresses_.Failed(channel_address_) != channel_address_) {
        channel_ = nullptr;
      }
    }
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("audit append to ", channel_address_,
                                     ": ", status.error_message()));
  }
  const uint64_t last = spool_->stats().next_sequence - 1;
  if (response.acknowledged_sequence() > last) {
    // The control plane has more under our id than we ever had: our spool
    // was lost or replaced, or another proxy uses this identity. Never
    // re-use sequences it has.
    return absl::DataLossError(absl::StrCat(
        "the control plane acknowledged sequence ",
        response.acknowledged_sequence(), " but this proxy's spool ends at ",
        last,
        "; the spool was lost or replaced, or another proxy uses this "
        "proxy's identity. Move the spool away and restore it, or start a "
        "new proxy id"));
  }
  // Only what we sent is ours to acknowledge.
  const uint64_t acked =
      std::min(response.acknowledged_sequence(), last_sent);
  if (absl::Status s = spool_->Acknowledge(acked); !s.ok()) return s;
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    acknowledged_ = std::max(acknowledged_.load(), acked);
    auto end = waiters_.upper_bound(acknowledged_.load());
    for (auto it = waiters_.begin(); it != end; ++it) {
      ready.push_back(std::move(it->second));
    }
    waiters_.erase(waiters_.begin(), end);
  }
  for (auto& done : ready) done();
  *sent = count;
  synced_with_server_ = true;
  return absl::OkStatus();
}

void Sender::Run() {
  absl::Duration backoff = absl::Milliseconds(200);
  while (!stop_.HasBeenNotified()) {
    auto identity = identity_();
    absl::Status status = identity.status();
    size_t sent = 0;
    if (identity.ok()) status = SendOnce(*identity, &sent);
    if (!status.ok()) {
      {
        absl::MutexLock lock(&mu_);
        if (last_error_ != status.ToString()) {
          spdlog::warn("audit: {}; events stay in the spool ({} pending)",
                       status.ToString(), spool_->stats().pending_events);
        }
        last_error_ = status.ToString();
      }
      if (stop_.WaitForNotificationWithTimeout(backoff)) break;
      backoff = std::min(backoff * 2, absl::Seconds(10));
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      last_error_.clear();
    }
    backoff = absl::Milliseconds(200);
    if (sent < options_.batch_events) {
      // Idle, or a part batch: wait until the next poll (or, after a part
      // batch, `batch_delay`, so that one call carries what a busy proxy
      // records meanwhile instead of one call per few events), a nudge
      // (a statement waits in sync mode) or Stop().
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(
          absl::Condition(&nudged_),
          sent == 0 ? options_.idle_poll : options_.batch_delay);
      nudged_ = false;
      if (stop_.HasBeenNotified()) break;
    }
  }
}

}  // namespace warden::dataplane::audit
