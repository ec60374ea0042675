// warden-proxy's server: worker threads (one asio::io_context each), one
// SO_REUSEPORT acceptor per listener per worker so the kernel spreads
// connections, and the shared state sessions use.
#ifndef WARDEN_DATAPLANE_SERVER_SERVER_H_
#define WARDEN_DATAPLANE_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  // Stop closes the acceptors and stops the workers (sessions are dropped).
  void Stop();
  // Wait blocks until the workers exit.
  void Wait();

  // The port a listener is bound to (useful with port 0).
  uint16_t BoundPort(const std::string& listener) const;

 private:
  struct Worker {
    asio::io_context io{1};
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
    std::thread thread;
  };
  void Accept(Worker* worker, asio::ip::tcp::acceptor* acceptor,
              const config::Listener* listener);

  config::ProxyConfig config_;
  session::SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::pair<std::string, uint16_t>> bound_;
};

}  // namespace warden::server

#endif  // WARDEN_DATAPLANE_SERVER_SERVER_H_
