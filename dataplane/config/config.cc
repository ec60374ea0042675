#include "dataplane/config/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/address.h"
#include "dataplane/auth/scram.h"

namespace warden::dataplane::config {
namespace {

// Collects every problem with its position so an operator fixes them in one
// pass. yaml-cpp reports through exceptions; they are caught only in
// ParseConfig and never cross this file.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void Error(const YAML::Node& at, const std::string& path,
             const std::string& message) {
    const YAML::Mark mark = at.Mark();
    if (mark.line >= 0) {
      errors_.push_back(absl::StrCat(file_, ":", mark.line + 1, ":",
                                     mark.column + 1, ": ", path, ": ",
                                     message));
    } else {
      errors_.push_back(absl::StrCat(file_, ": ", path, ": ", message));
    }
  }

  // Reports keys of `map` not in `allowed` (unknown keys are errors, so a
  // typo such as `tls_mod:` never silently falls back to a default).
  bool ExpectMap(const YAML::Node& map, const std::string& path,
                 std::initializer_list<const char*> allowed) {
    if (!map.IsMap()) {
      Error(map, path, "expected a mapping");
      return false;
    }
    std::set<std::string> known(allowed.begin(), allowed.end());
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        // yaml-cpp keeps the first of duplicate keys; never guess.
        Error(kv.first, path, absl::StrCat("duplicate key '", key, "'"));
      }
      if (!known.count(key)) {
        Error(kv.first, path,
              absl::StrCat("unknown key '", key,
                           "' (allowed: ", absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return true;
  }

  bool String(const YAML::Node& map, const char* key, const std::string& path,
              std::string* out, bool required) {
    const YAML::Node node = map[key];
    if (!node) {
      if (required)
        Error(map, path, absl::StrCat("missing required key '", key, "'"));
      return false;
    }
    if (!node.IsScalar() || node.Scalar().empty()) {
      Error(node, absl::StrCat(path, ".", key), "expected a non-empty string");
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  bool Int(const YAML::Node& map, const char* key, const std::string& path,
           int64_t lo, int64_t hi, int64_t* out) {
    const YAML::Node node = map[key];
    if (!node) return false;
    int64_t value = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value) ||
        value < lo || value > hi) {
      Error(
          node, absl::StrCat(path, ".", key),
          absl::StrCat("expected an integer in [", lo, ", ", hi, "], got '",
                       node.IsScalar() ? node.Scalar() : "<non-scalar>", "'"));
      return false;
    }
    *out = value;
    return true;
  }

  bool DurationMs(const YAML::Node& map, const char* key,
                  const std::string& path, int* out_ms,
                  absl::Duration max = absl::Hours(1)) {
    const YAML::Node node = map[key];
    if (!node) return false;
    absl::Duration d;
    if (!node.IsScalar() || !absl::ParseDuration(node.Scalar(), &d) ||
        d < absl::Milliseconds(1) || d > max) {
      Error(node, absl::StrCat(path, ".", key),
            absl::StrCat("expected a duration such as 500ms, 15s or 2m (1ms "
                         "to ",
                         absl::FormatDuration(max), ")"));
      return false;
    }
    *out_ms = static_cast<int>(absl::ToInt64Milliseconds(d));
    return true;
  }

  bool Bool(const YAML::Node& map, const char* key, const std::string& path,
            bool* out) {
    const YAML::Node node = map[key];
    if (!node) return false;
    const std::string v = node.IsScalar() ? node.Scalar() : "";
    if (v == "true" || v == "on" || v == "yes") {
      *out = true;
    } else if (v == "false" || v == "off" || v == "no") {
      *out = false;
    } else {
      Error(node, absl::StrCat(path, ".", key), "expected true or false");
      return false;
    }
    return true;
  }

  bool StringList(const YAML::Node& map, const char* key,
                  const std::string& path, std::vector<std::string>* out) {
    const YAML::Node node = map[key];
    if (!node) return false;
    if (!node.IsSequence()) {
      Error(node, absl::StrCat(path, ".", key), "expected a list of strings");
      return false;
    }
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Error(item, absl::StrCat(path, ".", key),
              "expected a non-empty string");
        continue;
      }
      out->push_back(item.Scalar());
    }
    return true;
  }

  // Resolves a path relative to the config file's folder.
  std::string File(const std::string& base_dir, const std::string& p) const {
    if (p.empty() || p[0] == '/' || base_dir.empty()) return p;
    return absl::StrCat(base_dir, "/", p);
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string file_;
  std::vector<std::string> errors_;
};

bool ReadableFile(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

void ParseListener(Checker& c, const YAML::Node& node, const std::string& path,
                   const std::string& base_dir, Listener* l) {
  if (!c.ExpectMap(node, path,
                   {"name", "address", "port", "environment", "tls", "auth",
                    "identity_providers"})) {
    return;
  }
  c.String(node, "name", path, &l->name, true);
  c.String(node, "address", path, &l->address, false);
  int64_t port = 0;
  if (c.Int(node, "port", path, 0, 65535, &port)) l->port = port;
  c.String(node, "environment", path, &l->environment, true);
  std::string auth;
  if (c.String(node, "auth", path, &auth, false)) {
    if (auth == "scram-sha-256") {
      l->auth = ClientAuthMethod::kScramSha256;
    } else if (auth == "password") {
      l->auth = ClientAuthMethod::kPassword;
    } else if (auth == "token" || auth == "oidc") {
      l->auth = ClientAuthMethod::kOidc;
    } else if (auth == "cert") {
      l->auth = ClientAuthMethod::kCert;
    } else {
      c.Error(node["auth"], path + ".auth",
              "expected scram-sha-256, password, token (oidc) or cert, got '" +
                  auth + "'");
    }
  }
  c.StringList(node, "identity_providers", path, &l->identity_providers);
  if (!l->identity_providers.empty() && l->auth != ClientAuthMethod::kOidc) {
    c.Error(node["identity_providers"], path + ".identity_providers",
            "only used with auth: oidc");
  }
  if (const YAML::Node tls = node["tls"]) {
    const std::string tpath = path + ".tls";
    if (c.ExpectMap(tls, tpath,
                    {"mode", "cert_file", "key_file", "client_ca_file"})) {
      std::string mode = "require";
      c.String(tls, "mode", tpath, &mode, false);
      if (mode == "disable") {
        l->tls_mode = ClientTlsMode::kDisable;
      } else if (mode == "allow") {
        l->tls_mode = ClientTlsMode::kAllow;
      } else if (mode == "require") {
        l->tls_mode = ClientTlsMode::kRequire;
      } else {
        c.Error(tls["mode"], tpath + ".mode",
                "expected disable, allow or require, got '" + mode + "'");
      }
      if (l->tls_mode != ClientTlsMode::kDisable) {
        TlsFiles files;
        bool ok = c.String(tls, "cert_file", tpath, &files.cert_file, true);
        ok &= c.String(tls, "key_file", tpath, &files.key_file, true);
        if (ok) {
          files.cert_file = c.File(base_dir, files.cert_file);
          files.key_file = c.File(base_dir, files.key_file);
          if (!ReadableFile(files.cert_file)) {
            c.Error(tls["cert_file"], tpath + ".cert_file",
                    "cannot read '" + files.cert_file + "'");
          }
          if (!ReadableFile(files.key_file)) {
            c.Error(tls["key_file"], tpath + ".key_file",
                    "cannot read '" + files.key_file + "'");
          }
          if (c.String(tls, "client_ca_file", tpath, &files.client_ca_file,
                       false)) {
            files.client_ca_file = c.File(base_dir, files.client_ca_file);
            if (!ReadableFile(files.client_ca_file)) {
              c.Error(tls["client_ca_file"], tpath + ".client_ca_file",
                      "cannot read '" + files.client_ca_file + "'");
            }
          }
          l->tls = files;
        }
      }
    }
  }
  if (l->auth == ClientAuthMethod::kPassword &&
      l->tls_mode != ClientTlsMode::kRequire) {
    c.Error(node, path,
            "auth: password sends the password in cleartext and is only "
            "allowed with tls.mode: require");
  }
  if (l->auth == ClientAuthMethod::kOidc &&
      l->tls_mode != ClientTlsMode::kRequire) {
    c.Error(node, path,
            "auth: token receives bearer tokens as the password and is only "
            "allowed with tls.mode: require");
  }
  if (l->auth == ClientAuthMethod::kCert &&
      l->tls_mode != ClientTlsMode::kRequire) {
    c.Error(node, path,
            "auth: cert reads the identity from the TLS client certificate "
            "and is only allowed with tls.mode: require");
  }
  if (l->auth != ClientAuthMethod::kCert && l->tls &&
      !l->tls->client_ca_file.empty()) {
    c.Error(node["tls"]["client_ca_file"], path + ".tls.client_ca_file",
            "only used with auth: cert");
  }
}

void ParseIdentityProvider(Checker& c, const YAML::Node& node,
                           const std::string& path, const std::string& base_dir,
                           IdentityProvider* p) {
  if (!c.ExpectMap(node, path,
                   {"name", "issuer", "audiences", "jwks_file", "algorithms",
                    "user_claim", "groups_claims", "required_claims",
                    "clock_skew", "max_token_lifetime", "kind"})) {
    return;
  }
  c.String(node, "name", path, &p->name, true);
  c.String(node, "issuer", path, &p->issuer, true);
  if (!c.StringList(node, "audiences", path, &p->audiences) ||
      p->audiences.empty()) {
    c.Error(node["audiences"] ? node["audiences"] : node,
            path + ".audiences",
            "expected a non-empty list (the client id or API audience the "
            "provider puts in aud)");
  }
  if (c.String(node, "jwks_file", path, &p->jwks_file, true)) {
    p->jwks_file = c.File(base_dir, p->jwks_file);
    if (!ReadableFile(p->jwks_file)) {
      c.Error(node["jwks_file"], path + ".jwks_file",
              "cannot read '" + p->jwks_file + "'");
    }
  }
  std::vector<std::string> algorithms;
  if (c.StringList(node, "algorithms", path, &algorithms)) {
    for (const auto& a : algorithms) {
      if (a != "RS256" && a != "ES256") {
        c.Error(node["algorithms"], path + ".algorithms",
                "'" + a + "' is not supported (RS256 and ES256 only; "
                "none and HMAC algorithms are never accepted)");
      }
    }
    if (algorithms.empty()) {
      c.Error(node["algorithms"], path + ".algorithms",
              "expected RS256, ES256 or both");
    }
    p->algorithms = std::move(algorithms);
  }
  c.String(node, "user_claim", path, &p->user_claim, false);
  std::vector<std::string> groups;
  if (c.StringList(node, "groups_claims", path, &groups)) {
    p->groups_claims = std::move(groups);
  }
  if (const YAML::Node rc = node["required_claims"]) {
    if (!rc.IsMap()) {
      c.Error(rc, path + ".required_claims",
              "expected a map of claim: value");
    } else {
      for (const auto& kv : rc) {
        if (!kv.second.IsScalar()) {
          c.Error(kv.second, path + ".required_claims",
                  "expected a string value");
          continue;
        }
        p->required_claims.emplace_back(kv.first.Scalar(),
                                        kv.second.Scalar());
      }
    }
  }
  c.DurationMs(node, "clock_skew", path, &p->clock_skew_ms);
  c.DurationMs(node, "max_token_lifetime", path, &p->max_token_lifetime_ms,
               absl::Hours(24 * 7));
  if (c.String(node, "kind", path, &p->kind, false) && p->kind != "human" &&
      p->kind != "agent" && p->kind != "service") {
    c.Error(node["kind"], path + ".kind", "expected human, agent or service");
  }
}

// Resolves password / password_env / password_file of `node` (at most
// one); returns how many were given.
int ParsePassword(Checker& c, const YAML::Node& node, const std::string& path,
                  const std::string& base_dir, std::string* password) {
  int sources = 0;
  std::string value;
  if (c.String(node, "password", path, &value, false)) {
    *password = value;
    ++sources;
  }
  if (c.String(node, "password_env", path, &value, false)) {
    ++sources;
    const char* env = std::getenv(value.c_str());
    if (env == nullptr || *env == '\0') {
      c.Error(node["password_env"], path + ".password_env",
              "environment variable " + value + " is not set or empty");
    } else {
      *password = env;
    }
  }
  if (c.String(node, "password_file", path, &value, false)) {
    ++sources;
    const std::string file = c.File(base_dir, value);
    std::ifstream in(file);
    if (!in) {
      c.Error(node["password_file"], path + ".password_file",
              "cannot read '" + file + "'");
    } else {
      std::getline(in, *password);
      if (!password->empty() && password->back() == '\r') {
        password->pop_back();
      }
      if (password->empty()) {
        c.Error(node["password_file"], path + ".password_file",
                "'" + file + "' starts with an empty line");
      }
    }
  }
  if (sources > 1) {
    c.Error(node, path,
            "set only one of password, password_env, password_file");
  }
  return sources;
}

void ParseUpstream(Checker& c, const YAML::Node& node, const std::string& path,
                   const std::string& base_dir, Upstream* u) {
  if (!c.ExpectMap(
          node, path,
          {"host", "port", "database", "user", "password", "password_env",
           "password_file", "auth", "tls", "connect_timeout", "roles"})) {
    return;
  }
  c.String(node, "host", path, &u->host, false);
  int64_t port = 0;
  if (c.Int(node, "port", path, 1, 65535, &port)) u->port = port;
  c.String(node, "database", path, &u->database, true);
  c.String(node, "user", path, &u->user, true);
  c.DurationMs(node, "connect_timeout", path, &u->connect_timeout_ms);
  std::string auth = "scram-sha-256";
  c.String(node, "auth", path, &auth, false);
  if (auth == "scram-sha-256") {
    u->auth = UpstreamAuthMethod::kScramSha256;
  } else if (auth == "md5") {
    u->auth = UpstreamAuthMethod::kMd5;
  } else if (auth == "password") {
    u->auth = UpstreamAuthMethod::kPassword;
  } else if (auth == "trust") {
    u->auth = UpstreamAuthMethod::kTrust;
  } else {
    c.Error(
        node["auth"], path + ".auth",
        "expected scram-sha-256, md5, password or trust, got '" + auth + "'");
  }
  const int sources = ParsePassword(c, node, path, base_dir, &u->password);
  if (sources == 0 && u->auth != UpstreamAuthMethod::kTrust) {
    c.Error(node, path,
            "a password (password, password_env or password_file) is required "
            "unless auth: trust");
  }
  if (const YAML::Node roles = node["roles"]) {
    if (!roles.IsMap()) {
      c.Error(roles, path + ".roles",
              "expected a map of database role: {password | password_env | "
              "password_file}");
    } else {
      for (const auto& kv : roles) {
        const std::string role = kv.first.Scalar();
        const std::string rpath = absl::StrCat(path, ".roles.", role);
        if (!c.ExpectMap(kv.second, rpath,
                         {"password", "password_env", "password_file"})) {
          continue;
        }
        std::string password;
        if (ParsePassword(c, kv.second, rpath, base_dir, &password) == 0 &&
            u->auth != UpstreamAuthMethod::kTrust) {
          c.Error(kv.second, rpath,
                  "a password (password, password_env or password_file) is "
                  "required unless auth: trust");
        }
        u->roles[role] = std::move(password);
      }
    }
  }
  if (const YAML::Node tls = node["tls"]) {
    const std::string tpath = path + ".tls";
    if (c.ExpectMap(tls, tpath, {"mode", "ca_file", "server_name"})) {
      std::string mode = "require";
      c.String(tls, "mode", tpath, &mode, false);
      if (mode == "disable") {
        u->tls_mode = UpstreamTlsMode::kDisable;
      } else if (mode == "require") {
        u->tls_mode = UpstreamTlsMode::kRequire;
      } else if (mode == "verify-ca") {
        u->tls_mode = UpstreamTlsMode::kVerifyCa;
      } else if (mode == "verify-full") {
        u->tls_mode = UpstreamTlsMode::kVerifyFull;
      } else {
        c.Error(tls["mode"], tpath + ".mode",
                "expected disable, require, verify-ca or verify-full, got '" +
                    mode + "'");
      }
      if (c.String(tls, "ca_file", tpath, &u->ca_file, false)) {
        u->ca_file = c.File(base_dir, u->ca_file);
        if (!ReadableFile(u->ca_file)) {
          c.Error(tls["ca_file"], tpath + ".ca_file",
                  "cannot read '" + u->ca_file + "'");
        }
      }
      c.String(tls, "server_name", tpath, &u->server_name, false);
      if ((u->tls_mode == UpstreamTlsMode::kVerifyCa ||
           u->tls_mode == UpstreamTlsMode::kVerifyFull) &&
          u->ca_file.empty()) {
        c.Error(tls, tpath, "verify-ca and verify-full need ca_file");
      }
    }
  }
  if (u->server_name.empty()) u->server_name = u->host;
}

void ParseUser(Checker& c, const YAML::Node& node, const std::string& path,
               User* u) {
  if (!c.ExpectMap(node, path,
                   {"name", "password", "scram_verifier", "groups", "kind",
                    "environments", "directory"})) {
    return;
  }
  c.String(node, "name", path, &u->name, true);
  std::string password, verifier;
  const bool has_password = c.String(node, "password", path, &password, false);
  const bool has_verifier =
      c.String(node, "scram_verifier", path, &verifier, false);
  if (has_password == has_verifier) {
    c.Error(node, path,
            "set exactly one of scram_verifier (preferred; make one with "
            "warden-passwd) or password");
  } else if (has_verifier) {
    auto parsed = auth::ParseScramVerifier(verifier);
    if (!parsed.ok()) {
      c.Error(node["scram_verifier"], path + ".scram_verifier",
              std::string(parsed.status().message()));
    } else {
      u->scram_verifier = verifier;
    }
  } else {
    auto made = auth::MakeScramVerifierRandomSalt(password);
    if (!made.ok()) {
      c.Error(node["password"], path + ".password",
              std::string(made.status().message()));
    } else {
      u->scram_verifier = auth::FormatScramVerifier(*made);
      // warden-proxy salts it again at start from the deployment's mock
      // secret (server.cc), so the salt does not tell this user from an
      // unknown one and stays the same across restarts.
      u->password = password;
    }
  }
  c.StringList(node, "groups", path, &u->groups);
  c.StringList(node, "environments", path, &u->environments);
  c.Bool(node, "directory", path, &u->directory);
  if (c.String(node, "kind", path, &u->kind, false) && u->kind != "human" &&
      u->kind != "agent" && u->kind != "service") {
    c.Error(node["kind"], path + ".kind",
            "expected human, agent or service, got '" + u->kind + "'");
  }
}

absl::StatusOr<ProxyConfig> ParseRoot(Checker& c, const YAML::Node& root,
                                      const std::string& base_dir) {
  ProxyConfig cfg;
  if (!c.ExpectMap(root, "config",
                   {"proxy", "policy", "audit", "admin", "listeners",
                    "environments", "users", "identity_providers"})) {
    return absl::InvalidArgumentError(absl::StrJoin(c.errors(), "\n"));
  }
  if (const YAML::Node p = root["proxy"]) {
    if (c.ExpectMap(p, "proxy",
                    {"workers", "max_client_connections", "startup_timeout",
                     "max_message_bytes", "max_backend_message_bytes",
                     "max_buffered_bytes", "log_level", "failed_login_window",
                     "failed_logins_recorded",
                     "failed_logins_refused_after",
                     "max_pending_logins_per_address",
                     "mock_auth_secret_file"})) {
      int64_t v = 0;
      if (c.String(p, "mock_auth_secret_file", "proxy",
                   &cfg.proxy.mock_auth_secret_file, false)) {
        cfg.proxy.mock_auth_secret_file =
            c.File(base_dir, cfg.proxy.mock_auth_secret_file);
      }
      if (c.Int(p, "workers", "proxy", 1, 256, &v)) cfg.proxy.workers = v;
      if (c.Int(p, "max_client_connections", "proxy", 1, 1000000, &v)) {
        cfg.proxy.max_client_connections = v;
      }
      c.DurationMs(p, "startup_timeout", "proxy",
                   &cfg.proxy.startup_timeout_ms);
      if (c.Int(p, "max_message_bytes", "proxy", 1024, 1 << 30, &v)) {
        cfg.proxy.max_message_bytes = v;
      }
      if (c.Int(p, "max_backend_message_bytes", "proxy", 1024, 1 << 30, &v)) {
        cfg.proxy.max_backend_message_bytes = v;
      }
      if (c.Int(p, "max_buffered_bytes", "proxy", 16384, 1 << 30, &v)) {
        cfg.proxy.max_buffered_bytes = v;
      }
      c.DurationMs(p, "failed_login_window", "proxy",
                   &cfg.proxy.failed_login_window_ms);
      if (c.Int(p, "failed_logins_recorded", "proxy", 1, 1000000, &v)) {
        cfg.proxy.failed_logins_recorded = v;
      }
      if (c.Int(p, "failed_logins_refused_after", "proxy", 0, 100000000, &v)) {
        cfg.proxy.failed_logins_refused_after = v;
      }
      if (c.Int(p, "max_pending_logins_per_address", "proxy", 0, 1000000, &v)) {
        cfg.proxy.max_pending_logins_per_address = v;
      }
      if (c.String(p, "log_level", "proxy", &cfg.proxy.log_level, false)) {
        static const std::set<std::string> kLevels = {"trace", "debug", "info",
                                                      "warn", "error"};
        if (!kLevels.count(cfg.proxy.log_level)) {
          c.Error(p["log_level"], "proxy.log_level",
                  "expected trace, debug, info, warn or error");
        }
      }
    }
  }

  if (const YAML::Node p = root["policy"]) {
    if (c.ExpectMap(p, "policy", {"paths", "cache_entries", "control_plane"})) {
      std::vector<std::string> paths;
      if (const YAML::Node cp = p["control_plane"]) {
        if (p["paths"]) {
          c.Error(p["paths"], "policy.paths",
                  "give either paths or control_plane, not both");
        }
        const std::string path = "policy.control_plane";
        if (c.ExpectMap(cp, path,
                        {"address", "ca_file", "trusted_keys", "state_dir",
                         "bootstrap_token_file", "proxy_id",
                         "environment", "max_disconnected",
                         "watch_silence_timeout"})) {
          ControlPlaneSettings settings;
          c.DurationMs(cp, "max_disconnected", path,
                       &settings.max_disconnected_ms, absl::Hours(24 * 7));
          if (c.DurationMs(cp, "watch_silence_timeout", path,
                           &settings.watch_silence_timeout_ms,
                           absl::Minutes(10)) &&
              settings.watch_silence_timeout_ms < 1000) {
            c.Error(cp["watch_silence_timeout"],
                    path + ".watch_silence_timeout",
                    "expected at least 1s (by default three of warden-"
                    "control's heartbeat intervals: 15s at its default 5s)");
          }
          // One address, or a cluster's replicas: a list or a
          // comma-separated string (the proxy moves to the next replica
          // when the one in use fails).
          if (cp["address"] && cp["address"].IsSequence()) {
            std::vector<std::string> replicas;
            if (c.StringList(cp, "address", path, &replicas)) {
              settings.address = absl::StrJoin(replicas, ",");
            }
          } else {
            c.String(cp, "address", path, &settings.address, true);
          }
          if (cp["address"]) {
            const std::vector<std::string> replicas =
                SplitAddressList(settings.address);
            if (replicas.empty()) {
              c.Error(cp["address"], path + ".address",
                      "expected warden-control's host:port, or a list of "
                      "its replicas");
            }
            for (const std::string& a : replicas) {
              const size_t colon = a.rfind(':');
              if (colon == std::string::npos || colon == 0 ||
                  colon + 1 == a.size()) {
                c.Error(cp["address"], path + ".address",
                        absl::StrCat("'", a, "' is not host:port"));
              }
            }
          }
          if (c.String(cp, "ca_file", path, &settings.ca_file, true)) {
            settings.ca_file = c.File(base_dir, settings.ca_file);
          }
          if (c.String(cp, "bootstrap_token_file", path,
                       &settings.bootstrap_token_file, false)) {
            settings.bootstrap_token_file =
                c.File(base_dir, settings.bootstrap_token_file);
          }
          std::vector<std::string> keys;
          if (!c.StringList(cp, "trusted_keys", path, &keys) || keys.empty()) {
            c.Error(cp, path + ".trusted_keys",
                    "expected a non-empty list of public key files");
          }
          for (const auto& k : keys) {
            settings.trusted_keys.push_back(c.File(base_dir, k));
          }
          if (c.String(cp, "state_dir", path, &settings.state_dir, true)) {
            settings.state_dir = c.File(base_dir, settings.state_dir);
          }
          c.String(cp, "proxy_id", path, &settings.proxy_id, false);
          c.String(cp, "environment", path, &settings.environment, false);
          cfg.policy.control_plane = std::move(settings);
        }
      } else if (!p["paths"]) {
        c.Error(p, "policy", "missing required key 'paths'");
      } else if (c.StringList(p, "paths", "policy", &paths) && paths.empty()) {
        c.Error(p["paths"], "policy.paths",
                "expected a non-empty list of policy files or folders");
      }
      for (const auto& path : paths) {
        cfg.policy.paths.push_back(c.File(base_dir, path));
      }
      int64_t v = 0;
      if (c.Int(p, "cache_entries", "policy", 0, 10000000, &v)) {
        cfg.policy.cache_entries = static_cast<int>(v);
      }
    }
  }

  if (const YAML::Node a = root["audit"]) {
    if (c.ExpectMap(a, "audit",
                    {"mode", "spool_dir", "max_spool_bytes", "sync_timeout",
                     "results", "backlogged_session_rate"})) {
      std::string mode = "async";
      c.String(a, "mode", "audit", &mode, false);
      if (mode == "async") {
        cfg.audit.mode = AuditMode::kAsync;
      } else if (mode == "sync") {
        cfg.audit.mode = AuditMode::kSync;
      } else if (mode == "off") {
        cfg.audit.mode = AuditMode::kOff;
      } else {
        c.Error(a["mode"], "audit.mode", "expected async, sync or off");
      }
      c.DurationMs(a, "sync_timeout", "audit", &cfg.audit.sync_timeout_ms);
      c.Bool(a, "results", "audit", &cfg.audit.results);
      if (c.String(a, "spool_dir", "audit", &cfg.audit.spool_dir,
                   cfg.audit.mode != AuditMode::kOff)) {
        cfg.audit.spool_dir = c.File(base_dir, cfg.audit.spool_dir);
      }
      int64_t bytes = 0;
      if (c.Int(a, "max_spool_bytes", "audit", 1 << 20,
                int64_t{1} << 40, &bytes)) {
        cfg.audit.max_spool_bytes = static_cast<uint64_t>(bytes);
      }
      int64_t rate = 0;
      if (c.Int(a, "backlogged_session_rate", "audit", 0, 1000000, &rate)) {
        cfg.audit.backlogged_session_rate = static_cast<int>(rate);
      }
      if (cfg.audit.mode != AuditMode::kOff &&
          !cfg.policy.control_plane.has_value()) {
        c.Error(a, "audit",
                "audit events go to the control plane: configure "
                "policy.control_plane (or set audit.mode: off)");
      }
    }
  }

  if (const YAML::Node a = root["admin"]) {
    if (c.ExpectMap(a, "admin", {"address", "port"})) {
      AdminSettings admin;
      c.String(a, "address", "admin", &admin.address, false);
      int64_t port = 0;
      if (c.Int(a, "port", "admin", 0, 65535, &port)) {
        admin.port = static_cast<uint16_t>(port);
      }
      cfg.admin = std::move(admin);
    }
  }

  const YAML::Node envs = root["environments"];
  if (!envs || !envs.IsSequence() || envs.size() == 0) {
    c.Error(envs ? envs : root, "environments",
            "expected a non-empty list of environments");
  } else {
    std::set<std::string> env_names;
    for (size_t i = 0; i < envs.size(); ++i) {
      const std::string path = absl::StrCat("environments[", i, "]");
      Environment env;
      if (!c.ExpectMap(envs[i], path, {"name", "databases"})) continue;
      c.String(envs[i], "name", path, &env.name, true);
      if (!env.name.empty() && !env_names.insert(env.name).second) {
        c.Error(envs[i]["name"], path + ".name",
                "duplicate environment '" + env.name + "'");
      }
      const YAML::Node dbs = envs[i]["databases"];
      if (!dbs || !dbs.IsSequence() || dbs.size() == 0) {
        c.Error(dbs ? dbs : envs[i], path + ".databases",
                "expected a non-empty list of databases");
      } else {
        std::set<std::string> db_names;
        for (size_t j = 0; j < dbs.size(); ++j) {
          const std::string dpath = absl::StrCat(path, ".databases[", j, "]");
          Database db;
          if (!c.ExpectMap(dbs[j], dpath, {"name", "upstream"})) continue;
          c.String(dbs[j], "name", dpath, &db.name, true);
          if (!db.name.empty() && !db_names.insert(db.name).second) {
            c.Error(dbs[j]["name"], dpath + ".name",
                    "duplicate database '" + db.name + "'");
          }
          if (!dbs[j]["upstream"]) {
            c.Error(dbs[j], dpath, "missing required key 'upstream'");
          } else {
            ParseUpstream(c, dbs[j]["upstream"], dpath + ".upstream", base_dir,
                          &db.upstream);
          }
          env.databases.push_back(std::move(db));
        }
      }
      cfg.environments.push_back(std::move(env));
    }
  }

  const YAML::Node listeners = root["listeners"];
  if (!listeners || !listeners.IsSequence() || listeners.size() == 0) {
    c.Error(listeners ? listeners : root, "listeners",
            "expected a non-empty list of listeners");
  } else {
    std::set<std::string> names;
    for (size_t i = 0; i < listeners.size(); ++i) {
      const std::string path = absl::StrCat("listeners[", i, "]");
      Listener l;
      ParseListener(c, listeners[i], path, base_dir, &l);
      if (!l.name.empty() && !names.insert(l.name).second) {
        c.Error(listeners[i]["name"], path + ".name",
                "duplicate listener '" + l.name + "'");
      }
      if (!l.environment.empty() && !cfg.FindEnvironment(l.environment)) {
        c.Error(listeners[i]["environment"], path + ".environment",
                "no environment named '" + l.environment + "'");
      }
      cfg.listeners.push_back(std::move(l));
    }
  }

  if (const YAML::Node users = root["users"]) {
    if (!users.IsSequence()) {
      c.Error(users, "users", "expected a list of users");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < users.size(); ++i) {
        const std::string path = absl::StrCat("users[", i, "]");
        User u;
        ParseUser(c, users[i], path, &u);
        if (!u.name.empty() && !names.insert(u.name).second) {
          c.Error(users[i]["name"], path + ".name",
                  "duplicate user '" + u.name + "'");
        }
        for (const auto& e : u.environments) {
          if (!cfg.FindEnvironment(e)) {
            c.Error(users[i]["environments"], path + ".environments",
                    "no environment named '" + e + "'");
          }
        }
        cfg.users.push_back(std::move(u));
      }
    }
  }

  if (const YAML::Node idps = root["identity_providers"]) {
    if (!idps.IsSequence()) {
      c.Error(idps, "identity_providers",
              "expected a list of identity providers");
    } else {
      std::set<std::string> names, issuers;
      for (size_t i = 0; i < idps.size(); ++i) {
        const std::string path = absl::StrCat("identity_providers[", i, "]");
        IdentityProvider p;
        ParseIdentityProvider(c, idps[i], path, base_dir, &p);
        if (!p.name.empty() && !names.insert(p.name).second) {
          c.Error(idps[i]["name"], path + ".name",
                  "duplicate identity provider '" + p.name + "'");
        }
        if (!p.issuer.empty() && !issuers.insert(p.issuer).second) {
          c.Error(idps[i]["issuer"], path + ".issuer",
                  "another provider has issuer '" + p.issuer + "'");
        }
        cfg.identity_providers.push_back(std::move(p));
      }
    }
  }
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    const Listener& l = cfg.listeners[i];
    if (l.auth == ClientAuthMethod::kCert && !cfg.policy.control_plane &&
        l.tls && l.tls->client_ca_file.empty()) {
      c.Error(root["listeners"][i], absl::StrCat("listeners[", i, "]"),
              "auth: cert needs tls.client_ca_file (Warden's CA, "
              "warden-control's DATA_DIR/ca.crt), or a control plane "
              "(policy.control_plane) whose CA the proxy learns when it "
              "enrolls");
    }
    if (l.auth != ClientAuthMethod::kOidc) continue;
    const std::string path = absl::StrCat("listeners[", i, "]");
    if (cfg.identity_providers.empty() && !cfg.policy.control_plane) {
      c.Error(root["listeners"][i], path,
              "auth: token needs identity_providers here, or a control plane "
              "(policy.control_plane) whose bundles bring providers and "
              "service tokens");
    }
    for (const auto& name : l.identity_providers) {
      if (cfg.FindIdentityProvider(name) == nullptr) {
        c.Error(root["listeners"][i]["identity_providers"],
                path + ".identity_providers",
                "no identity provider named '" + name + "'");
      }
    }
  }

  if (!c.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(c.errors(), "\n"));
  }
  return cfg;
}

}  // namespace

const Database* Environment::FindDatabase(absl::string_view name) const {
  for (const auto& db : databases) {
    if (db.name == name) return &db;
  }
  return nullptr;
}

const Environment* ProxyConfig::FindEnvironment(absl::string_view name) const {
  for (const auto& env : environments) {
    if (env.name == name) return &env;
  }
  return nullptr;
}

const IdentityProvider* ProxyConfig::FindIdentityProvider(
    absl::string_view name) const {
  for (const auto& p : identity_providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const User* ProxyConfig::FindUser(absl::string_view name) const {
  for (const auto& user : users) {
    if (user.name == name) return &user;
  }
  return nullptr;
}

absl::StatusOr<ProxyConfig> ParseConfig(absl::string_view text,
                                        absl::string_view file_name,
                                        absl::string_view base_dir) {
  Checker checker{std::string(file_name)};
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root || root.IsNull()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ": the configuration is empty"));
    }
    return ParseRoot(checker, root, std::string(base_dir));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::StatusOr<ProxyConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read configuration file '", path, "'"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string base_dir = ".";
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) base_dir = path.substr(0, slash);
  return ParseConfig(buffer.str(), path, base_dir);
}

}  // namespace warden::dataplane::config
