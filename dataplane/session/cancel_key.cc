#include "dataplane/session/cancel_key.h"

#include <optional>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "dataplane/net/cancel_sender.h"
#include "dataplane/pgwire/encoder.h"

namespace warden::dataplane::session {

void SendCancel(net::EventLoop* loop, const CancelTarget& target,
                std::function<void()> done) {
  net::SendCancel(loop,
                  net::CancelTarget{target.host, target.port,
                                    target.upstream_pid,
                                    target.upstream_secret},
                  std::move(done));
}

bool ForwardCancelRequest(const CancelRegistry& registry,
                          net::EventLoop* loop, int32_t pid, int32_t secret,
                          std::function<void()> done) {
  const std::optional<CancelTarget> target = registry.Lookup(pid, secret);
  if (!target) {
    if (done) done();
    return false;
  }
  if (target->notify_session) target->notify_session();
  SendCancel(loop, *target, std::move(done));
  return true;
}

absl::StatusOr<std::string> CancelKey::OnUpstreamKey(
    const pgwire::BackendKeyData& key, net::EventLoop* loop,
    std::function<void()> on_cancel) {
  // The registry entry keeps the loop alive until Release.
  return OnUpstreamKey(
      key, [loop = loop->shared_from_this(), on_cancel = std::move(on_cancel)] {
        loop->Post(on_cancel);
      });
}

absl::StatusOr<std::string> CancelKey::OnUpstreamKey(
    const pgwire::BackendKeyData& key, std::function<void()> notify_session) {
  target_.upstream_pid = key.pid;
  target_.upstream_secret = key.secret;
  has_upstream_key_ = true;
  if (!allocated_) {
    const auto allocated = registry_->Allocate();
    if (!allocated) return absl::InternalError("cannot allocate a cancel key");
    std::tie(pid_, secret_) = *allocated;
    allocated_ = true;
  }
  if (!target_.notify_session) target_.notify_session = std::move(notify_session);
  registry_->Register(pid_, secret_, target_);
  std::string ours;
  pgwire::WriteBackendKeyData(&ours, pid_, secret_);
  return ours;
}

void CancelKey::Release() {
  if (!allocated_) return;
  registry_->Release(pid_, secret_);
  allocated_ = false;
}

}  // namespace warden::dataplane::session
