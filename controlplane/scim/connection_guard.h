// Keeps idle and slow peers from stalling the SCIM listener.
//
// cpp-httplib gives each connection one worker thread from its first TLS
// byte until it closes, and waits up to its read timeout for every read, so
// 40 sockets that never finished their TLS handshake held every worker and
// SCIM stopped answering. cpp-httplib has no hook at accept (its listener
// loop and `process_and_close_socket` are private), so the guard works
// through the two hooks it has:
//   - `new_task_queue`: a fixed pool of workers with a bounded queue; when
//     a connection is accepted while the queue is full, the one that
//     waited longest is closed at once (on the listener thread, at its
//     first TLS step);
//   - OpenSSL's callbacks on the listener's SSL_CTX: the first step of a
//     TLS handshake runs on the worker before any byte is read, and
//     `SSL_free` runs before the socket is closed, so the guard knows each
//     connection's socket and peer for exactly its lifetime.
// A connection is "unfinished" from its TLS handshake, and again from each
// response it was sent, until its next request has fully arrived (headers
// and body). The guard closes an unfinished connection (shutdown(2), which
// wakes its worker at once):
//   - when its peer has more than `unfinished_per_peer` unfinished
//     connections, the peer's oldest (accepted, or last answered, first):
//     a peer that opens idle sockets closes its own idle sockets, and a
//     request it sends afterwards still gets a worker;
//   - while connections wait for a worker, the oldest ones unfinished for
//     `pressure_age` or more, one per waiting connection: idle sockets from
//     many addresses give their workers up within about `pressure_age`;
//   - once unfinished for `request_deadline`.
// Connections whose request is being handled or answered are never closed
// by the guard.
//
// Thread-safe. The guard must outlive the server's threads (every SSL of
// a watched SSL_CTX).
#ifndef WARDEN_CONTROLPLANE_SCIM_CONNECTION_GUARD_H_
#define WARDEN_CONTROLPLANE_SCIM_CONNECTION_GUARD_H_

#include <openssl/ssl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "httplib.h"

namespace warden::controlplane::scim {

struct ConnectionLimits {
  // Worker threads: connections served at once, unfinished ones included.
  // Each is a thread with its stack reserved (mostly untouched).
  // Default: 128.
  size_t workers = 128;
  // Accepted connections waiting for a worker. A connection accepted while
  // this many wait closes the one that waited longest, without an answer.
  // Default: 512.
  size_t queued = 512;
  // Unfinished connections one peer (an IPv4 address, an IPv6 /64) may
  // hold; one more closes that peer's oldest unfinished connection.
  // Default: 8.
  size_t unfinished_per_peer = 8;
  // While connections wait for a worker, unfinished connections this old
  // are closed to make room (oldest first, one per waiting connection).
  // Default: 500 ms.
  absl::Duration pressure_age = absl::Milliseconds(500);
  // How long a connection may stay unfinished: TLS handshake, request
  // headers and body together, or the wait for the next request on a
  // kept-alive connection (the listener's keep-alive timeout is shorter).
  // Default: 10 s.
  absl::Duration request_deadline = absl::Seconds(10);
  // How often `pressure_age` and `request_deadline` are checked.
  // Default: 100 ms.
  absl::Duration sweep_interval = absl::Milliseconds(100);
  // How often what the guard closed is logged (a warning, when it closed
  // anything). Default: 10 s.
  absl::Duration report_interval = absl::Seconds(10);
};

class ConnectionGuard {
 public:
  explicit ConnectionGuard(const ConnectionLimits& limits);
  ~ConnectionGuard();  // Stop()

  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Follows the connections of `ctx` (its info callback and ex_data).
  void Watch(SSL_CTX* ctx);
  // For httplib::Server::new_task_queue: the bounded pool (the caller, i.e.
  // cpp-httplib, owns and shuts it down).
  httplib::TaskQueue* NewTaskQueue();
  // The request of the connection of `ssl` has fully arrived (its handler
  // runs): no longer unfinished. A null or unwatched `ssl` is ignored.
  void RequestArrived(const SSL* ssl);
  // Its response was written: unfinished again, until the next request;
  // closed instead after CloseAfterResponse.
  void ResponseSent(const SSL* ssl);
  // Closes the connection of `ssl` once its response is written: for a
  // request refused before its body was read (what is left of the body
  // would otherwise be read as the next request).
  void CloseAfterResponse(const SSL* ssl);
  // Closes every unfinished connection, and every new one at its first TLS
  // step; ends the guard's thread. For when the server stops. Idempotent.
  void Stop();

 private:
  struct Connection {
    ConnectionGuard* guard;
    int fd;
    std::string peer;
    bool unfinished = true;
    bool closed = false;  // shut down by the guard
    bool close_after_response = false;
    absl::Time since;  // became unfinished
    // For "oldest": its accept, or its last response, in ticks_.
    uint64_t order = 0;
  };

  static int SslIndex();
  static int CtxIndex();
  static void OnInfo(const SSL* ssl, int where, int ret);
  static void OnFree(void* parent, void* ptr, CRYPTO_EX_DATA* data, int index,
                     long argl, void* argp);  // NOLINT(runtime/int)

  void HandshakeStarted(SSL* ssl);
  void Forget(Connection* connection);
  // Closes `peer`'s oldest unfinished connection if it has too many.
  void LimitPeer(const std::string& peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(Connection* connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One pass of the deadline and pressure rules.
  void SweepOnce(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Sweep();

  const ConnectionLimits limits_;
  // Accepts (numbered by the pool, in accept order) and responses; from 1.
  std::atomic<uint64_t> ticks_{1};
  // Connections in the pool's queue that no idle worker is about to take.
  std::atomic<size_t> waiting_{0};
  absl::Mutex mu_;
  // Live connections (at most about `workers`); owned, freed with their SSL.
  std::vector<Connection*> connections_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Closed since the last report: queue full, over the peer limit, to make
  // room for waiting connections, past the deadline.
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t over_peer_limit_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t for_room_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t past_deadline_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread sweeper_;
};

}  // namespace warden::controlplane::scim

#endif  // WARDEN_CONTROLPLANE_SCIM_CONNECTION_GUARD_H_
