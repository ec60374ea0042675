// A session's cancel key: the BackendKeyData the proxy hands its client in
// place of the upstream's (clients never see upstream keys), registered in
// the CancelRegistry so that a CancelRequest, which arrives on a fresh
// connection and maybe on another worker, reaches both the upstream
// backend (what runs there is cancelled) and this session (a statement a
// stage holds never reached the backend: the session withdraws it).
//
// Allocated when the upstream's key first arrives, kept for the session's
// life (a second upstream key re-registers the same client key), released
// when the session ends or this is destroyed. Loop thread only; the
// registry is thread-safe.
#ifndef WARDEN_DATAPLANE_SESSION_CANCEL_KEY_H_
#define WARDEN_DATAPLANE_SESSION_CANCEL_KEY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/session/cancel_registry.h"

namespace warden::dataplane::session {

// Sends the registry's `target` a CancelRequest through net/ (done, if set,
// runs on `loop` once the server took it or the attempt failed).
void SendCancel(net::EventLoop* loop, const CancelTarget& target,
                std::function<void()> done = nullptr);

// A client's CancelRequest for (`pid`, `secret`), which arrived on a
// connection of its own: the session the key names is told (a statement a
// stage holds never reached the backend; the session withdraws it) and
// what runs upstream is cancelled there. `done` runs on `loop` once the
// upstream took the cancel or the attempt failed, at once for a key nobody
// holds, so that the requester's connection closes as PostgreSQL's own
// postmaster closes it. Whether the key was known.
bool ForwardCancelRequest(const CancelRegistry& registry,
                          net::EventLoop* loop, int32_t pid, int32_t secret,
                          std::function<void()> done);

class CancelKey {
 public:
  explicit CancelKey(CancelRegistry* registry) : registry_(registry) {}
  ~CancelKey() { Release(); }
  CancelKey(const CancelKey&) = delete;
  CancelKey& operator=(const CancelKey&) = delete;

  // Where the upstream backend runs (the literal address connected to).
  void SetUpstream(const std::string& host, uint16_t port) {
    target_.host = host;
    target_.port = port;
  }

  // The upstream's key arrived: registers the client's key for it, with
  // `notify_session` (thread-safe; kept from the first call) to tell this
  // session of a cancel. The BackendKeyData message to send the client in
  // its place; an error when no key can be allocated.
  absl::StatusOr<std::string> OnUpstreamKey(const pgwire::BackendKeyData& key,
                                            std::function<void()> notify_session);
  // The same, where `on_cancel` runs on `loop` (the session's) each time
  // the client cancels; it must not outlive what it refers to unless
  // guarded (the session passes a weak pointer).
  absl::StatusOr<std::string> OnUpstreamKey(const pgwire::BackendKeyData& key,
                                            net::EventLoop* loop,
                                            std::function<void()> on_cancel);

  // Whether the upstream's key is known (a cancel can reach the backend).
  bool has_upstream_key() const { return has_upstream_key_; }
  // Cancels what runs upstream now (requires has_upstream_key()).
  void CancelUpstream(net::EventLoop* loop) const { SendCancel(loop, target_); }

  // The client's key no longer cancels anything.
  void Release();

 private:
  CancelRegistry* const registry_;
  CancelTarget target_;
  bool has_upstream_key_ = false;
  bool allocated_ = false;
  int32_t pid_ = 0, secret_ = 0;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_CANCEL_KEY_H_
