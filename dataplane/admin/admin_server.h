// A small HTTP endpoint for operators, off the data path: Prometheus
// metrics (GET /metrics), liveness (GET /healthz) and readiness
// (GET /readyz: 200 once a policy is in force, with a note when the policy
// watch is unhealthy; 503 with the reason before, or when it has been
// unhealthy longer than the proxy allows).
// Served by cpp-httplib on its own threads; plain HTTP, so bind it to
// loopback or a pod-internal address (the default is 127.0.0.1).
#ifndef WARDEN_DATAPLANE_ADMIN_ADMIN_SERVER_H_
#define WARDEN_DATAPLANE_ADMIN_ADMIN_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace warden::dataplane::admin {

struct Handlers {
  // The Prometheus text exposition of the proxy's metrics.
  std::function<std::string()> metrics;
  // The /readyz text when the proxy can serve clients ("ready", or
  // "ready (...)" with what an operator should know); otherwise why not.
  std::function<absl::StatusOr<std::string>()> ready;
};

class AdminServer {
 public:
  // Binds `address`:`port` (0 picks a free port) and serves until
  // destroyed. InvalidArgument / Unavailable name the address.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(
      const std::string& address, uint16_t port, Handlers handlers);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const { return port_; }

 private:
  AdminServer() = default;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  uint16_t port_ = 0;
};

// Builds a Prometheus text exposition, one metric family at a time.
class MetricsText {
 public:
  // `type` is "gauge" or "counter".
  MetricsText& Add(const std::string& name, const std::string& type,
                   const std::string& help, double value,
                   const std::string& labels = "");
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace warden::dataplane::admin

#endif  // WARDEN_DATAPLANE_ADMIN_ADMIN_SERVER_H_
