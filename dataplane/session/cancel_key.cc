#include "dataplane/session/cancel_key.h"

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
