// warden-proxy configuration: listeners, environments, upstream databases and
// (until identity providers arrive) locally defined users. Parsed from YAML
// once at start, validated with precise file:line:column errors, then shared
// read-only.
#ifndef WARDEN_DATAPLANE_CONFIG_CONFIG_H_
#define WARDEN_DATAPLANE_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::dataplane::config {

// How a listener treats TLS from clients.
enum class ClientTlsMode {
  kDisable,  // answer SSLRequest with 'N'.
  kAllow,    // TLS offered; plaintext clients are accepted too.
  kRequire,  // plaintext startup packets are refused (SQLSTATE 28000).
};

// How a client proves who it is to the proxy.
enum class ClientAuthMethod {
  kScramSha256,  // SCRAM-SHA-256 against the user's verifier.
  kPassword,     // cleartext password; only allowed on TLS-only listeners.
  kOidc,         // an identity provider's token as the password; TLS only.
  kCert,         // a client certificate from Warden's CA (wardenctl login);
                 // TLS only.
};

// An OpenID Connect identity provider whose tokens (JWT, sent as the
// password) prove who connects.
struct IdentityProvider {
  std::string name;
  std::string issuer;                  // exact `iss`
  std::vector<std::string> audiences;  // `aud` must contain one
  std::string jwks_file;               // the provider's JWKS (re-read on change)
  std::vector<std::string> algorithms = {"RS256", "ES256"};
  std::string user_claim = "email";    // the user name Warden records
  // Claims whose values are the user's groups (Okta: groups; Entra ID:
  // groups, roles).
  std::vector<std::string> groups_claims = {"groups"};
  // Claims that must have exactly this value (Google Workspace: hd).
  std::vector<std::pair<std::string, std::string>> required_claims;
  int clock_skew_ms = 60000;
  int max_token_lifetime_ms = 24 * 3600 * 1000;
  std::string kind = "human";  // human | agent | service
};

struct TlsFiles {
  std::string cert_file;  // PEM certificate chain.
  std::string key_file;   // PEM private key.
  // auth: cert: the CA client certificates must chain to (Warden's CA,
  // warden-control's DATA_DIR/ca.crt). Empty: the CA the proxy's own
  // certificate came from when enrolled with a control plane.
  std::string client_ca_file;
};

struct Listener {
  std::string name;
  std::string address = "127.0.0.1";
  uint16_t port = 0;        // 0 picks a free port (logged at start).
  std::string environment;  // every connection here belongs to it.
  ClientTlsMode tls_mode = ClientTlsMode::kDisable;
  std::optional<TlsFiles> tls;  // required unless tls_mode is kDisable.
  ClientAuthMethod auth = ClientAuthMethod::kScramSha256;
  // auth: oidc: the providers accepted here, by name (empty: all).
  std::vector<std::string> identity_providers;
};

enum class UpstreamTlsMode {
  kDisable,     // plaintext.
  kRequire,     // TLS, certificate not verified.
  kVerifyCa,    // TLS, chain verified against ca_file.
  kVerifyFull,  // TLS, chain and host name (server_name or host) verified.
};

// The one authentication method the proxy will answer for an upstream. A
// server that asks for anything else is refused, so a rogue or misconfigured
// server cannot downgrade the exchange and harvest the service password.
enum class UpstreamAuthMethod { kScramSha256, kMd5, kPassword, kTrust };

struct Upstream {
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  std::string database;  // upstream database name.
  std::string user;      // service role the proxy logs in as.
  std::string password;  // resolved from password/password_env/password_file.
  // Database roles identity mappings may pick (kind: IdentityMapping), each
  // with its password (resolved like `password`); never in bundles.
  std::map<std::string, std::string> roles;
  UpstreamAuthMethod auth = UpstreamAuthMethod::kScramSha256;
  UpstreamTlsMode tls_mode = UpstreamTlsMode::kDisable;
  std::string ca_file;
  std::string server_name;  // for verify-full; default: host.
  int connect_timeout_ms = 5000;
};

struct Database {
  std::string name;  // the dbname clients ask for.
  Upstream upstream;
};

struct Environment {
  std::string name;
  std::vector<Database> databases;
  const Database* FindDatabase(absl::string_view name) const;
};

struct User {
  std::string name;
  std::string scram_verifier;  // "SCRAM-SHA-256$iter:salt$stored:server".
  // A cleartext `password:` instead of a verifier: scram_verifier is made
  // from it with a random salt, and warden-proxy makes it again at start,
  // salted like an unknown user's mock exchange, then clears this.
  std::string password;
  std::vector<std::string> groups;
  std::string kind = "human";  // human | agent | service.
  // Environments the user may connect to; empty means all.
  std::vector<std::string> environments;
  // Whether the identity provider's directory (SCIM) applies to this user
  // as to a token's: its groups, attributes and deactivation. Default: no,
  // only an administrator's `wardenctl identities deactivate` does.
  bool directory = false;
};

struct ProxySettings {
  // Worker threads, each with its own event loop. Default: hardware threads.
  int workers = 0;
  // Connections beyond this are refused with SQLSTATE 53300. Default: 10000.
  int max_client_connections = 10000;
  // A client must finish startup and authentication within this. Default 15s.
  int startup_timeout_ms = 15000;
  // Largest frontend message accepted (bytes). Default: 64 MiB.
  size_t max_message_bytes = 64u << 20;
  // Largest backend message accepted (bytes). Default: 1 GiB.
  size_t max_backend_message_bytes = 1024u << 20;
  // Pending bytes toward one peer above which the proxy stops reading from
  // the other peer (backpressure). Default: 256 KiB.
  size_t max_buffered_bytes = 256u << 10;
  // Log level: trace, debug, info, warn, error. Default: info.
  std::string log_level = "info";
  // Failed logins per client address (common/login_failures.h): the
  // first `failed_logins_recorded` in a `failed_login_window` are audit
  // events one by one, the rest one summary event; after
  // `failed_logins_refused_after` (0: never) new connections from the
  // address are refused (53300) until the window ends.
  int failed_login_window_ms = 60000;
  int failed_logins_recorded = 20;
  int failed_logins_refused_after = 100;
  // Connections from one client address that have not finished logging
  // in (TLS, startup, authentication) at once; more are refused with 53300
  // at accept, so one address's idle sockets cannot take every client
  // slot. 0: no limit.
  int max_pending_logins_per_address = 256;
  // Secret of the mock SCRAM exchange for unknown users (and of the salts
  // of users configured with a cleartext password). Empty: the file
  // mock-auth.secret in control_plane.state_dir, made on first start; with
  // neither, a random secret per process. Replicas behind one address
  // should share one file, else comparing their salts tells configured
  // users from unknown ones.
  std::string mock_auth_secret_file;
};

// Where policies come from pushed, signed bundles (warden-control).
struct ControlPlaneSettings {
  // host:port of warden-control; a cluster's replicas comma-separated
  // (the YAML may give a list).
  std::string address;
  std::string ca_file;  // CA of warden-control's TLS certificate.
  std::vector<std::string> trusted_keys;  // Ed25519 public keys (PEM files).
  std::string state_dir;    // last-known-good bundle, proxy key and cert.
  // One-time enrollment token (wardenctl tokens create --scope
  // proxy:enroll); empty: the WARDEN_BOOTSTRAP_TOKEN environment variable.
  std::string bootstrap_token_file;
  std::string proxy_id;     // default: the host name (or the token's).
  std::string environment;  // must match the certificate when set; default:
                            // the one the bootstrap token names.
  // How long the policy watch may fail (the proxy serving its last bundle)
  // before /readyz says 503, so an orchestrator can take the proxy out of
  // rotation while others are current. 0 (default): never; an unreachable
  // control plane then takes no proxy out of service.
  int max_disconnected_ms = 0;
  // A policy watch stream that delivered nothing (no heartbeat, no bundle)
  // this long is presumed dead (a blackholed connection): given up,
  // reported unhealthy and reconnected. Judged once warden-control sent a
  // heartbeat on it. 0 (default): three of the heartbeat intervals it
  // announces (15 s at its default 5 s); never less than two of them.
  int watch_silence_timeout_ms = 0;
};

// Where policies come from: files (`paths`), or the control plane.
struct PolicySettings {
  // Policy files or folders (every *.yaml / *.yml inside, recursively),
  // resolved against the config file's folder. Empty: no policy is enforced
  // (every statement is relayed), which the proxy logs loudly at start.
  std::vector<std::string> paths;
  // Statement texts whose analysis is cached. Default: 10000.
  int cache_entries = 10000;
  // Set when policies come from warden-control instead of files.
  std::optional<ControlPlaneSettings> control_plane;
};

enum class AuditMode {
  kOff,    // nothing recorded
  kAsync,  // every event is in the local spool before the session goes on
  kSync,   // as async, and a statement goes to the database only once
           // warden-control committed its event
};

// What the proxy records and where it keeps it until warden-control has it.
struct AuditSettings {
  AuditMode mode = AuditMode::kOff;
  std::string spool_dir;  // required unless off
  uint64_t max_spool_bytes = 1ull << 30;
  // sync: how long a statement waits for the control plane before it is
  // refused (53000).
  int sync_timeout_ms = 2000;
  // Whether each execution also records a result event (rows, duration,
  // SQLSTATE) after the database answered. The intent event before it
  // runs is recorded either way.
  bool results = true;
  // Audit events (and 512 bytes each) per second one identity (all its
  // sessions) may record once the spool is half full (the control plane
  // is behind or away); the budget shrinks as the spool fills (half of it
  // at 70%, one event from 90%); below 90% lighter identities feel less
  // of the fill, from 90% every identity pays the full price, and
  // statements and logins pay before they go on (session/audit_budget.h).
  // A session
  // over its budget is not read until the budget covers what it recorded,
  // so the client that records fastest cannot fill the spool and get every
  // session refused (53000); the others go on. 0: no limit.
  int backlogged_session_rate = 1000;
};

// The operator endpoint (GET /metrics, /healthz, /readyz); plain HTTP.
struct AdminSettings {
  std::string address = "127.0.0.1";
  uint16_t port = 9187;  // 0 picks a free port (logged at start).
};

struct ProxyConfig {
  ProxySettings proxy;
  PolicySettings policy;
  AuditSettings audit;
  std::optional<AdminSettings> admin;  // absent: no operator endpoint.
  std::vector<Listener> listeners;
  std::vector<Environment> environments;
  std::vector<User> users;
  std::vector<IdentityProvider> identity_providers;

  const Environment* FindEnvironment(absl::string_view name) const;
  const User* FindUser(absl::string_view name) const;
  const IdentityProvider* FindIdentityProvider(absl::string_view name) const;
};

// ParseConfig parses YAML `text`. `file_name` appears in error messages
// ("proxy.yaml:12:9: listeners[0].port: ..."); relative file paths in the
// config resolve against `base_dir`. Returns InvalidArgument with every
// problem found (one per line), or the validated config.
absl::StatusOr<ProxyConfig> ParseConfig(absl::string_view text,
                                        absl::string_view file_name,
                                        absl::string_view base_dir);

// LoadConfig reads and parses the file at `path`.
absl::StatusOr<ProxyConfig> LoadConfig(const std::string& path);

}  // namespace warden::dataplane::config

#endif  // WARDEN_DATAPLANE_CONFIG_CONFIG_H_
