#include "dataplane/server/server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/names.h"
#include "dataplane/auth/scram.h"
#include "dataplane/net/address.h"
#include "common/files.h"
#include "common/tls.h"
#include "common/status_macros.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/local_authenticator.h"
#include "dataplane/session/oidc_authenticator.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::server {
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

// The secret of unknown users' mock SCRAM salts (dataplane/auth/scram). It
// must outlive the process: a random one per process told configured users
// (whose salt never changes) from unknown ones to anyone comparing salts
// across a restart, the reason PostgreSQL keeps its mock nonce in the
// cluster. It must not be derived from the users' verifiers or passwords,
// since a salt anyone can ask for would then test password guesses
// offline. So: proxy.mock_auth_secret_file, else a file made once in the
// state directory, else (no persistent place) random, said at start.
absl::StatusOr<std::string> MockAuthSecret(const config::ProxyConfig& config) {
  std::string path = config.proxy.mock_auth_secret_file;
  const bool configured = !path.empty();
  if (!configured && config.policy.control_plane &&
      !config.policy.control_plane->state_dir.empty()) {
    path = absl::StrCat(config.policy.control_plane->state_dir,
                        "/mock-auth.secret");
  }
  if (path.empty()) {
    if (!config.users.empty()) {
      spdlog::warn(
          "no proxy.mock_auth_secret_file and no state directory: unknown "
          "users' SCRAM salts change with every start, so comparing them "
          "across a restart tells configured users from unknown ones");
    }
    return crypto::RandomBytes(32);
  }
  auto existing = ReadFile(path);
  if (existing.ok()) {
    if (existing->size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "proxy.mock_auth_secret_file ", path,
          ": holds fewer than 16 bytes (make one with: head -c 32 "
          "/dev/urandom > FILE)"));
    }
    return *existing;
  }
  if (configured) {
    return absl::InvalidArgumentError(absl::StrCat(
        "proxy.mock_auth_secret_file: ", existing.status().message()));
  }
  auto fresh = crypto::RandomBytes(32);
  if (!fresh.ok()) return fresh.status();
  if (!configured) {
    ::mkdir(config.policy.control_plane->state_dir.c_str(), 0700);
  }
  if (absl::Status s = WriteFileDurably(path, *fresh); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot keep the mock auth secret: ", s.message()));
  }
  return *fresh;
}

}  // namespace

Server::Server(config::ProxyConfig config) : config_(std::move(config)) {
  shared_.config = &config_;
  for (const auto& user : config_.users) {
    shared_.config_user_names.insert(FoldName(user.name));
    shared_.config_user_lookalikes.Add(user.name);
  }
}

Server::~Server() {
  Stop();
  Wait();
}

absl::Status Server::ReloadPolicy() {
  if (config_.policy.control_plane) {
    return absl::FailedPreconditionError(
        "policies come from the control plane; push them with wardenctl");
  }
  if (config_.policy.paths.empty()) {
    return absl::FailedPreconditionError("no policy is configured");
  }
  auto gate =
      gate::Gate::Load(config_.policy.paths, config_.policy.cache_entries);
  if (!gate.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy: ", gate.status().message()));
  }
  std::shared_ptr<const gate::Gate> loaded = *std::move(gate);
  spdlog::info("policy bundle {} in force: {} policies",
               loaded->bundle().digest().substr(0, 12),
               loaded->bundle().policies_size());
  shared_.SetGate(std::move(loaded));
  return absl::OkStatus();
}

absl::Status Server::StartBundleClient() {
  const config::ControlPlaneSettings& cp = *config_.policy.control_plane;
  shared_.governed = true;
  bundle_client::Options options;
  options.address = cp.address;
  options.ca_file = cp.ca_file;
  options.trusted_key_files = cp.trusted_keys;
  options.state_dir = cp.state_dir;
  options.bootstrap_token_file = cp.bootstrap_token_file;
  options.proxy_id = cp.proxy_id;
  // Asked for at enrollment when proxy_id is not configured and the
  // bootstrap token names none: the host name (the pod's in Kubernetes).
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  options.enroll_as = host;
  options.environment = cp.environment;
  options.watch_silence_timeout =
      absl::Milliseconds(cp.watch_silence_timeout_ms);
  const size_t cache_entries = config_.policy.cache_entries;
  auto client = bundle_client::BundleClient::Create(
      options, [this, cache_entries](const warden::v1::PolicyBundle& bundle,
                                     uint64_t revision) {
        shared_.SetGate(std::make_shared<const gate::Gate>(
            bundle, cache_entries, revision));
        spdlog::info("policy revision {} ({}) in force: {} policies",
                     revision, bundle.digest().substr(0, 12),
                     bundle.policies_size());
        // Idle sessions too: a user deactivated in the directory is closed
        // now, not at their next statement. (No sessions before the
        // workers exist; the bundle client starts first.)
        if (!workers_ready_.load(std::memory_order_acquire)) {
          return absl::OkStatus();
        }
        for (auto& worker : workers_) {
          Worker* w = worker.get();
          w->loop->Post([w] {
            std::vector<std::shared_ptr<session::Session>> live;
            live.reserve(w->sessions.size());
            for (auto& [ptr, session] : w->sessions) live.push_back(session);
            for (auto& s : live) s->OnPolicyChanged();
          });
        }
        return absl::OkStatus();
      });
  if (!client.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.control_plane: ", client.status().message()));
  }
  bundle_client_ = *std::move(client);
  if (absl::Status s = bundle_client_->LoadLastKnownGood(); !s.ok()) {
    spdlog::warn("{}; connections are refused (57P03) until {} sends a "
                 "policy bundle",
                 s.ToString(), cp.address);
  }
  bundle_client_->Start();
  return absl::OkStatus();
}

absl::Status Server::StartAudit() {
  if (config_.audit.mode == config::AuditMode::kOff) {
    spdlog::warn("audit is off: sessions and statements are not recorded");
    return absl::OkStatus();
  }
  audit::SpoolOptions options;
  options.max_bytes = config_.audit.max_spool_bytes;
  auto spool = audit::Spool::Open(config_.audit.spool_dir, options);
  if (!spool.ok()) {
    return absl::Status(spool.status().code(),
                        absl::StrCat("audit.spool_dir: ",
                                     spool.status().message()));
  }
  spool_ = *std::move(spool);
  audit::SenderOptions sender;
  sender.address = config_.policy.control_plane->address;
  sender.ca_pem = bundle_client_->server_ca_pem();  // read once, at Create
  recorder_ = std::make_unique<audit::Recorder>(spool_.get());
  bundle_client::BundleClient* client = bundle_client_.get();
  sender_ = std::make_unique<audit::Sender>(
      spool_.get(), sender,
      [client]() -> absl::StatusOr<audit::Sender::Identity> {
        auto id = client->CurrentIdentity();
        if (!id.ok()) return id.status();
        return audit::Sender::Identity{id->key_pem, id->cert_pem,
                                       id->proxy_id, id->environment};
      });
  sender_->Start();
  shared_.recorder = recorder_.get();
  shared_.may_record = [client](const std::string& environment) {
    return client->MayServe(environment);
  };
  shared_.audit_results = config_.audit.results;
  shared_.audit_backlogged_session_rate = config_.audit.backlogged_session_rate;
  if (config_.audit.mode == config::AuditMode::kSync) {
    shared_.audit_sync = sender_.get();
    shared_.audit_sync_timeout_ms = config_.audit.sync_timeout_ms;
  }
  const audit::SpoolStats stats = spool_->stats();
  spdlog::info("audit ({}): spool {} ({} events pending, next sequence {})",
               config_.audit.mode == config::AuditMode::kSync ? "sync" : "async",
               config_.audit.spool_dir, stats.pending_events,
               stats.next_sequence);
  return absl::OkStatus();
}

absl::StatusOr<session::CertAuthenticator::CaSource>
Server::CertificateAuthority(const config::Listener& listener) const {
  if (!listener.tls->client_ca_file.empty()) {
    auto pem = ReadFile(listener.tls->client_ca_file);
    if (!pem.ok()) return pem.status();
    return session::CertAuthenticator::CaSource(
        [pem = *std::move(pem)] { return pem; });
  }
  if (bundle_client_ == nullptr) {
    return absl::InvalidArgumentError(
        "auth: cert needs tls.client_ca_file or a control plane");
  }
  // Warden's CA as learned at enrollment (it may arrive after start).
  const bundle_client::BundleClient* client = bundle_client_.get();
  return session::CertAuthenticator::CaSource(
      [client] { return client->warden_ca_pem(); });
}

absl::Status Server::Start() {
  RaiseFileLimit();
  auto secret = MockAuthSecret(config_);
  if (!secret.ok()) return secret.status();
  // Users configured with a cleartext password get the salt an unknown
  // user of that name would get in the mock exchange: stable, and
  // indistinguishable from one.
  for (auto& user : config_.users) {
    if (user.password.empty()) continue;
    user.scram_verifier = auth::FormatScramVerifier(auth::MakeScramVerifier(
        user.password, auth::ScramMockSalt(*secret, user.name)));
    user.password.clear();
  }
  if (config_.policy.control_plane) {
    if (absl::Status s = StartBundleClient(); !s.ok()) return s;
    if (absl::Status s = StartAudit(); !s.ok()) return s;
  } else if (!config_.policy.paths.empty()) {
    shared_.governed = true;
    if (absl::Status loaded = ReloadPolicy(); !loaded.ok()) return loaded;
  } else {
    spdlog::warn(
        "no policy configured (policy.paths): statements are relayed "
        "without policy checks");
  }
  for (const auto& l : config_.listeners) {
    if (l.tls_mode != config::ClientTlsMode::kDisable) {
      auto ctx = tls::MakeServerContext(l.tls->cert_file, l.tls->key_file);
      if (!ctx.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener ", l.name, ": ", ctx.status().message()));
      }
      if (l.auth == config::ClientAuthMethod::kCert) {
        if (absl::Status s = tls::RequestClientCertificates(
                ctx->get(), l.tls->client_ca_file);
            !s.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("listener ", l.name, ": ", s.message()));
        }
      }
      shared_.listener_tls[l.name] = *ctx;
    }
    session::OidcAuthenticator::BundleSource from_bundle;
    if (config_.policy.control_plane) {
      // Providers pushed with the policies (kind: IdentityProvider), keys
      // fetched and signed by warden-control.
      from_bundle = [this]() -> std::shared_ptr<const warden::v1::PolicyBundle> {
        auto gate = shared_.CurrentGate();
        if (gate == nullptr) return nullptr;
        return std::shared_ptr<const warden::v1::PolicyBundle>(
            gate, &gate->bundle());
      };
    }
    if (l.auth == config::ClientAuthMethod::kCert) {
      auto ca = CertificateAuthority(l);
      if (!ca.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener ", l.name, ": ", ca.status().message()));
      }
      shared_.authenticators[l.name] =
          std::make_unique<session::CertAuthenticator>(*std::move(ca),
                                                       from_bundle);
      continue;
    }
    if (l.auth == config::ClientAuthMethod::kOidc) {
      auto oidc = session::OidcAuthenticator::Create(config_, l, from_bundle);
      if (!oidc.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener ", l.name, ": ", oidc.status().message()));
      }
      shared_.authenticators[l.name] = *std::move(oidc);
      continue;
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

  resolver_ = std::make_unique<net::Resolver>();
  shared_.resolver = resolver_.get();

  int workers = config_.proxy.workers;
  if (workers <= 0) workers = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < workers; ++i) {
    auto worker = std::make_unique<Worker>();
    WARDEN_RETURN_IF_ERROR(worker->loop->Init());
    workers_.push_back(std::move(worker));
  }
  workers_ready_.store(true, std::memory_order_release);
  for (const auto& l : config_.listeners) {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    if (!net::ParseAddress(l.address, l.port, &addr, &addr_len)) {
      return absl::InvalidArgumentError(
          absl::StrCat("listener ", l.name, ": bad address '", l.address, "'"));
    }
    uint16_t port = l.port;
    for (auto& worker : workers_) {
      net::ParseAddress(l.address, port, &addr, &addr_len);
      const int fd =
          socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int one = 1;
      if (fd < 0 ||
          setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
          setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
          bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 ||
          listen(fd, SOMAXCONN) != 0) {
        const std::string error = std::strerror(errno);
        if (fd >= 0) close(fd);
        return absl::UnavailableError(
            absl::StrCat("listener ", l.name, ": cannot listen on ", l.address,
                         ":", port, ": ", error));
      }
      sockaddr_storage bound{};
      socklen_t bound_len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
      port = ntohs(bound.ss_family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      auto acceptor = std::make_unique<Acceptor>();
      acceptor->server = this;
      acceptor->worker = worker.get();
      acceptor->listener = &l;
      acceptor->fd = fd;
      WARDEN_RETURN_IF_ERROR(worker->loop->Watch(fd, acceptor.get()));
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
  shared_.login_failures.set_options(LoginFailures::Options{
      absl::Milliseconds(config_.proxy.failed_login_window_ms),
      config_.proxy.failed_logins_recorded,
      config_.proxy.failed_logins_refused_after});
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->thread = std::thread([w] { w->loop->Run(); });
  }
  workers_[0]->loop->Post([this] { RecordLoginSummaries(false); });
  if (config_.admin) {
    auto admin = admin::AdminServer::Start(
        config_.admin->address, config_.admin->port,
        admin::Handlers{[this] { return MetricsText(); },
                        [this] { return Ready(); }});
    if (!admin.ok()) return admin.status();
    admin_ = *std::move(admin);
    spdlog::info("admin endpoint on http://{}:{} (/metrics, /healthz, "
                 "/readyz)",
                 config_.admin->address, admin_->port());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Server::Ready() const {
  if (stopping_.load()) return absl::UnavailableError("shutting down");
  if (shared_.governed && shared_.CurrentGate() == nullptr) {
    return absl::UnavailableError(
        "no policy in force yet: connections are refused (57P03)");
  }
  if (bundle_client_ == nullptr) return std::string("ready");
  // Serving the last bundle while the control plane cannot be reached (or
  // its bundles cannot be received) is by design; saying so is not
  // optional: deactivations and revocations published since are not here.
  const auto health = bundle_client_->watch_health();
  if (health.connected) return std::string("ready");
  const absl::Duration down = absl::Now() - health.since;
  const std::string what = absl::StrCat(
      "policy revision ", bundle_client_->running_revision(),
      "; no healthy policy watch for ", absl::FormatDuration(
          absl::Trunc(down, absl::Seconds(1))),
      health.last_error.empty() ? ""
                                : absl::StrCat(": ", health.last_error));
  const int max_ms = config_.policy.control_plane->max_disconnected_ms;
  if (max_ms > 0 && down > absl::Milliseconds(max_ms)) {
    return absl::UnavailableError(absl::StrCat(
        "policy may be stale (control_plane.max_disconnected ",
        absl::FormatDuration(absl::Milliseconds(max_ms)), "): ", what));
  }
  return absl::StrCat("ready (", what, ")");
}

std::string Server::MetricsText() const {
  admin::MetricsText m;
  m.Add("warden_proxy_client_connections", "gauge",
        "Client connections open now.",
        shared_.client_connections.load(std::memory_order_relaxed));
  if (shared_.governed) {
    const auto gate = shared_.CurrentGate();
    m.Add("warden_policy_revision", "gauge",
          "Control-plane revision of the policy bundle in force (0: from "
          "files, or none yet).",
          gate == nullptr ? 0 : gate->revision());
    m.Add("warden_policy_in_force", "gauge",
          "1 when a policy is in force, 0 while connections are refused.",
          gate == nullptr ? 0 : 1);
  }
  if (bundle_client_ != nullptr) {
    const auto health = bundle_client_->watch_health();
    m.Add("warden_policy_watch_connected", "gauge",
          "1 while the policy watch on warden-control is healthy (open for "
          "10 s, or delivering bundles, and not silent: heartbeats arriving).",
          health.connected ? 1 : 0);
    m.Add("warden_policy_watch_unhealthy_seconds", "gauge",
          "Seconds since the policy watch was last healthy (0 while it is): "
          "how stale the policy may be.",
          health.connected
              ? 0
              : absl::ToDoubleSeconds(absl::Now() - health.since));
  }
  if (spool_ != nullptr) {
    const audit::SpoolStats st = spool_->stats();
    const absl::Time now = absl::Now();
    m.Add("warden_audit_spool_events", "gauge",
          "Audit events in the spool not yet acknowledged by the control "
          "plane (spool depth).",
          st.pending_events);
    m.Add("warden_audit_spool_bytes", "gauge",
          "Bytes of unacknowledged audit events in the spool.",
          st.pending_bytes);
    m.Add("warden_audit_spool_max_bytes", "gauge",
          "Spool capacity (audit.max_spool_bytes); statements are refused "
          "with 53000 when it is reached.",
          config_.audit.max_spool_bytes);
    m.Add("warden_audit_spool_segments", "gauge", "Spool segment files.",
          st.segments);
    m.Add("warden_audit_last_sequence", "gauge",
          "Sequence number of the last audit event recorded.",
          st.next_sequence - 1);
    m.Add("warden_audit_acknowledged_sequence", "gauge",
          "Highest sequence the control plane acknowledged.", st.acked);
    m.Add("warden_audit_fsynced_sequence", "gauge",
          "Highest sequence known to be fsynced to the spool.",
          st.synced_through);
    m.Add("warden_audit_lag_seconds", "gauge",
          "Age of the oldest unacknowledged event (0 when none): how far "
          "the control plane's log is behind this proxy.",
          st.oldest_pending == absl::InfiniteFuture()
              ? 0.0
              : absl::ToDoubleSeconds(now - st.oldest_pending));
    m.Add("warden_failed_logins_summarized_total", "counter",
          "Failed logins recorded in a summary event rather than one by "
          "one (a flood from one address).",
          shared_.login_failures.suppressed_total());
    m.Add("warden_connections_refused_failed_logins_total", "counter",
          "Connections refused because their address failed to log in too "
          "often.",
          shared_.login_failures.refused_total());
    m.Add("warden_audit_results_lost_total", "counter",
          "Result events that could not be recorded (spool full or "
          "failing); their statements had already run.",
          shared_.audit_results_lost.load(std::memory_order_relaxed));
    m.Add("warden_audit_sessions_throttled_total", "counter",
          "Times a session was paused until the end of its second because "
          "it recorded more audit events than its budget while the spool "
          "was more than half full (audit.backlogged_session_rate).",
          shared_.audit_sessions_throttled.load(std::memory_order_relaxed));
    if (sender_ != nullptr) {
      m.Add("warden_audit_sender_healthy", "gauge",
            "1 when the last exchange with the control plane succeeded.",
            sender_->last_error().empty() ? 1 : 0);
    }
  }
  return m.text();
}

void Server::Acceptor::OnEvents(uint32_t) {
  for (;;) {
    const int client =
        accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // EMFILE and friends: the backlog is not drained, so no new edge
        // will come by itself; retry shortly instead of stalling.
        spdlog::warn("accept on {}: {}", listener->name, std::strerror(errno));
        worker->loop->AddTimer(std::chrono::milliseconds(100), [this] {
          if (fd >= 0) OnEvents(EPOLLIN);
        });
      }
      return;
    }
    server->OnAccept(worker, listener, client);
  }
}

void Server::OnAccept(Worker* worker, const config::Listener* listener,
                      int fd) {
  if (stopping_.load(std::memory_order_relaxed)) {
    close(fd);
    return;
  }
  if (shared_.client_connections.load(std::memory_order_relaxed) >=
      config_.proxy.max_client_connections) {
    std::string error;
    pgwire::WriteErrorResponse(&error, "FATAL", pgwire::kTooManyConnections,
                               "sorry, too many clients already");
    (void)!::send(fd, error.data(), error.size(), MSG_NOSIGNAL);
    close(fd);
    return;
  }
  std::make_shared<session::Session>(&shared_, listener, fd, worker->loop.get(),
                                     &worker->sessions)
      ->Start();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  RecordLoginSummaries(/*all=*/true);  // nothing counted is left unrecorded
  admin_.reset();
  if (bundle_client_) bundle_client_->Stop();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->loop->Post([w, deadline] {
      for (auto& a : w->acceptors) {
        w->loop->Unwatch(a->fd);
        close(a->fd);
        a->fd = -1;
      }
      std::vector<std::shared_ptr<session::Session>> live;
      for (auto& [ptr, session] : w->sessions) live.push_back(session);
      for (auto& s : live) s->Shutdown();
      StopWhenDrained(w, deadline);
    });
  }
}

void Server::RecordLoginSummaries(bool all) {
  std::vector<LoginFailures::Summary> summaries =
      shared_.login_failures.TakeSummaries(absl::Now(), all);
  if (recorder_ != nullptr && summaries.size() > 1 && recorder_->Fill() > 0.5) {
    // The spool is backlogged: one event for all of them, not one per
    // address (red team: 250 addresses' summaries took it from 63% to
    // full in 3 s).
    summaries = {LoginFailures::Combine(summaries)};
  }
  for (const auto& s : summaries) {
    const std::string text = LoginFailures::Describe(s);
    spdlog::warn("{}", text);
    if (recorder_ == nullptr) continue;
    warden::v1::AuditEvent event;
    event.set_kind(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
    auto* a = event.mutable_authentication();
    a->set_success(false);
    a->set_method("summary");
    a->set_reason(text);
    // Under the environment of the listeners that saw the failures, so
    // `audit search --env dev` finds a flood on the dev listener (red
    // team); failures on several go under the first, all named in text.
    if (!s.environments.empty()) event.set_environment(s.environments[0]);
    a->set_client_address(s.address);
    a->set_count(s.failures);
    a->set_recorded(s.recorded);
    a->set_refused(s.refused);
    if (auto recorded = recorder_->Record(std::move(event)); !recorded.ok()) {
      spdlog::error("failed-login summary not recorded: {}",
                    recorded.status().ToString());
    }
  }
  if (all || stopping_.load()) return;
  ReleaseMemory();
  workers_[0]->loop->AddTimer(std::chrono::milliseconds(2000),
                              [this] { RecordLoginSummaries(false); });
}

void Server::ReleaseMemory() {
  const int now = shared_.client_connections.load(std::memory_order_relaxed);
  if (now < connections_at_last_tick_) malloc_trim(0);
  connections_at_last_tick_ = now;
}

void Server::StopWhenDrained(Worker* worker,
                             std::chrono::steady_clock::time_point deadline) {
  if (worker->sessions.empty() ||
      std::chrono::steady_clock::now() >= deadline) {
    worker->loop->Stop();
    return;
  }
  worker->loop->AddTimer(std::chrono::milliseconds(20), [worker, deadline] {
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

}  // namespace warden::dataplane::server
