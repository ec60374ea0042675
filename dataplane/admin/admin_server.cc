#include "dataplane/admin/admin_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace warden::dataplane::admin {

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const std::string& address, uint16_t port, Handlers handlers) {
  std::unique_ptr<AdminServer> server(new AdminServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  http.set_keep_alive_max_count(100);
  http.set_tcp_nodelay(true);  // else Nagle + delayed ACK: +40 ms a scrape
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.Get("/metrics", [metrics = handlers.metrics](const httplib::Request&,
                                                    httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http.Get("/readyz", [ready = handlers.ready](const httplib::Request&,
                                               httplib::Response& res) {
    const absl::StatusOr<std::string> s = ready();
    res.status = s.ok() ? 200 : 503;
    res.set_content(absl::StrCat(s.ok() ? *s : s.status().message(), "\n"),
                    "text/plain");
  });
  int bound = port;
  if (port == 0) {
    bound = http.bind_to_any_port(address);
  } else if (!http.bind_to_port(address, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "admin: cannot listen on ", address, ":", port,
        " (address in use, or not an address of this host)"));
  }
  server->port_ = static_cast<uint16_t>(bound);
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  return server;
}

AdminServer::~AdminServer() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

MetricsText& MetricsText::Add(const std::string& name, const std::string& type,
                              const std::string& help, double value,
                              const std::string& labels) {
  absl::StrAppend(&text_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                  type, "\n", name, labels.empty() ? "" : "{" + labels + "}",
                  " ", absl::StrFormat("%.17g", value), "\n");
  return *this;
}

}  // namespace warden::dataplane::admin
