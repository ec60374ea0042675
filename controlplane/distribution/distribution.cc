#include "controlplane/distribution/distribution.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "common/proto_time.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::distribution {
namespace {

// Fleet column keys: "proxy/<environment>/<proxy_id>" -> ProxyStatus.
constexpr char kFleetPrefix[] = "proxy/";

// Distinct proxies the fleet view keeps (each a few hundred bytes).
constexpr size_t kMaxFleetEntries = 100000;


using warden::v1::WatchRequest;
using warden::v1::WatchResponse;

// A NACK error is shown in the fleet view; a proxy must not be able to make
// the control plane keep megabytes for it.
constexpr size_t kMaxErrorBytes = 1024;

}  // namespace

// One Watch stream. Everything below except request_ and write_ (owned by
// the gRPC operation in flight) is guarded by the Distributor's mutex.
// Start* calls are made with the mutex held (gRPC never runs read/write
// reactions inline), Finish() never is (its reaction, OnDone, may run
// inline and takes the mutex).
class Distributor::Stream final
    : public grpc::ServerBidiReactor<WatchRequest, WatchResponse> {
 public:
  Stream(Distributor* d, ca::ProxyIdentity identity)
      : d_(d), identity_(std::move(identity)) {
    {
      absl::MutexLock lock(&d_->mu_);
      d_->streams_.insert(this);
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // half-close, cancel or broken stream: we are done too.
      FinishSoon(grpc::Status::OK);
      return;
    }
    if (request_.has_hello()) {
      // Outside the lock: reads the store. Publish() keeps head_ current;
      // this covers a Distributor that never saw a Publish (restart).
      d_->RefreshHead();
    }
    grpc::Status error = grpc::Status::OK;
    {
      absl::MutexLock lock(&d_->mu_);
      error = HandleLocked();
      if (!error.ok()) {
        // Set together, so a write completing in between finishes with
        // this error rather than OK.
        finishing_ = true;
        finish_status_ = error;
      }
    }
    if (!error.ok()) {
      FinishSoon(error);
      return;
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&d_->mu_);
      writing_ = false;
      if (!ok) queue_.clear();  // the stream is broken; reads fail too.
      if (!queue_.empty() && !finishing_) {
        StartWriteLocked(std::move(queue_.front()));
        queue_.pop_front();
      } else if (finishing_ && !finish_called_) {
        finish_called_ = true;
        finish = true;
        status = finish_status_;
      }
    }
    if (finish) Finish(status);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&d_->mu_);
      d_->streams_.erase(this);
      if (hello_) {
        auto& entry = d_->fleet_[{environment_, proxy_id_}];
        --entry.open_streams;
        entry.status.set_connected(entry.open_streams > 0);
        d_->PersistLocked(entry.status);
      }
    }
    delete this;
  }

  // Sends the head if this stream does not run it and nothing is in
  // flight; with something in flight, remembers that a newer one waits.
  void MaybeSendHeadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(d_->mu_) {
    if (!hello_ || finishing_ || d_->head_ == nullptr) return;
    const uint64_t head = d_->head_->revision();
    if (head == running_ || head == nacked_) return;
    if (!outstanding_nonce_.empty()) {
      pending_ = true;
      return;
    }
    pending_ = false;
    WatchResponse response;
    outstanding_nonce_ = absl::StrCat("n", ++d_->next_nonce_);
    outstanding_revision_ = head;
    response.set_nonce(outstanding_nonce_);
    *response.mutable_bundle() = *d_->head_;
    d_->fleet_[{environment_, proxy_id_}].status.set_sent_revision(head);
    if (writing_) {
      queue_.push_back(std::move(response));
    } else {
      StartWriteLocked(std::move(response));
    }
  }

  // A heartbeat (the head revision), if this stream asked for them and
  // nothing is being written: a write still in flight (a large bundle, or
  // a connection that stopped taking data) is not queued behind, so a
  // blackholed stream holds one message at most.
  // `first`: the one right after the hello, queued behind the bundle if
  // one is being sent, so the proxy can tell silence from the start.
  void MaybeSendHeartbeatLocked(bool first = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(d_->mu_) {
    if (!hello_ || !heartbeats_ || finishing_ || !queue_.empty()) return;
    if (writing_ && !first) return;
    WatchResponse response;
    auto* heartbeat = response.mutable_heartbeat();
    heartbeat->set_head_revision(d_->head_ != nullptr ? d_->head_->revision()
                                                      : 0);
    heartbeat->set_interval_ms(static_cast<uint32_t>(
        absl::ToInt64Milliseconds(d_->heartbeat_interval_)));
    heartbeat->set_stream_elapsed_ms(static_cast<uint64_t>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(absl::Now() - hello_at_))));
    ++d_->heartbeats_sent_;
    if (writing_) {
      queue_.push_back(std::move(response));
    } else {
      StartWriteLocked(std::move(response));
    }
  }

 private:
  grpc::Status HandleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(d_->mu_) {
    if (!hello_) {
      if (!request_.has_hello()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "first message must be hello");
      }
      const auto& hello = request_.hello();
      // The certificate says who this is; the hello must agree (so a
      // proxy cannot report, or receive bundles, as another).
      if (hello.proxy_id() != identity_.proxy_id ||
          hello.environment() != identity_.environment) {
        return grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("the client certificate names proxy \"",
                         identity_.proxy_id, "\" of environment \"",
                         identity_.environment, "\" but the hello says \"",
                         hello.proxy_id().substr(0, 64), "\" of \"",
                         hello.environment().substr(0, 64), "\""));
      }
      if (d_->fleet_.size() >= kMaxFleetEntries &&
          d_->fleet_.find({hello.environment(), hello.proxy_id()}) ==
              d_->fleet_.end()) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "the fleet view is full");
      }
      hello_ = true;
      hello_at_ = absl::Now();
      heartbeats_ = hello.heartbeats();
      proxy_id_ = hello.proxy_id();
      environment_ = hello.environment();
      running_ = hello.running_revision();
      // A revision this control plane never made (a state directory from
      // another one, or a made-up claim) is not what it runs as far as the
      // fleet view goes: `policy push --wait` would count it as caught up
      // with every later push (red team pass 8). It gets the head.
      if (d_->head_ != nullptr && running_ > d_->head_->revision()) {
        running_ = 0;
      }
      auto& entry = d_->fleet_[{environment_, proxy_id_}];
      ++entry.open_streams;
      entry.status.set_proxy_id(proxy_id_);
      entry.status.set_environment(environment_);
      entry.status.set_running_revision(running_);
      entry.status.set_connected(true);
      SetTimestamp(absl::Now(), entry.status.mutable_last_seen());
      d_->PersistLocked(entry.status);
      MaybeSendHeadLocked();
      MaybeSendHeartbeatLocked(/*first=*/true);
      return grpc::Status::OK;
    }
    auto& entry = d_->fleet_[{environment_, proxy_id_}];
    SetTimestamp(absl::Now(), entry.status.mutable_last_seen());
    switch (request_.kind_case()) {
      case WatchRequest::kHello:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "hello already received on this stream");
      case WatchRequest::kAck: {
        if (!Outstanding(request_.ack().nonce())) return grpc::Status::OK;
        running_ = outstanding_revision_;
        entry.status.set_running_revision(running_);
        if (entry.status.nacked_revision() != 0 &&
            entry.status.nacked_revision() <= running_) {
          entry.status.set_nacked_revision(0);
          entry.status.clear_last_error();
        }
        d_->PersistLocked(entry.status);
        break;
      }
      case WatchRequest::kNack: {
        if (!Outstanding(request_.nack().nonce())) return grpc::Status::OK;
        nacked_ = outstanding_revision_;
        entry.status.set_nacked_revision(nacked_);
        entry.status.set_last_error(
            request_.nack().error().substr(0, kMaxErrorBytes));
        d_->PersistLocked(entry.status);
        break;
      }
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "WatchRequest must be hello, ack or nack");
    }
    outstanding_nonce_.clear();
    outstanding_revision_ = 0;
    MaybeSendHeadLocked();  // the pending newer head, if any.
    return grpc::Status::OK;
  }

  // Whether `nonce` answers the bundle in flight; counts it otherwise.
  bool Outstanding(const std::string& nonce)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(d_->mu_) {
    if (!outstanding_nonce_.empty() && nonce == outstanding_nonce_) {
      return true;
    }
    ++d_->stale_responses_;
    return false;
  }

  void StartWriteLocked(WatchResponse response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(d_->mu_) {
    writing_ = true;
    write_ = std::move(response);
    StartWrite(&write_);
  }

  // Finishes now, or after the write in flight completes (one operation
  // of each kind at a time; never Finish under the mutex).
  void FinishSoon(const grpc::Status& status) {
    bool now = false;
    {
      absl::MutexLock lock(&d_->mu_);
      finishing_ = true;
      finish_status_ = status;
      queue_.clear();
      if (!writing_ && !finish_called_) {
        finish_called_ = true;
        now = true;
      }
    }
    if (now) Finish(status);
  }

  Distributor* const d_;
  const ca::ProxyIdentity identity_;
  WatchRequest request_;
  WatchResponse write_;

  bool hello_ = false;
  bool heartbeats_ = false;  // the hello asked for them.
  absl::Time hello_at_;      // when the hello arrived (heartbeats' clock).
  std::string proxy_id_;
  std::string environment_;
  uint64_t running_ = 0;
  uint64_t nacked_ = 0;
  std::string outstanding_nonce_;
  uint64_t outstanding_revision_ = 0;
  bool pending_ = false;
  bool writing_ = false;
  std::deque<WatchResponse> queue_;
  bool finishing_ = false;
  bool finish_called_ = false;
  grpc::Status finish_status_;
};

namespace {

// A Watch refused before it starts (no or wrong client certificate).
class Refused final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse> {
 public:
  explicit Refused(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

bool Distributor::Knows(const std::string& environment,
                        const std::string& proxy_id) const {
  absl::MutexLock lock(&mu_);
  return fleet_.count({environment, proxy_id}) > 0;
}

Distributor::Distributor(const bundles::Bundles* bundles,
                         const ca::Authority* authority,
                         store::Store* fleet_store,
                         absl::Duration heartbeat_interval)
    : bundles_(bundles),
      authority_(authority),
      fleet_store_(fleet_store),
      heartbeat_interval_(std::max(heartbeat_interval, absl::Milliseconds(1))) {
  RefreshHead();
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  if (fleet_store_ == nullptr) return;
  auto rows = fleet_store_->Scan(store::Column::kFleet, kFleetPrefix);
  if (!rows.ok()) {
    spdlog::warn("fleet view not restored: {}", rows.status().ToString());
    return;
  }
  absl::MutexLock lock(&mu_);
  for (const auto& row : *rows) {
    warden::v1::ProxyStatus status;
    if (!status.ParseFromString(row.value)) continue;
    status.set_connected(false);  // until it reconnects to this process.
    auto& entry = fleet_[{status.environment(), status.proxy_id()}];
    entry.status = std::move(status);
  }
}

Distributor::~Distributor() {
  stop_heartbeats_.Notify();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void Distributor::SetHealthCheck(
    std::function<std::string()> unhealthy_reason) {
  absl::MutexLock lock(&mu_);
  unhealthy_reason_ = std::move(unhealthy_reason);
}

std::string Distributor::UnhealthyReason() const {
  std::function<std::string()> check;
  {
    absl::MutexLock lock(&mu_);
    check = unhealthy_reason_;
  }
  return check ? check() : std::string();
}

void Distributor::HeartbeatLoop() {
  std::string was;
  while (!stop_heartbeats_.WaitForNotificationWithTimeout(
      heartbeat_interval_)) {
    const std::string why = UnhealthyReason();
    if (why != was) {
      if (!why.empty()) {
        spdlog::error("policy streams: {}; no heartbeats, so that proxies "
                      "move to another replica",
                      why);
      } else {
        spdlog::info("policy streams: healthy again");
      }
      was = why;
    }
    if (!why.empty()) continue;
    absl::MutexLock lock(&mu_);
    for (Stream* stream : streams_) stream->MaybeSendHeartbeatLocked();
  }
}

uint64_t Distributor::heartbeats_sent() const {
  absl::MutexLock lock(&mu_);
  return heartbeats_sent_;
}

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* Distributor::Watch(
    grpc::CallbackServerContext* context) {
  auto identity = authority_->AuthenticatePeer(*context->auth_context(),
                                               absl::Now());
  if (!identity.ok()) {
    return new Refused(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                    std::string(identity.status().message())));
  }
  if (std::string why = UnhealthyReason(); !why.empty()) {
    return new Refused(grpc::Status(grpc::StatusCode::UNAVAILABLE, why));
  }
  return new Stream(this, *std::move(identity));
}

void Distributor::PersistLocked(const warden::v1::ProxyStatus& status) {
  if (fleet_store_ == nullptr) return;
  const absl::Status s = fleet_store_->PutObservation(
      store::Column::kFleet,
      absl::StrCat(kFleetPrefix, status.environment(), "/", status.proxy_id()),
      status.SerializeAsString());
  if (!s.ok()) spdlog::warn("fleet view not persisted: {}", s.ToString());
}

void Distributor::RefreshHead() {
  auto record = bundles_->Get(0);
  if (!record.ok()) return;  // nothing pushed yet (or unreadable: keep ours).
  auto head =
      std::make_shared<const warden::v1::SignedBundle>(record->signed_bundle());
  absl::MutexLock lock(&mu_);
  if (head_ == nullptr || head->revision() > head_->revision()) {
    head_ = std::move(head);
  }
}

void Distributor::Publish() {
  RefreshHead();
  absl::MutexLock lock(&mu_);
  for (Stream* stream : streams_) stream->MaybeSendHeadLocked();
}

warden::v1::GetFleetStatusResponse Distributor::FleetStatus(
    const std::string& environment) const {
  warden::v1::GetFleetStatusResponse response;
  absl::MutexLock lock(&mu_);
  if (head_ != nullptr) response.set_current_revision(head_->revision());
  // fleet_ is ordered by (environment, proxy_id): the documented order.
  for (const auto& [key, entry] : fleet_) {
    if (!environment.empty() && key.first != environment) continue;
    *response.add_proxies() = entry.status;
  }
  return response;
}

uint64_t Distributor::stale_responses() const {
  absl::MutexLock lock(&mu_);
  return stale_responses_;
}

size_t Distributor::open_streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace warden::controlplane::distribution
