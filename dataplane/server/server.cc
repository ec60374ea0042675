#include "dataplane/server/server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/local_authenticator.h"
#include "spdlog/spdlog.h"

namespace warden::server {
namespace {

// Thousands of clients each cost two descriptors; lift the soft limit.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

Server::Server(config::ProxyConfig config) : config_(std::move(config)) {
  shared_.config = &config_;
}

Server::~Server() {
  Stop();
  Wait();
}

absl::Status Server::Start() {
  RaiseFileLimit();
  auto secret = crypto::RandomBytes(32);
  if (!secret.ok()) return secret.status();
  for (const auto& l : config_.listeners) {
    if (l.tls_mode != config::ClientTlsMode::kDisable) {
      auto ctx = tls::MakeServerContext(l.tls->cert_file, l.tls->key_file);
      if (!ctx.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener ", l.name, ": ", ctx.status().message()));
      }
      shared_.listener_tls[l.name] = *ctx;
    }
    shared_.authenticators[l.name] =
        std::make_unique<session::LocalAuthenticator>(&config_, l.auth,
                                                      *secret);
  }
  for (const auto& env : config_.environments) {
    for (const auto& db : env.databases) {
      const auto& up = db.upstream;
      if (up.tls_mode == config::UpstreamTlsMode::kDisable) continue;
      auto ctx = tls::MakeClientContext(
          up.ca_file, up.tls_mode != config::UpstreamTlsMode::kRequire);
      if (!ctx.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("environment ", env.name, " database ", db.name, ": ",
                         ctx.status().message()));
      }
      shared_.upstream_tls[&up] = *ctx;
    }
  }

  int workers = config_.proxy.workers;
  if (workers <= 0) workers = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
  for (const auto& l : config_.listeners) {
    asio::error_code ec;
    const asio::ip::address address = asio::ip::make_address(l.address, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("listener ", l.name, ": bad address '", l.address, "'"));
    }
    uint16_t port = l.port;
    for (auto& worker : workers_) {
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(worker->io);
      const asio::ip::tcp::endpoint endpoint(address, port);
      acceptor->open(endpoint.protocol(), ec);
      if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        const int one = 1;
        if (setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT,
                       &one, sizeof(one)) != 0) {
          ec = asio::error_code(errno, asio::system_category());
        }
      }
      if (!ec) acceptor->bind(endpoint, ec);
      if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("listener ", l.name, ": cannot listen on ", l.address,
                         ":", port, ": ", ec.message()));
      }
      port = acceptor->local_endpoint().port();
      Accept(worker.get(), acceptor.get(), &l);
      worker->acceptors.push_back(std::move(acceptor));
    }
    bound_.emplace_back(l.name, port);
    spdlog::info(
        "listener {} on {}:{} (environment {}, TLS {})", l.name, l.address,
        port, l.environment,
        l.tls_mode == config::ClientTlsMode::kDisable
            ? "off"
            : (l.tls_mode == config::ClientTlsMode::kRequire ? "required"
                                                             : "allowed"));
  }
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->guard.emplace(asio::make_work_guard(w->io));
    w->thread = std::thread([w] { w->io.run(); });
  }
  return absl::OkStatus();
}

void Server::Accept(Worker* worker, asio::ip::tcp::acceptor* acceptor,
                    const config::Listener* listener) {
  acceptor->async_accept(worker->io, [this, worker, acceptor, listener](
                                         const asio::error_code& ec,
                                         asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (shared_.client_connections.load(std::memory_order_relaxed) >=
          config_.proxy.max_client_connections) {
        std::string error;
        pgwire::WriteErrorResponse(&error, "FATAL", pgwire::kTooManyConnections,
                                   "sorry, too many clients already");
        asio::error_code ignored;
        socket.non_blocking(true, ignored);
        ::send(socket.native_handle(), error.data(), error.size(),
               MSG_NOSIGNAL);
        socket.close(ignored);
      } else {
        std::make_shared<session::Session>(&shared_, listener,
                                           std::move(socket),
                                           &worker->sessions)
            ->Start();
      }
    } else {
      // EMFILE and friends: log and keep accepting.
      spdlog::warn("accept on {}: {}", listener->name, ec.message());
    }
    Accept(worker, acceptor, listener);
  });
}

void Server::Stop() {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->io, [w, deadline] {
      for (auto& a : w->acceptors) {
        asio::error_code ignored;
        a->close(ignored);
      }
      std::vector<std::shared_ptr<session::Session>> live;
      for (session::Session* s : w->sessions) {
        live.push_back(s->shared_from_this());
      }
      for (auto& s : live) s->Shutdown();
      w->guard.reset();
      StopWhenDrained(w, deadline);
    });
  }
}

void Server::StopWhenDrained(Worker* worker,
                             std::chrono::steady_clock::time_point deadline) {
  if (worker->sessions.empty() ||
      std::chrono::steady_clock::now() >= deadline) {
    worker->io.stop();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(
      worker->io, std::chrono::milliseconds(20));
  timer->async_wait([worker, deadline, timer](const asio::error_code&) {
    StopWhenDrained(worker, deadline);
  });
}

void Server::Wait() {
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

uint16_t Server::BoundPort(const std::string& listener) const {
  for (const auto& [name, port] : bound_) {
    if (name == listener) return port;
  }
  return 0;
}

}  // namespace warden::server
