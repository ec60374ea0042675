// Cancelling a running statement the way PostgreSQL wants it: a
// CancelRequest on a fresh connection to the server that runs it.
#ifndef WARDEN_DATAPLANE_NET_CANCEL_SENDER_H_
#define WARDEN_DATAPLANE_NET_CANCEL_SENDER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "dataplane/net/event_loop.h"

namespace warden::dataplane::net {

// The backend to cancel: where its server listens (a literal address, as
// the connection to it was made) and the key it handed out in
// BackendKeyData.
struct CancelTarget {
  std::string host;
  uint16_t port = 0;
  int32_t pid = 0;
  int32_t secret = 0;
};

// SendCancel sends a CancelRequest for `target` on a fresh connection and
// calls `done` (if set) on `loop` once the server closed that connection,
// which PostgreSQL does after signalling the backend, or the attempt failed.
// Bounded by a 5 s timer. Loop thread only.
void SendCancel(EventLoop* loop, const CancelTarget& target,
                std::function<void()> done = nullptr);

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_CANCEL_SENDER_H_
