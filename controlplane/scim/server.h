// The SCIM endpoint on HTTPS (cpp-httplib's SSLServer, TLS 1.2+), serving
// controlplane/scim's Service on its own threads. Idle and slow peers are
// bounded by short timeouts and a ConnectionGuard (connection_guard.h;
// the numbers are in controlplane/scim/README.md).
#ifndef WARDEN_CONTROLPLANE_SCIM_SERVER_H_
#define WARDEN_CONTROLPLANE_SCIM_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "controlplane/scim/scim.h"

namespace httplib {
class SSLServer;
}

namespace warden::controlplane::scim {

class ConnectionGuard;

class Server {
 public:
  // Listens on `host`:`port` (0: any free port) with the PEM certificate
  // chain and key; `service` is not owned and must outlive the server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const Service* service, const std::string& host, uint16_t port,
      const std::string& certificate_chain_pem, const std::string& key_pem);
  ~Server();  // stops listening and waits for the threads.

  uint16_t port() const { return port_; }

 private:
  Server() = default;
  // Declared first: it must outlive the server's threads.
  std::unique_ptr<ConnectionGuard> guard_;
  std::unique_ptr<httplib::SSLServer> http_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace warden::controlplane::scim

#endif  // WARDEN_CONTROLPLANE_SCIM_SERVER_H_
