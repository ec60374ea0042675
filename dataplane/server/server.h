// warden-proxy's server: worker threads (one asio::io_context each), one
// SO_REUSEPORT acceptor per listener per worker so the kernel spreads
// connections, and the shared state sessions use.
#ifndef WARDEN_DATAPLANE_SERVER_SERVER_H_
#define WARDEN_DATAPLANE_SERVER_SERVER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "asio.hpp"
#include "dataplane/config/config.h"
#include "dataplane/session/session.h"

namespace warden::server {

class Server {
 public:
  explicit Server(config::ProxyConfig config);
  ~Server();

  // Start builds TLS contexts and authenticators, binds every listener and
  // starts the workers. Errors name the listener or upstream at fault.
  absl::Status Start();
  // Stop closes the acceptors, tells every client the proxy is shutting down
  // (FATAL 57P01), cancels statements in flight, and stops the workers once
  // their sessions are closed (at most a few seconds).
  void Stop();
  // Wait blocks until the workers exit.
  void Wait();

  // The port a listener is bound to (useful with port 0).
  uint16_t BoundPort(const std::string& listener) const;

 private:
  struct Worker {
    // Sessions, acceptors and timers are only touched by the worker's own
    // thread, so the reactor needs no locking (posts stay thread-safe).
    asio::io_context io{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
        guard;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
    absl::flat_hash_set<session::Session*> sessions;  // worker thread only.
    std::thread thread;
  };
  // Stops the worker once its sessions are gone or `deadline` passed.
  static void StopWhenDrained(Worker* worker,
                              std::chrono::steady_clock::time_point deadline);
  void Accept(Worker* worker, asio::ip::tcp::acceptor* acceptor,
              const config::Listener* listener);

  config::ProxyConfig config_;
  session::SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::pair<std::string, uint16_t>> bound_;
};

}  // namespace warden::server

#endif  // WARDEN_DATAPLANE_SERVER_SERVER_H_
