// warden-control: Warden's control plane (single node). Stores policies and
// tokens in RocksDB behind an ordered log, signs policy bundles, serves the
// gRPC API to wardenctl and CI.
//
//   warden-control --data-dir DIR [--listen 127.0.0.1:7443]
//                  [--tls-cert server.pem --tls-key server.key | --tls-san N]
//                  [--signing-key DIR/signing.key] [--proxy-cert-ttl 24h]
//                  [--user-cert-ttl 8h] [--login-failure-window 60s]
//                  [--login-failures-recorded 20]
//                  [--login-failures-refused-after 100]
//                  [--shutdown-timeout 20s]
//
// First start: generates the Ed25519 signing key (DIR/signing.key, 0600;
// public half in DIR/signing.pub, which proxies trust), Warden's CA
// (DIR/ca.key, 0600, and DIR/ca.crt) and a bootstrap admin token
// (DIR/admin.token, 0600). It always speaks TLS: with the operator's
// certificate, or with one its CA issues at each start for localhost,
// 127.0.0.1, ::1 and every --tls-san. Client certificates, when presented,
// must come from Warden's CA (proxies: Watch and Renew). People get
// short-lived client certificates from the same CA with `wardenctl login`
// (Login service: an identity provider's ID token for a certificate).
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/crypto.h"
#include "common/files.h"
#include "common/login_failures.h"
#include "controlplane/audit/checkpointer.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/ca/ca.h"
#include "controlplane/directory/directory.h"
#include "controlplane/distribution/distribution.h"
#include "controlplane/idp/keys.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/proxies/registry.h"
#include "controlplane/scim/scim.h"
#include "controlplane/scim/server.h"
#include "controlplane/server/audit_services.h"
#include "controlplane/server/coalescer.h"
#include "controlplane/server/login_service.h"
#include "controlplane/server/services.h"
#include "controlplane/log/etcd_log.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

namespace cp = warden::controlplane;

absl::StatusOr<std::string> LoadOrCreateSigningKey(const std::string& path,
                                                   const std::string& pub) {
  auto existing = warden::ReadFile(path);
  if (existing.ok()) return existing;
  auto key = warden::crypto::GenerateEd25519Key();
  if (!key.ok()) return key.status();
  if (auto s = warden::WriteFileDurably(path, key->private_pem); !s.ok()) return s;
  std::ofstream(pub) << key->public_pem;
  spdlog::info("generated signing key {} (public key: {})", path, pub);
  return key->private_pem;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // As in warden-proxy: Debian's Abseil keeps the lock-order graph on
  // every Mutex::Lock unless told not to; tests and debug builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // SIGINT and SIGTERM are taken by sigwait at the end of main, after the
  // server is up. Blocked here, before any thread starts, so every thread
  // (gRPC's, the log's watch, the follower) inherits the mask: otherwise
  // a SIGTERM delivered to one of them, or before the wait, killed the
  // process without its orderly shutdown.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  CLI::App app{"warden-control: Warden's control plane", "warden-control"};
  std::string data_dir, listen = "127.0.0.1:7443", tls_cert, tls_key,
                        signing_key, proxy_cert_ttl_text = "24h",
                        user_cert_ttl_text = "8h", idp_ca_file,
                        idp_refresh_text = "10m", scim_listen,
                        proxy_max_age_text = "8760h",
                        login_failure_window_text = "60s",
                        watch_heartbeat_text = "5s";
  int login_failures_recorded = 20, login_failures_refused_after = 100;
  std::vector<std::string> tls_sans;
  // Cluster mode: the ordered log in etcd, shared by every replica.
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/warden/log/", etcd_ca_file, etcd_cert_file,
              etcd_key_file;
  bool etcd_plaintext = false;
  std::string replica_name;
  app.add_option("--replica-name", replica_name,
                 "Cluster mode: this replica's name, stable across restarts "
                 "and unique in the cluster (its own audit events are "
                 "recorded as control/warden-control-NAME); default: "
                 "HOSTNAME-PORT");
  app.add_option("--etcd-endpoints", etcd_endpoints,
                 "Run as a replica of a cluster whose ordered log is in "
                 "etcd: its client endpoints, host:port (comma-separated)")
      ->delimiter(',');
  app.add_option("--etcd-prefix", etcd_prefix,
                 "Key prefix of the cluster's log in etcd (ends in '/')");
  app.add_option("--etcd-ca-file", etcd_ca_file,
                 "PEM CA that signed etcd's serving certificates");
  app.add_option("--etcd-cert-file", etcd_cert_file,
                 "PEM client certificate of this replica for etcd");
  app.add_option("--etcd-key-file", etcd_key_file,
                 "PEM key of --etcd-cert-file");
  app.add_flag("--etcd-plaintext", etcd_plaintext,
               "Talk to etcd without TLS (a trusted loopback only)");
  std::string create_shared_keys;
  app.add_option("--create-shared-keys", create_shared_keys,
                 "Create the keys every replica of a cluster shares (ca.key, "
                 "ca.crt, signing.key, signing.pub) in this new directory, "
                 "then exit");
  app.add_option("--data-dir", data_dir,
                 "State directory (log, store, keys); required");
  app.add_option("--listen", listen, "host:port to serve gRPC on")
      ->capture_default_str();
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain");
  app.add_option("--tls-key", tls_key, "PEM private key");
  app.add_option("--signing-key", signing_key,
                 "Ed25519 private key (PEM); default DATA_DIR/signing.key");
  app.add_option("--tls-san", tls_sans,
                 "Extra DNS name or IP for the certificate warden-control "
                 "issues itself when --tls-cert is not given (repeatable)");
  app.add_option("--proxy-cert-ttl", proxy_cert_ttl_text,
                 "Lifetime of proxy client certificates (proxies renew at "
                 "two thirds)")
      ->capture_default_str();
  app.add_option("--proxy-max-age", proxy_max_age_text,
                 "How long after enrollment a proxy may keep renewing its "
                 "certificate before it must be enrolled again (0: forever)")
      ->capture_default_str();
  app.add_option("--user-cert-ttl", user_cert_ttl_text,
                 "Lifetime of the client certificates `wardenctl login` "
                 "gets for people")
      ->capture_default_str();
  app.add_option("--idp-ca-file", idp_ca_file,
                 "PEM CA bundle to verify identity providers' HTTPS with "
                 "(default: the system's)");
  app.add_option("--idp-refresh", idp_refresh_text,
                 "How often identity providers' keys are fetched again; a "
                 "change is published as a new policy revision")
      ->capture_default_str();
  app.add_option("--watch-heartbeat", watch_heartbeat_text,
                 "How often every proxy's policy watch stream gets a "
                 "heartbeat; a proxy gives a stream up as dead (and "
                 "reconnects) after three are missed")
      ->capture_default_str();
  app.add_option("--scim-listen", scim_listen,
                 "host:port to serve SCIM 2.0 on (HTTPS, same certificate "
                 "as gRPC; bearer: a token with the scim scope); off when "
                 "empty");
  app.add_option("--login-failure-window", login_failure_window_text,
                 "Window in which refused `wardenctl login` calls from one "
                 "address are counted")
      ->capture_default_str();
  app.add_option("--login-failures-recorded", login_failures_recorded,
                 "Refused logins per address and window recorded one by one; "
                 "the rest are one summary event per window")
      ->capture_default_str();
  app.add_option("--login-failures-refused-after",
                 login_failures_refused_after,
                 "Refused logins from one address after which its calls are "
                 "refused unread until the window ends (0: never)")
      ->capture_default_str();
  std::string shutdown_timeout_text = "20s";
  app.add_option("--shutdown-timeout", shutdown_timeout_text,
                 "After SIGTERM, how long requests still running may take "
                 "before warden-control exits anyway (everything committed "
                 "is durable)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto logger = warden::log::InstallStderrLogger("warden-control");

  if (!create_shared_keys.empty()) {
    // One source for what every replica must share: made once, then
    // distributed (a Kubernetes Secret, a file copied to each data dir).
    if (mkdir(create_shared_keys.c_str(), 0700) != 0) {
      std::cerr << "warden-control: --create-shared-keys " << create_shared_keys
                << ": " << std::strerror(errno)
                << " (it must be a new directory)\n";
      return 2;
    }
    auto authority = cp::ca::Authority::LoadOrCreate(create_shared_keys);
    auto signing = LoadOrCreateSigningKey(create_shared_keys + "/signing.key",
                                          create_shared_keys + "/signing.pub");
    if (!authority.ok() || !signing.ok()) {
      std::cerr << "warden-control: cannot create the shared keys: "
                << (authority.ok() ? signing.status() : authority.status())
                << "\n";
      return 1;
    }
    std::cout << "created " << create_shared_keys
              << "/{ca.key,ca.crt,signing.key,signing.pub}: copy ca.key and "
                 "ca.crt into each replica's --data-dir and give each "
                 "--signing-key "
              << create_shared_keys << "/signing.key\n";
    return 0;
  }
  if (data_dir.empty()) {
    std::cerr << "warden-control: --data-dir is required\n";
    return 2;
  }

  if (tls_cert.empty() != tls_key.empty()) {
    std::cerr << "warden-control: --tls-cert and --tls-key go together\n";
    return 2;
  }
  if (!tls_cert.empty() && !tls_sans.empty()) {
    std::cerr << "warden-control: --tls-san names the certificate "
                 "warden-control issues itself; put the names in your "
                 "--tls-cert instead\n";
    return 2;
  }
  absl::Duration proxy_cert_ttl;
  if (!absl::ParseDuration(proxy_cert_ttl_text, &proxy_cert_ttl) ||
      proxy_cert_ttl < absl::Seconds(3)) {
    std::cerr << "warden-control: --proxy-cert-ttl must be a duration of at "
                 "least 3s, e.g. 24h\n";
    return 2;
  }
  absl::Duration proxy_max_age;
  if (!absl::ParseDuration(proxy_max_age_text, &proxy_max_age) ||
      proxy_max_age < absl::ZeroDuration() ||
      (proxy_max_age > absl::ZeroDuration() && proxy_max_age < proxy_cert_ttl)) {
    std::cerr << "warden-control: --proxy-max-age must be 0 (forever) or a "
                 "duration of at least --proxy-cert-ttl, e.g. 8760h\n";
    return 2;
  }
  absl::Duration shutdown_timeout;
  if (!absl::ParseDuration(shutdown_timeout_text, &shutdown_timeout) ||
      shutdown_timeout < absl::Seconds(1)) {
    std::cerr << "warden-control: --shutdown-timeout must be a duration of "
                 "at least 1s, e.g. 20s\n";
    return 2;
  }
  warden::LoginFailures::Options login_failures;
  if (!absl::ParseDuration(login_failure_window_text,
                           &login_failures.window) ||
      login_failures.window < absl::Seconds(1) ||
      login_failures_recorded < 0 || login_failures_refused_after < 0) {
    std::cerr << "warden-control: --login-failure-window must be a duration "
                 "of at least 1s and the login failure counts 0 or more\n";
    return 2;
  }
  login_failures.record_each = login_failures_recorded;
  login_failures.refuse_after = login_failures_refused_after;
  absl::Duration user_cert_ttl;
  if (!absl::ParseDuration(user_cert_ttl_text, &user_cert_ttl) ||
      user_cert_ttl < absl::Seconds(3) || user_cert_ttl > absl::Hours(24 * 7)) {
    std::cerr << "warden-control: --user-cert-ttl must be a duration from 3s "
                 "to 168h, e.g. 8h\n";
    return 2;
  }
  mkdir(data_dir.c_str(), 0700);
  if (signing_key.empty()) signing_key = data_dir + "/signing.key";

  const bool cluster = !etcd_endpoints.empty();
  std::unique_ptr<cp::log::Log> log;
  if (cluster) {
    // Every replica must sign bundles and issue certificates with the same
    // keys, from one source (a file or a Kubernetes Secret), never one
    // generated per replica.
    for (const std::string& shared :
         {signing_key.empty() ? std::string() : signing_key,
          data_dir + "/ca.key", data_dir + "/ca.crt"}) {
      if (shared.empty() || !warden::ReadFile(shared).ok()) {
        std::cerr << "warden-control: in cluster mode (--etcd-endpoints) the "
                     "signing key (--signing-key) and the CA ("
                  << data_dir
                  << "/ca.key, ca.crt) are shared by every replica and must "
                     "exist; missing: "
                  << (shared.empty() ? "--signing-key" : shared) << "\n";
        return 2;
      }
    }
    cp::log::EtcdOptions etcd;
    etcd.endpoints = etcd_endpoints;
    etcd.prefix = etcd_prefix;
    etcd.ca_file = etcd_ca_file;
    etcd.cert_file = etcd_cert_file;
    etcd.key_file = etcd_key_file;
    etcd.plaintext = etcd_plaintext;
    // Batches are authenticated with a key only the replicas hold: derived
    // from the shared signing key (never the key itself), so nothing more
    // to distribute, and bound to the shared CA too. A replica given other
    // shared keys than the cluster's cannot read the log (it stops at
    // start with DATA_LOSS, before serving or writing), and nothing it
    // could append would be applied by the others.
    // White space does not count (red team: a secret store that added a
    // newline or CRLFs made a replica with the right keys look like a
    // forger).
    auto squeeze = [](std::string pem) {
      pem.erase(std::remove_if(pem.begin(), pem.end(),
                               [](unsigned char c) { return std::isspace(c); }),
                pem.end());
      return pem;
    };
    etcd.mac_key = warden::crypto::HmacSha256(
        squeeze(*warden::ReadFile(signing_key)),
        absl::StrCat("warden/etcd-log-mac-key/v1\n",
                     squeeze(*warden::ReadFile(data_dir + "/ca.crt"))));
    auto opened = cp::log::EtcdLog::Open(etcd);
    if (!opened.ok()) {
      spdlog::error("cannot open the cluster's log: {}",
                    opened.status().ToString());
      return 1;
    }
    spdlog::info("cluster replica: the ordered log is {} in etcd at {}",
                 etcd_prefix, absl::StrJoin(etcd_endpoints, ", "));
    log = *std::move(opened);
  } else {
    auto opened = cp::log::RocksDbLog::Open(data_dir + "/log");
    if (!opened.ok()) {
      spdlog::error("cannot open the log: {}", opened.status().ToString());
      return 1;
    }
    log = *std::move(opened);
  }
  auto store = cp::store::Store::Open(data_dir + "/state");
  if (!store.ok()) {
    spdlog::error("cannot open the store: {}", store.status().ToString());
    return 1;
  }
  cp::state::StateMachine state(log.get(), store->get());
  if (absl::Status s = state.CatchUp(); !s.ok()) {
    spdlog::error("cannot catch up with the log: {}", s.ToString());
    return 1;
  }
  if (cluster) {
    // Current before serving (and LastConfirmedCurrent set, so that the
    // first proxies are not sent away).
    if (absl::Status s = state.Sync(); !s.ok()) {
      spdlog::error("cannot catch up with the cluster's log: {}",
                    s.ToString());
      return 1;
    }
  }
  auto private_pem =
      LoadOrCreateSigningKey(signing_key, data_dir + "/signing.pub");
  if (!private_pem.ok()) {
    spdlog::error("signing key: {}", private_pem.status().ToString());
    return 1;
  }
  auto public_pem = warden::crypto::Ed25519PublicKeyFromPrivate(*private_pem);
  if (!public_pem.ok()) {
    spdlog::error("signing key {}: {}", signing_key,
                  public_pem.status().ToString());
    return 1;
  }
  spdlog::info("signing with key {}",
               warden::crypto::Ed25519KeyId(*public_pem).value_or("?"));

  cp::tokens::Tokens tokens(&state, store->get());
  auto existing = tokens.List(/*include_inactive=*/true, absl::Now());
  if (!existing.ok()) {
    spdlog::error("tokens: {}", existing.status().ToString());
    return 1;
  }
  if (existing->empty()) {
    auto admin = tokens.Create("bootstrap-admin",
                               {warden::v1::TOKEN_SCOPE_ADMIN},
                               absl::ZeroDuration(), "warden-control",
                               absl::Now());
    if (!admin.ok() ||
        !warden::WriteFileDurably(data_dir + "/admin.token", admin->token + "\n").ok()) {
      spdlog::error("cannot create the bootstrap admin token");
      return 1;
    }
    spdlog::info("bootstrap admin token written to {}/admin.token; create "
                 "scoped tokens with it and revoke it",
                 data_dir);
  }
  auto authority = cp::ca::Authority::LoadOrCreate(data_dir);
  if (!authority.ok()) {
    spdlog::error("certificate authority: {}", authority.status().ToString());
    return 1;
  }
  cp::bundles::Bundles bundles(&state, store->get(),
                               cp::bundles::SigningKey{*private_pem});
  absl::Duration idp_refresh;
  if (!absl::ParseDuration(idp_refresh_text, &idp_refresh) ||
      idp_refresh < absl::Seconds(1)) {
    std::cerr << "warden-control: --idp-refresh: expected a duration of at "
                 "least 1s, such as 10m\n";
    return 2;
  }
  cp::idp::FetchOptions idp_fetch;
  idp_fetch.ca_file = idp_ca_file;
  bundles.SetKeyResolver([idp_fetch](warden::v1::PolicyBundle* bundle) {
    return cp::idp::ResolveAll(bundle, idp_fetch);
  });
  absl::Duration watch_heartbeat;
  if (!absl::ParseDuration(watch_heartbeat_text, &watch_heartbeat) ||
      watch_heartbeat < absl::Milliseconds(100) ||
      watch_heartbeat > absl::Minutes(5)) {
    std::cerr << "warden-control: --watch-heartbeat: expected a duration "
                 "from 100ms to 5m, such as 5s\n";
    return 2;
  }
  cp::distribution::Distributor distributor(&bundles, authority->get(),
                                            store->get(), watch_heartbeat);
  if (cluster) {
    // A replica that has not confirmed where the cluster's log ends for
    // 10 s (etcd unreachable, or a partition that drops packets) may be
    // serving stale policy: its proxies stop getting heartbeats and move
    // to another replica (red team: they stayed on old policy forever).
    distributor.SetHealthCheck([&state]() -> std::string {
      const absl::Duration since = absl::Now() - state.LastConfirmedCurrent();
      if (since < absl::Seconds(10)) return "";
      return absl::StrCat(
          "this replica has not reached the cluster's log in etcd for ",
          since == absl::InfiniteDuration()
              ? std::string("ever")
              : absl::FormatDuration(absl::Trunc(since, absl::Seconds(1))),
          "; use another replica");
    });
  }
  // The audit log: its own Ed25519 key (DATA_DIR/audit.key) signs the
  // checkpoints; DATA_DIR/audit.vkey is the verifier key auditors keep.
  auto audit_pem = LoadOrCreateSigningKey(data_dir + "/audit.key",
                                          data_dir + "/audit.pub");
  if (!audit_pem.ok()) {
    spdlog::error("audit key: {}", audit_pem.status().ToString());
    return 1;
  }
  cp::audit::Ledger ledger(store->get());
  auto checkpointer = cp::audit::Checkpointer::Create(&ledger, *audit_pem);
  if (!checkpointer.ok()) {
    spdlog::error("audit checkpoints: {}", checkpointer.status().ToString());
    return 1;
  }
  if (auto s = warden::WriteFileDurably(data_dir + "/audit.vkey",
                                        (*checkpointer)->verifier_key() + "\n");
      !s.ok()) {
    spdlog::error("cannot write {}/audit.vkey: {}", data_dir, s.ToString());
    return 1;
  }
  (*checkpointer)->Start();
  spdlog::info("audit log {} (verifier key in {}/audit.vkey)",
               (*checkpointer)->origin(), data_dir);
  cp::server::AuditIngestImpl audit_ingest(&state, &ledger, authority->get());

  // Pushes, rollbacks, token and enrollment changes go to the audit log.
  // Each replica records its own events under a source of its own.
  std::string admin_source = "warden-control";
  if (cluster) {
    if (replica_name.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      replica_name =
          absl::StrCat(host, "-", listen.substr(listen.rfind(':') + 1));
    }
    admin_source = absl::StrCat("warden-control-", replica_name);
    spdlog::info("this replica records its own audit events as control/{}",
                 admin_source);
  }
  cp::server::AdminAudit admin_audit(&audit_ingest, admin_source);
  // Refused API calls are recorded too (first ones one by one, then
  // summarised per peer, like failed logins).
  cp::server::ApiRefusals api_refusals(&admin_audit, login_failures);
  cp::server::SetApiRefusals(&api_refusals);
  cp::server::PolicyServiceImpl policy_service(&bundles, &tokens,
                                               &distributor, &admin_audit);
  // Service tokens travel (as hashes) in every bundle: a created or revoked
  // one is a new revision for every proxy at once.
  bundles.SetServiceTokens([&tokens] {
    return tokens.ServiceTokens(absl::Now());
  });
  // SCIM's users and groups travel in every bundle too.
  cp::directory::Directory directory(&state, store->get());
  bundles.SetDirectory([&directory] { return directory.Entries(); });
  auto republish_identities = [&bundles, &distributor, &admin_audit] {
    auto refreshed = bundles.RefreshIdentities("warden-control", absl::Now());
    if (!refreshed.ok()) {
      spdlog::error("service tokens and directory not republished: {}",
                    refreshed.status().ToString());
      return;
    }
    if (refreshed->unchanged) return;
    admin_audit.Record("warden-control", "policy.identities",
                       absl::StrCat("revision ", refreshed->revision),
                       "service tokens or directory changed", true);
    distributor.Publish();
  };
  // Changes arrive in bursts (a SCIM sync sends one request per user and
  // group): they are published together, at most a few times a second.
  cp::server::Coalescer republisher(absl::Milliseconds(200),
                                    republish_identities);
  // A revoked service token is published at once, too.
  auto republish_service_tokens = [&republisher] {
    republisher.Request(/*urgent=*/true);
  };
  cp::server::TokenServiceImpl token_service(&tokens, &admin_audit,
                                             republish_service_tokens);
  cp::server::DirectoryServiceImpl directory_service(
      &directory, &tokens, &admin_audit,
      [&republisher] { republisher.Request(/*urgent=*/true); });
  // One identity per proxy id, bound to its current certificate: checked
  // on every proxy call.
  auto proxy_registry = cp::server::NewProxyRegistry(
      &state, store->get(), &ledger, &distributor, authority->get());
  cp::server::ProxyEnrollmentImpl enrollment(&tokens, authority->get(),
                                             proxy_registry.get(), proxy_cert_ttl,
                                             &admin_audit);
  enrollment.set_max_age(proxy_max_age);
  // No API token: an identity provider's ID token earns a person a client
  // certificate for `auth: cert` listeners.
  cp::server::LoginImpl login(&bundles, authority->get(), user_cert_ttl,
                              &admin_audit, login_failures);

  cp::server::AuditLogImpl audit_log(&tokens, &ledger, checkpointer->get());
  cp::server::AuditExportImpl audit_export(&tokens, &ledger,
                                           checkpointer->get());

  std::string server_cert_pem, server_key_pem;
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = (*authority)->certificate_pem();
  if (!tls_cert.empty()) {
    auto cert = warden::ReadFile(tls_cert);
    auto key = warden::ReadFile(tls_key);
    if (!cert.ok() || !key.ok()) {
      spdlog::error("cannot read --tls-cert/--tls-key");
      return 1;
    }
    options.pem_key_cert_pairs.push_back({*key, *cert});
    server_cert_pem = *cert;
    server_key_pem = *key;
  } else {
    std::vector<std::string> dns = {"localhost"}, ips = {"127.0.0.1", "::1"};
    for (const std::string& san : tls_sans) {
      (warden::IsIpAddress(san) ? ips : dns).push_back(san);
    }
    auto issued = (*authority)->IssueServer(dns, ips, absl::Now(),
                                            absl::Hours(24 * 365 * 10));
    if (!issued.ok()) {
      spdlog::error("cannot issue the server certificate: {}",
                    issued.status().ToString());
      return 1;
    }
    options.pem_key_cert_pairs.push_back(
        {issued->key_pem, issued->certificate_pem});
    server_cert_pem = issued->certificate_pem;
    server_key_pem = issued->key_pem;
    spdlog::info("serving a certificate from Warden's CA for {}; clients "
                 "trust {}/ca.crt",
                 absl::StrJoin(dns, ", ") + ", " + absl::StrJoin(ips, ", "),
                 data_dir);
  }
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::SslServerCredentials(options);
  grpc::ServerBuilder builder;
  // Accept the proxies' keepalive pings (every 20 s), and ping idle
  // connections to drop Watch streams whose proxy vanished.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  int port = 0;
  builder.AddListeningPort(listen, creds, &port);
  builder.RegisterService(&policy_service);
  builder.RegisterService(&token_service);
  builder.RegisterService(&enrollment);
  builder.RegisterService(&directory_service);
  builder.RegisterService(&login);
  builder.RegisterService(&audit_ingest);
  builder.RegisterService(&audit_log);
  builder.RegisterService(&audit_export);
  builder.RegisterService(&distributor);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::error("cannot listen on {}", listen);
    return 1;
  }
  if (cluster) {
    // What other replicas commit (policy pushes above all) reaches this
    // replica's store within about a round trip of etcd's watch, and its
    // proxies at once.
    state.StartFollowing([&distributor](uint64_t) { distributor.Publish(); });
  }
  // SCIM: Okta's and Entra ID's provisioning keep the directory current.
  cp::scim::Service scim_service(
      &directory,
      [&tokens](absl::string_view bearer) -> absl::StatusOr<std::string> {
        auto info = tokens.Authenticate(bearer, absl::Now());
        if (!info.ok()) return info.status();
        if (!cp::tokens::Tokens::HasScope(*info, warden::v1::TOKEN_SCOPE_SCIM)) {
          return absl::PermissionDeniedError(absl::StrCat(
              "token ", info->name(), " lacks the scim scope"));
        }
        return info->name();
      },
      [&admin_audit, &republisher](const cp::scim::Change& change) {
        admin_audit.Record(absl::StrCat("token:", change.actor), change.action,
                           change.target, change.detail, true);
        // Taking access away is published at once; the rest waits for
        // the burst it belongs to.
        republisher.Request(change.action == "directory.user.deactivate" ||
                            change.action == "directory.user.delete");
      },
      // Refused for its credentials: audited like a refused gRPC call
      // (api.refused, summarized per peer past the first ones).
      [&api_refusals](const std::string& peer, const std::string& call,
                      const absl::Status& why) {
        api_refusals.Refused(
            peer,
            absl::IsPermissionDenied(why) ? "token without scim" : "unauthenticated",
            absl::StrCat("SCIM ", call), why, "TOKEN_SCOPE_SCIM");
      });
  std::unique_ptr<cp::scim::Server> scim_server;
  if (!scim_listen.empty()) {
    const size_t colon = scim_listen.rfind(':');
    std::string host = scim_listen.substr(0, colon);
    if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
      host = host.substr(1, host.size() - 2);
    }
    uint32_t scim_port = 0;
    if (colon == std::string::npos || host.empty() ||
        !absl::SimpleAtoi(scim_listen.substr(colon + 1), &scim_port) ||
        scim_port > 65535) {
      std::cerr << "warden-control: --scim-listen: expected host:port\n";
      return 2;
    }
    auto started = cp::scim::Server::Start(&scim_service, host,
                                           static_cast<uint16_t>(scim_port),
                                           server_cert_pem, server_key_pem);
    if (!started.ok()) {
      spdlog::error("{}", started.status().ToString());
      return 1;
    }
    scim_server = *std::move(started);
    spdlog::info("SCIM endpoint ready on https://{}:{}/scim/v2", host,
                 scim_server->port());
  }
  spdlog::info("warden-control ready on {} (port {}, TLS)", listen, port);

  // Identity providers rotate their keys: fetch them again every
  // --idp-refresh and publish a new revision when they changed, so proxies
  // learn new keys before tokens signed with them arrive.
  absl::Notification stopping;
  std::thread idp_refresher([&] {
    while (!stopping.WaitForNotificationWithTimeout(idp_refresh)) {
      // Expired service tokens leave the bundle too (proxies already refuse
      // them by their expiry).
      republish_identities();
      auto refreshed = bundles.RefreshKeys("warden-control", absl::Now());
      if (!refreshed.ok()) {
        spdlog::warn("identity provider keys not refreshed (proxies keep "
                     "the keys they have): {}",
                     refreshed.status().ToString());
        continue;
      }
      if (refreshed->unchanged) continue;
      spdlog::info("identity provider keys changed: revision {} published",
                   refreshed->revision);
      admin_audit.Record("warden-control", "policy.keys",
                         absl::StrCat("revision ", refreshed->revision),
                         "identity provider keys changed", true);
      distributor.Publish();
    }
  });

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("signal {}: shutting down", received);
  // A request still being worked on (a large SCIM change whose client has
  // gone) must not keep the process alive: past the timeout it exits
  // anyway. Every change committed so far is in RocksDB's write-ahead log,
  // and the ones not committed were never acknowledged.
  std::thread([shutdown_timeout] {
    absl::SleepFor(shutdown_timeout);
    spdlog::error("shutdown did not finish within {} (requests still "
                  "running): exiting now",
                  absl::FormatDuration(shutdown_timeout));
    spdlog::default_logger()->flush();
    _exit(1);
  }).detach();
  stopping.Notify();
  state.StopFollowing();  // it publishes through the distributor
  idp_refresher.join();
  scim_server.reset();
  republisher.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  (*checkpointer)->Stop();
  return 0;
}
