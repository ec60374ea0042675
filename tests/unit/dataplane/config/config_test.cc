#include "dataplane/config/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dataplane/auth/scram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::config {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

// The smallest complete configuration. Line numbers matter for the tests
// that check error positions, so keep it as it is.
constexpr absl::string_view kMinimal = R"(listeners:
  - name: main
    port: 6432
    environment: prod
environments:
  - name: prod
    databases:
      - name: app
        upstream:
          host: db.internal
          database: appdb
          user: warden
          password: svc-pw
users:
  - name: alice
    password: alice-pw
)";

// Building blocks appended after the part a test varies, so the varied part
// starts at a known line.
constexpr absl::string_view kProdEnv = R"(environments:
  - name: prod
    databases:
      - name: app
        upstream: {database: appdb, user: warden, password: svc-pw}
)";

constexpr absl::string_view kMainListener = R"(listeners:
  - name: main
    environment: prod
)";

absl::StatusOr<ProxyConfig> Parse(absl::string_view text,
                                  absl::string_view base_dir = "") {
  return ParseConfig(text, "proxy.yaml", base_dir);
}

// The listener entries given start at line 2.
std::string ListenerConfig(absl::string_view listener_lines) {
  return absl::StrCat("listeners:\n", listener_lines, kProdEnv);
}

// The upstream keys given (indented by 10) start at line 6.
std::string UpstreamConfig(absl::string_view upstream_lines) {
  return absl::StrCat(
      "environments:\n"
      "  - name: prod\n"
      "    databases:\n"
      "      - name: app\n"
      "        upstream:\n",
      upstream_lines, kMainListener);
}

// The user entries given start at line 2.
std::string UsersConfig(absl::string_view user_lines) {
  return absl::StrCat("users:\n", user_lines, kMainListener, kProdEnv);
}

// The error lines of a failed parse; fails the test if the parse succeeded
// or the code is not InvalidArgument.
std::vector<std::string> Errors(const absl::StatusOr<ProxyConfig>& result) {
  EXPECT_FALSE(result.ok()) << "parse unexpectedly succeeded";
  if (result.ok()) return {};
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
      << result.status();
  return absl::StrSplit(result.status().message(), '\n');
}

// A fresh folder under the test's temporary directory.
std::string MakeTempDir(absl::string_view name) {
  std::string base = ::testing::TempDir();
  if (!base.empty() && base.back() == '/') base.pop_back();
  const std::string dir = absl::StrCat(base, "/config_test_", name);
  ::mkdir(dir.c_str(), 0700);
  return dir;
}

void WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// ------------------------------------------------------------ valid configs

TEST(ConfigTest, MinimalConfigHasExpectedFieldsAndDefaults) {
  auto cfg = Parse(kMinimal);
  ASSERT_TRUE(cfg.ok()) << cfg.status();

  ASSERT_THAT(cfg->listeners, SizeIs(1));
  const Listener& l = cfg->listeners[0];
  EXPECT_EQ(l.name, "main");
  EXPECT_EQ(l.address, "127.0.0.1");
  EXPECT_EQ(l.port, 6432);
  EXPECT_EQ(l.environment, "prod");
  EXPECT_EQ(l.tls_mode, ClientTlsMode::kDisable);
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_EQ(l.auth, ClientAuthMethod::kScramSha256);

  ASSERT_THAT(cfg->environments, SizeIs(1));
  const Environment& env = cfg->environments[0];
  EXPECT_EQ(env.name, "prod");
  ASSERT_THAT(env.databases, SizeIs(1));
  const Database& db = env.databases[0];
  EXPECT_EQ(db.name, "app");
  const Upstream& u = db.upstream;
  EXPECT_EQ(u.host, "db.internal");
  EXPECT_EQ(u.port, 5432);
  EXPECT_EQ(u.database, "appdb");
  EXPECT_EQ(u.user, "warden");
  EXPECT_EQ(u.password, "svc-pw");
  EXPECT_EQ(u.auth, UpstreamAuthMethod::kScramSha256);
  EXPECT_EQ(u.tls_mode, UpstreamTlsMode::kDisable);
  EXPECT_EQ(u.ca_file, "");
  EXPECT_EQ(u.server_name, "db.internal");  // defaults to host.
  EXPECT_EQ(u.connect_timeout_ms, 5000);

  const ProxySettings& p = cfg->proxy;
  EXPECT_EQ(p.workers, 0);
  EXPECT_EQ(p.max_client_connections, 10000);
  EXPECT_EQ(p.startup_timeout_ms, 15000);
  EXPECT_EQ(p.max_message_bytes, size_t{64} << 20);
  EXPECT_EQ(p.max_backend_message_bytes, size_t{1} << 30);
  EXPECT_EQ(p.max_buffered_bytes, size_t{256} << 10);
  EXPECT_EQ(p.log_level, "info");

  ASSERT_THAT(cfg->users, SizeIs(1));
  const User& alice = cfg->users[0];
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.kind, "human");
  EXPECT_TRUE(alice.groups.empty());
  EXPECT_TRUE(alice.environments.empty());
}

TEST(ConfigTest, UserPasswordBecomesScramVerifierForThatPassword) {
  auto cfg = Parse(kMinimal);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const User* alice = cfg->FindUser("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_THAT(alice->scram_verifier, ::testing::StartsWith("SCRAM-SHA-256$"));
  EXPECT_THAT(alice->scram_verifier, ::testing::Not(HasSubstr("alice-pw")));
  auto v = auth::ParseScramVerifier(alice->scram_verifier);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->iterations, auth::kScramDefaultIterations);
  // The verifier is the one for "alice-pw", not for some other password.
  const auth::ScramVerifier expected =
      auth::MakeScramVerifier("alice-pw", v->salt, v->iterations);
  EXPECT_EQ(v->stored_key, expected.stored_key);
  EXPECT_EQ(v->server_key, expected.server_key);
  const auth::ScramVerifier other =
      auth::MakeScramVerifier("alice-pw2", v->salt, v->iterations);
  EXPECT_NE(v->stored_key, other.stored_key);
}

TEST(ConfigTest, PasswordsGetRandomSalts) {
  auto a = Parse(kMinimal);
  auto b = Parse(kMinimal);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->users[0].scram_verifier, b->users[0].scram_verifier);
}

TEST(ConfigTest, FindHelpers) {
  auto cfg = Parse(kMinimal);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Environment* prod = cfg->FindEnvironment("prod");
  ASSERT_NE(prod, nullptr);
  EXPECT_EQ(prod->name, "prod");
  EXPECT_EQ(cfg->FindEnvironment("staging"), nullptr);
  const Database* app = prod->FindDatabase("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->upstream.database, "appdb");
  EXPECT_EQ(prod->FindDatabase("appdb"), nullptr);
  EXPECT_NE(cfg->FindUser("alice"), nullptr);
  EXPECT_EQ(cfg->FindUser("bob"), nullptr);
}

TEST(ConfigTest, UsersAreOptional) {
  auto cfg = Parse(absl::StrCat(kMainListener, kProdEnv));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->users.empty());
}

TEST(ConfigTest, ProxySettingsAndDurations) {
  auto cfg = Parse(absl::StrCat(R"(proxy:
  workers: 4
  max_client_connections: 500
  startup_timeout: 2s
  max_message_bytes: 1048576
  max_backend_message_bytes: 2097152
  max_buffered_bytes: 65536
  log_level: debug
)",
                                kMainListener, kProdEnv));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->proxy.workers, 4);
  EXPECT_EQ(cfg->proxy.max_client_connections, 500);
  EXPECT_EQ(cfg->proxy.startup_timeout_ms, 2000);
  EXPECT_EQ(cfg->proxy.max_message_bytes, 1048576u);
  EXPECT_EQ(cfg->proxy.max_backend_message_bytes, 2097152u);
  EXPECT_EQ(cfg->proxy.max_buffered_bytes, 65536u);
  EXPECT_EQ(cfg->proxy.log_level, "debug");
}

TEST(ConfigTest, DurationForms) {
  struct Case {
    const char* text;
    int ms;
  };
  for (const Case& c :
       {Case{"500ms", 500}, Case{"15s", 15000}, Case{"2m", 120000},
        Case{"1m30s", 90000}, Case{"1h", 3600000}}) {
    auto cfg = Parse(absl::StrCat("proxy:\n  startup_timeout: ", c.text, "\n",
                                  kMainListener, kProdEnv));
    ASSERT_TRUE(cfg.ok()) << c.text << ": " << cfg.status();
    EXPECT_EQ(cfg->proxy.startup_timeout_ms, c.ms) << c.text;
  }
}

TEST(ConfigTest, BadDurationsAreRejectedWithPosition) {
  for (const char* bad : {"15", "soon", "2h", "0s", "-1s", "1us", "999us"}) {
    auto cfg = Parse(absl::StrCat("proxy:\n  startup_timeout: ", bad, "\n",
                                  kMainListener, kProdEnv));
    EXPECT_THAT(Errors(cfg),
                ElementsAre("proxy.yaml:2:20: proxy.startup_timeout: expected "
                            "a duration such as 500ms, 15s or 2m (1ms to 1h)"))
        << bad;
  }
}

TEST(ConfigTest, UpstreamConnectTimeout) {
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password: pw\n"
                           "          connect_timeout: 250ms\n"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->environments[0].databases[0].upstream.connect_timeout_ms, 250);
}

TEST(ConfigTest, BadLogLevel) {
  auto cfg = Parse(
      absl::StrCat("proxy:\n  log_level: loud\n", kMainListener, kProdEnv));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:14: proxy.log_level: expected trace, "
                          "debug, info, warn or error"));
}

TEST(ConfigTest, WorkersOutOfRange) {
  auto cfg =
      Parse(absl::StrCat("proxy:\n  workers: 0\n", kMainListener, kProdEnv));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:12: proxy.workers: expected an integer "
                          "in [1, 256], got '0'"));
}

// Audit settings need a control plane to send to.
constexpr absl::string_view kControlPlane = R"(policy:
  control_plane: {address: "cp:7443", ca_file: /etc/warden/ca.crt,
                  trusted_keys: [/etc/warden/bundle.pub],
                  state_dir: /var/lib/warden/state}
)";

TEST(ConfigTest, AuditSettingsAndDefaults) {
  auto cfg = Parse(absl::StrCat(
      "audit:\n  mode: sync\n  spool_dir: /var/lib/warden/spool\n"
      "  sync_timeout: 750ms\n  max_spool_bytes: 2097152\n  results: off\n"
      "  backlogged_session_rate: 0\n",
      kControlPlane, kMainListener, kProdEnv));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->audit.mode, AuditMode::kSync);
  EXPECT_EQ(cfg->audit.spool_dir, "/var/lib/warden/spool");
  EXPECT_EQ(cfg->audit.sync_timeout_ms, 750);
  EXPECT_EQ(cfg->audit.max_spool_bytes, 2097152u);
  EXPECT_FALSE(cfg->audit.results);
  EXPECT_EQ(cfg->audit.backlogged_session_rate, 0);

  auto defaults = Parse(absl::StrCat("audit:\n  spool_dir: /s\n",
                                     kControlPlane, kMainListener, kProdEnv));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->audit.mode, AuditMode::kAsync);
  EXPECT_TRUE(defaults->audit.results);
  EXPECT_EQ(defaults->audit.backlogged_session_rate, 1000);
  EXPECT_EQ(defaults->audit.sync_timeout_ms, 2000);
}

TEST(ConfigTest, UpstreamRolesHoldTheirOwnPasswords) {
  ::setenv("WARDEN_TEST_RO_PW", "ro-secret", 1);
  auto cfg = Parse(UpstreamConfig(
      "          database: appdb\n"
      "          user: warden\n"
      "          password: svc-pw\n"
      "          roles:\n"
      "            app_admin: { password: admin-pw }\n"
      "            app_ro: { password_env: WARDEN_TEST_RO_PW }\n"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const auto& roles = cfg->environments[0].databases[0].upstream.roles;
  ASSERT_EQ(roles.size(), 2u);
  EXPECT_EQ(roles.at("app_admin"), "admin-pw");
  EXPECT_EQ(roles.at("app_ro"), "ro-secret");
  auto bad = Parse(UpstreamConfig(
      "          database: appdb\n"
      "          user: warden\n"
      "          password: svc-pw\n"
      "          roles:\n"
      "            app_admin: { passwd: x }\n"));
  const auto errors = Errors(bad);
  ASSERT_FALSE(errors.empty());
  EXPECT_THAT(errors[0], HasSubstr("roles.app_admin: unknown key 'passwd'"));
}

TEST(ConfigTest, BadAuditSettingsAreNamed) {
  auto cfg = Parse(absl::StrCat(
      "audit:\n  mode: sometimes\n  spool_dir: /s\n  results: maybe\n",
      kControlPlane, kMainListener, kProdEnv));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:9: audit.mode: expected async, sync "
                          "or off",
                          "proxy.yaml:4:12: audit.results: expected true or "
                          "false"));
  auto no_cp = Parse(
      absl::StrCat("audit:\n  spool_dir: /s\n", kMainListener, kProdEnv));
  const auto errors = Errors(no_cp);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("configure policy.control_plane"));
}

TEST(ConfigTest, FullListener) {
  const std::string dir = MakeTempDir("full_listener");
  WriteFile(dir + "/cert.pem", "cert");
  WriteFile(dir + "/key.pem", "key");
  auto cfg = Parse(ListenerConfig(
      absl::StrCat("  - name: public\n"
                   "    address: 0.0.0.0\n"
                   "    port: 0\n"
                   "    environment: prod\n"
                   "    auth: password\n"
                   "    tls:\n"
                   "      mode: require\n"
                   "      cert_file: ",
                   dir, "/cert.pem\n", "      key_file: ", dir, "/key.pem\n")));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Listener& l = cfg->listeners[0];
  EXPECT_EQ(l.name, "public");
  EXPECT_EQ(l.address, "0.0.0.0");
  EXPECT_EQ(l.port, 0);
  EXPECT_EQ(l.auth, ClientAuthMethod::kPassword);
  EXPECT_EQ(l.tls_mode, ClientTlsMode::kRequire);
  ASSERT_TRUE(l.tls.has_value());
  EXPECT_EQ(l.tls->cert_file, dir + "/cert.pem");
  EXPECT_EQ(l.tls->key_file, dir + "/key.pem");
}

TEST(ConfigTest, TlsModeDefaultsToRequireAndAllowIsParsed) {
  const std::string dir = MakeTempDir("tls_modes");
  WriteFile(dir + "/cert.pem", "cert");
  WriteFile(dir + "/key.pem", "key");
  auto cfg = Parse(
      ListenerConfig("  - name: a\n"
                     "    environment: prod\n"
                     "    tls: {cert_file: cert.pem, key_file: key.pem}\n"
                     "  - name: b\n"
                     "    environment: prod\n"
                     "    tls: {mode: allow, cert_file: cert.pem, key_file: "
                     "key.pem}\n"
                     "  - name: c\n"
                     "    environment: prod\n"
                     "    tls: {mode: disable}\n"),
      dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_THAT(cfg->listeners, SizeIs(3));
  EXPECT_EQ(cfg->listeners[0].tls_mode, ClientTlsMode::kRequire);
  EXPECT_EQ(cfg->listeners[1].tls_mode, ClientTlsMode::kAllow);
  EXPECT_EQ(cfg->listeners[2].tls_mode, ClientTlsMode::kDisable);
  EXPECT_FALSE(cfg->listeners[2].tls.has_value());
}

TEST(ConfigTest, RelativeCertPathsResolveAgainstBaseDir) {
  const std::string dir = MakeTempDir("relative_certs");
  WriteFile(dir + "/cert.pem", "cert");
  WriteFile(dir + "/key.pem", "key");
  const std::string text = ListenerConfig(
      "  - name: main\n"
      "    environment: prod\n"
      "    tls:\n"
      "      mode: require\n"
      "      cert_file: cert.pem\n"
      "      key_file: key.pem\n");
  auto cfg = Parse(text, dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_TRUE(cfg->listeners[0].tls.has_value());
  EXPECT_EQ(cfg->listeners[0].tls->cert_file, dir + "/cert.pem");
  EXPECT_EQ(cfg->listeners[0].tls->key_file, dir + "/key.pem");

  // The same text against another folder does not find the files.
  const std::string empty_dir = MakeTempDir("relative_certs_empty");
  EXPECT_THAT(
      Errors(Parse(text, empty_dir)),
      ElementsAre(absl::StrCat("proxy.yaml:6:18: listeners[0].tls.cert_file: "
                               "cannot read '",
                               empty_dir, "/cert.pem'"),
                  absl::StrCat("proxy.yaml:7:17: listeners[0].tls.key_file: "
                               "cannot read '",
                               empty_dir, "/key.pem'")));
}

TEST(ConfigTest, FullUpstream) {
  const std::string dir = MakeTempDir("full_upstream");
  WriteFile(dir + "/ca.pem", "ca");
  auto cfg = Parse(UpstreamConfig("          host: 10.0.0.5\n"
                                  "          port: 5433\n"
                                  "          database: appdb\n"
                                  "          user: warden\n"
                                  "          password: pw\n"
                                  "          auth: md5\n"
                                  "          tls:\n"
                                  "            mode: verify-full\n"
                                  "            ca_file: ca.pem\n"
                                  "            server_name: db.example.com\n"),
                   dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Upstream& u = cfg->environments[0].databases[0].upstream;
  EXPECT_EQ(u.host, "10.0.0.5");
  EXPECT_EQ(u.port, 5433);
  EXPECT_EQ(u.auth, UpstreamAuthMethod::kMd5);
  EXPECT_EQ(u.tls_mode, UpstreamTlsMode::kVerifyFull);
  EXPECT_EQ(u.ca_file, dir + "/ca.pem");
  EXPECT_EQ(u.server_name, "db.example.com");
}

TEST(ConfigTest, UpstreamAuthAndTlsModes) {
  const std::string dir = MakeTempDir("upstream_modes");
  WriteFile(dir + "/ca.pem", "ca");
  struct Case {
    const char* auth;
    UpstreamAuthMethod want;
  };
  for (const Case& c : {Case{"scram-sha-256", UpstreamAuthMethod::kScramSha256},
                        Case{"md5", UpstreamAuthMethod::kMd5},
                        Case{"password", UpstreamAuthMethod::kPassword}}) {
    auto cfg = Parse(UpstreamConfig(
        absl::StrCat("          database: appdb\n          user: warden\n"
                     "          password: pw\n          auth: ",
                     c.auth, "\n")));
    ASSERT_TRUE(cfg.ok()) << c.auth << ": " << cfg.status();
    EXPECT_EQ(cfg->environments[0].databases[0].upstream.auth, c.want)
        << c.auth;
  }
  struct TlsCase {
    const char* tls;
    UpstreamTlsMode want;
  };
  for (const TlsCase& c :
       {TlsCase{"{}", UpstreamTlsMode::kRequire},
        TlsCase{"{mode: disable}", UpstreamTlsMode::kDisable},
        TlsCase{"{mode: require}", UpstreamTlsMode::kRequire},
        TlsCase{"{mode: verify-ca, ca_file: ca.pem}",
                UpstreamTlsMode::kVerifyCa}}) {
    auto cfg = Parse(UpstreamConfig(absl::StrCat(
                         "          database: appdb\n          user: warden\n"
                         "          password: pw\n          tls: ",
                         c.tls, "\n")),
                     dir);
    ASSERT_TRUE(cfg.ok()) << c.tls << ": " << cfg.status();
    const Upstream& u = cfg->environments[0].databases[0].upstream;
    EXPECT_EQ(u.tls_mode, c.want) << c.tls;
    EXPECT_EQ(u.server_name, "127.0.0.1") << c.tls;  // default host.
  }
}

TEST(ConfigTest, UpstreamTrustNeedsNoPassword) {
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          auth: trust\n"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Upstream& u = cfg->environments[0].databases[0].upstream;
  EXPECT_EQ(u.auth, UpstreamAuthMethod::kTrust);
  EXPECT_EQ(u.password, "");
}

TEST(ConfigTest, PasswordEnvIsResolved) {
  ASSERT_EQ(::setenv("WARDEN_CONFIG_TEST_PW", "from-env", 1), 0);
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password_env: WARDEN_CONFIG_TEST_PW\n"));
  ::unsetenv("WARDEN_CONFIG_TEST_PW");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->environments[0].databases[0].upstream.password, "from-env");
}

TEST(ConfigTest, PasswordEnvUnset) {
  ::unsetenv("WARDEN_CONFIG_TEST_UNSET_PW");
  auto cfg = Parse(
      UpstreamConfig("          database: appdb\n"
                     "          user: warden\n"
                     "          password_env: WARDEN_CONFIG_TEST_UNSET_PW\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:8:25: environments[0].databases[0]."
                          "upstream.password_env: environment variable "
                          "WARDEN_CONFIG_TEST_UNSET_PW is not set or empty"));
}

TEST(ConfigTest, PasswordFileFirstLineIsThePassword) {
  const std::string dir = MakeTempDir("password_file");
  WriteFile(dir + "/pw.txt", "file-pw\nsecond line\n");
  // Absolute path.
  auto cfg = Parse(UpstreamConfig(
      absl::StrCat("          database: appdb\n          user: warden\n"
                   "          password_file: ",
                   dir, "/pw.txt\n")));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->environments[0].databases[0].upstream.password, "file-pw");
  // Relative path, resolved against base_dir.
  auto rel = Parse(UpstreamConfig("          database: appdb\n"
                                  "          user: warden\n"
                                  "          password_file: pw.txt\n"),
                   dir);
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ(rel->environments[0].databases[0].upstream.password, "file-pw");
}

TEST(ConfigTest, PasswordFileMissing) {
  auto cfg = Parse(
      UpstreamConfig("          database: appdb\n"
                     "          user: warden\n"
                     "          password_file: /nonexistent/warden/pw.txt\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:8:26: environments[0].databases[0]."
                          "upstream.password_file: cannot read "
                          "'/nonexistent/warden/pw.txt'"));
}

TEST(ConfigTest, TwoPasswordSources) {
  ASSERT_EQ(::setenv("WARDEN_CONFIG_TEST_PW2", "x", 1), 0);
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password: pw\n"
                           "          password_env: WARDEN_CONFIG_TEST_PW2\n"));
  ::unsetenv("WARDEN_CONFIG_TEST_PW2");
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:11: environments[0].databases[0]."
                          "upstream: set only one of password, password_env, "
                          "password_file"));
}

TEST(ConfigTest, NoPasswordSource) {
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:11: environments[0].databases[0]."
                          "upstream: a password (password, password_env or "
                          "password_file) is required unless auth: trust"));
}

TEST(ConfigTest, VerifyFullWithoutCaFile) {
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password: pw\n"
                           "          tls:\n"
                           "            mode: verify-full\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:10:13: environments[0].databases[0]."
                          "upstream.tls: verify-ca and verify-full need "
                          "ca_file"));
}

TEST(ConfigTest, MissingCaFile) {
  auto cfg = Parse(UpstreamConfig("          database: appdb\n"
                                  "          user: warden\n"
                                  "          password: pw\n"
                                  "          tls:\n"
                                  "            mode: verify-ca\n"
                                  "            ca_file: missing-ca.pem\n"),
                   "/nonexistent/warden");
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:11:22: environments[0].databases[0]."
                          "upstream.tls.ca_file: cannot read "
                          "'/nonexistent/warden/missing-ca.pem'"));
}

TEST(ConfigTest, BadUpstreamAuth) {
  auto cfg =
      Parse(UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password: pw\n"
                           "          auth: kerberos\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:9:17: environments[0].databases[0]."
                          "upstream.auth: expected scram-sha-256, md5, "
                          "password or trust, got 'kerberos'"));
}

TEST(ConfigTest, UpstreamMissingRequiredKeys) {
  auto cfg =
      Parse(UpstreamConfig("          host: db\n"
                           "          password: pw\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:11: environments[0].databases[0]."
                          "upstream: missing required key 'database'",
                          "proxy.yaml:6:11: environments[0].databases[0]."
                          "upstream: missing required key 'user'"));
}

// ---------------------------------------------------------------- listeners

TEST(ConfigTest, UnknownKeyIsAnError) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    tls_mod: require\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:5: listeners[0]: unknown key "
                          "'tls_mod' (allowed: name, address, port, "
                          "environment, tls, auth, identity_providers)"));
}

TEST(ConfigTest, UnknownTopLevelKey) {
  auto cfg = Parse(absl::StrCat(kMinimal, "listener: {}\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:17:1: config: unknown key 'listener' "
                          "(allowed: proxy, policy, audit, admin, listeners, environments, users, identity_providers)"));
}

TEST(ConfigTest, PortOutOfRange) {
  std::string text(kMinimal);
  text.replace(text.find("port: 6432"), 10, "port: 70000");
  EXPECT_THAT(Errors(Parse(text)),
              ElementsAre("proxy.yaml:3:11: listeners[0].port: expected an "
                          "integer in [0, 65535], got '70000'"));
  text.replace(text.find("port: 70000"), 11, "port: -1");
  EXPECT_THAT(Errors(Parse(text)),
              ElementsAre("proxy.yaml:3:11: listeners[0].port: expected an "
                          "integer in [0, 65535], got '-1'"));
}

TEST(ConfigTest, PortNotAnInteger) {
  std::string text(kMinimal);
  text.replace(text.find("port: 6432"), 10, "port: 64x2");
  EXPECT_THAT(Errors(Parse(text)),
              ElementsAre("proxy.yaml:3:11: listeners[0].port: expected an "
                          "integer in [0, 65535], got '64x2'"));
  text.replace(text.find("port: 64x2"), 10, "port: [1]");
  EXPECT_THAT(Errors(Parse(text)),
              ElementsAre("proxy.yaml:3:11: listeners[0].port: expected an "
                          "integer in [0, 65535], got '<non-scalar>'"));
}

TEST(ConfigTest, ListenerEnvironmentMustExist) {
  std::string text(kMinimal);
  text.replace(text.find("environment: prod"), 17, "environment: staging");
  EXPECT_THAT(Errors(Parse(text)),
              ElementsAre("proxy.yaml:4:18: listeners[0].environment: no "
                          "environment named 'staging'"));
}

TEST(ConfigTest, ListenerMissingRequiredKeys) {
  auto cfg = Parse(ListenerConfig("  - port: 1\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: listeners[0]: missing required key "
                          "'name'",
                          "proxy.yaml:2:5: listeners[0]: missing required key "
                          "'environment'"));
}

TEST(ConfigTest, DuplicateListener) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "  - name: main\n"
                           "    environment: prod\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:11: listeners[1].name: duplicate "
                          "listener 'main'"));
}

TEST(ConfigTest, CleartextAuthNeedsTlsRequire) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    auth: password\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: listeners[0]: auth: password sends "
                          "the password in cleartext and is only allowed with "
                          "tls.mode: require"));
}

TEST(ConfigTest, CleartextAuthWithTlsAllowIsRejected) {
  const std::string dir = MakeTempDir("cleartext_allow");
  WriteFile(dir + "/cert.pem", "cert");
  WriteFile(dir + "/key.pem", "key");
  auto cfg = Parse(ListenerConfig("  - name: main\n"
                                  "    environment: prod\n"
                                  "    auth: password\n"
                                  "    tls: {mode: allow, cert_file: cert.pem, "
                                  "key_file: key.pem}\n"),
                   dir);
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: listeners[0]: auth: password sends "
                          "the password in cleartext and is only allowed with "
                          "tls.mode: require"));
}

TEST(ConfigTest, BadListenerAuth) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    auth: md5\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:11: listeners[0].auth: expected "
                          "scram-sha-256, password, token (oidc) or cert, got 'md5'"));
}

TEST(ConfigTest, CertListenerNeedsTlsAndACa) {
  const std::string dir = MakeTempDir("cert_listener");
  WriteFile(dir + "/cert.pem", "cert");
  WriteFile(dir + "/key.pem", "key");
  WriteFile(dir + "/warden-ca.pem", "ca");
  auto plain = Parse(ListenerConfig("  - name: main\n"
                                    "    environment: prod\n"
                                    "    auth: cert\n"),
                     dir);
  EXPECT_THAT(Errors(plain),
              Contains(HasSubstr("auth: cert reads the identity from the TLS "
                                 "client certificate and is only allowed "
                                 "with tls.mode: require")));
  auto no_ca = Parse(ListenerConfig("  - name: main\n"
                                    "    environment: prod\n"
                                    "    auth: cert\n"
                                    "    tls: {cert_file: cert.pem, "
                                    "key_file: key.pem}\n"),
                     dir);
  EXPECT_THAT(Errors(no_ca),
              ElementsAre(HasSubstr("auth: cert needs tls.client_ca_file")));
  auto ok = Parse(ListenerConfig("  - name: main\n"
                                 "    environment: prod\n"
                                 "    auth: cert\n"
                                 "    tls: {cert_file: cert.pem, key_file: "
                                 "key.pem, client_ca_file: warden-ca.pem}\n"),
                  dir);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->listeners[0].auth, config::ClientAuthMethod::kCert);
  EXPECT_EQ(ok->listeners[0].tls->client_ca_file, dir + "/warden-ca.pem");
  auto not_cert = Parse(ListenerConfig("  - name: main\n"
                                       "    environment: prod\n"
                                       "    auth: password\n"
                                       "    tls: {cert_file: cert.pem, key_file: "
                                       "key.pem, client_ca_file: warden-ca.pem}\n"),
                        dir);
  EXPECT_THAT(Errors(not_cert),
              ElementsAre(HasSubstr("tls.client_ca_file: only used with auth: cert")));
}

TEST(ConfigTest, BadListenerTlsMode) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    tls:\n"
                           "      mode: prefer\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:5:13: listeners[0].tls.mode: expected "
                          "disable, allow or require, got 'prefer'"));
}

TEST(ConfigTest, TlsRequireWithUnreadableCertFiles) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    tls:\n"
                           "      mode: require\n"
                           "      cert_file: /nonexistent/warden/cert.pem\n"
                           "      key_file: /nonexistent/warden/key.pem\n"),
            "/ignored/for/absolute/paths");
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:18: listeners[0].tls.cert_file: cannot "
                          "read '/nonexistent/warden/cert.pem'",
                          "proxy.yaml:7:17: listeners[0].tls.key_file: cannot "
                          "read '/nonexistent/warden/key.pem'"));
}

TEST(ConfigTest, TlsRequireWithoutKeyFile) {
  auto cfg =
      Parse(ListenerConfig("  - name: main\n"
                           "    environment: prod\n"
                           "    tls:\n"
                           "      mode: require\n"
                           "      cert_file: /nonexistent/warden/cert.pem\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:5:7: listeners[0].tls: missing required "
                          "key 'key_file'"));
}

// ------------------------------------------------------------- environments

TEST(ConfigTest, DuplicateEnvironment) {
  auto cfg = Parse(
      absl::StrCat("environments:\n"
                   "  - name: prod\n"
                   "    databases:\n"
                   "      - name: app\n"
                   "        upstream: {database: a, user: u, password: pw}\n"
                   "  - name: prod\n"
                   "    databases:\n"
                   "      - name: app\n"
                   "        upstream: {database: a, user: u, password: pw}\n",
                   kMainListener));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:11: environments[1].name: duplicate "
                          "environment 'prod'"));
}

TEST(ConfigTest, DuplicateDatabase) {
  auto cfg = Parse(
      absl::StrCat("environments:\n"
                   "  - name: prod\n"
                   "    databases:\n"
                   "      - name: app\n"
                   "        upstream: {database: a, user: u, password: pw}\n"
                   "      - name: app\n"
                   "        upstream: {database: b, user: u, password: pw}\n",
                   kMainListener));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:6:15: environments[0].databases[1].name: "
                          "duplicate database 'app'"));
}

TEST(ConfigTest, SameDatabaseNameInTwoEnvironmentsIsFine) {
  auto cfg = Parse(
      absl::StrCat("environments:\n"
                   "  - name: prod\n"
                   "    databases:\n"
                   "      - name: app\n"
                   "        upstream: {database: a, user: u, password: pw}\n"
                   "  - name: staging\n"
                   "    databases:\n"
                   "      - name: app\n"
                   "        upstream: {database: b, user: u, password: pw}\n",
                   kMainListener));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(
      cfg->FindEnvironment("staging")->FindDatabase("app")->upstream.database,
      "b");
}

TEST(ConfigTest, EnvironmentsRequired) {
  EXPECT_THAT(Errors(Parse(kMainListener)),
              ElementsAre("proxy.yaml:1:1: environments: expected a non-empty "
                          "list of environments",
                          "proxy.yaml:3:18: listeners[0].environment: no "
                          "environment named 'prod'"));
  EXPECT_THAT(
      Errors(Parse(absl::StrCat("environments: []\n", kMainListener))),
      ElementsAre("proxy.yaml:1:15: environments: expected a non-empty list "
                  "of environments",
                  "proxy.yaml:4:18: listeners[0].environment: no environment "
                  "named 'prod'"));
}

TEST(ConfigTest, DatabasesRequired) {
  auto cfg =
      Parse(absl::StrCat("environments:\n"
                         "  - name: prod\n",
                         kMainListener));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: environments[0].databases: expected "
                          "a non-empty list of databases"));
}

TEST(ConfigTest, ListenersRequired) {
  EXPECT_THAT(Errors(Parse(kProdEnv)),
              ElementsAre("proxy.yaml:1:1: listeners: expected a non-empty "
                          "list of listeners"));
}

// -------------------------------------------------------------------- users

TEST(ConfigTest, UserWithGroupsKindAndEnvironments) {
  auto cfg =
      Parse(UsersConfig("  - name: alice\n"
                        "    password: pw\n"
                        "    groups: [dba, oncall]\n"
                        "    kind: agent\n"
                        "    environments: [prod]\n"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const User* alice = cfg->FindUser("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_THAT(alice->groups, ElementsAre("dba", "oncall"));
  EXPECT_EQ(alice->kind, "agent");
  EXPECT_THAT(alice->environments, ElementsAre("prod"));
}

TEST(ConfigTest, UserScramVerifierIsKeptVerbatim) {
  const std::string verifier = auth::FormatScramVerifier(
      auth::MakeScramVerifier("pw", "0123456789abcdef", 4096));
  auto cfg =
      Parse(UsersConfig(absl::StrCat("  - name: alice\n"
                                     "    scram_verifier: ",
                                     verifier, "\n")));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->users[0].scram_verifier, verifier);
}

TEST(ConfigTest, UserWithPasswordAndVerifier) {
  const std::string verifier = auth::FormatScramVerifier(
      auth::MakeScramVerifier("pw", "0123456789abcdef", 4096));
  auto cfg =
      Parse(UsersConfig(absl::StrCat("  - name: alice\n"
                                     "    password: pw\n"
                                     "    scram_verifier: ",
                                     verifier, "\n")));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: users[0]: set exactly one of "
                          "scram_verifier (preferred; make one with "
                          "warden-passwd) or password"));
}

TEST(ConfigTest, UserWithoutPasswordOrVerifier) {
  auto cfg =
      Parse(UsersConfig("  - name: alice\n"
                        "    kind: human\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:5: users[0]: set exactly one of "
                          "scram_verifier (preferred; make one with "
                          "warden-passwd) or password"));
}

TEST(ConfigTest, BadScramVerifier) {
  constexpr absl::string_view kBad = "SCRAM-SHA-256$bogus";
  const absl::Status why = auth::ParseScramVerifier(kBad).status();
  ASSERT_FALSE(why.ok());
  auto cfg = Parse(UsersConfig(
      absl::StrCat("  - name: alice\n    scram_verifier: ", kBad, "\n")));
  EXPECT_THAT(Errors(cfg), ElementsAre(absl::StrCat(
                               "proxy.yaml:3:21: users[0].scram_verifier: ",
                               why.message())));
}

TEST(ConfigTest, BadKind) {
  auto cfg =
      Parse(UsersConfig("  - name: alice\n"
                        "    password: pw\n"
                        "    kind: robot\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:11: users[0].kind: expected human, "
                          "agent or service, got 'robot'"));
}

TEST(ConfigTest, UserEnvironmentMustExist) {
  auto cfg =
      Parse(UsersConfig("  - name: alice\n"
                        "    password: pw\n"
                        "    environments: [prod, staging]\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:19: users[0].environments: no "
                          "environment named 'staging'"));
}

TEST(ConfigTest, DuplicateUser) {
  auto cfg =
      Parse(UsersConfig("  - name: alice\n"
                        "    password: a\n"
                        "  - name: alice\n"
                        "    password: b\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:4:11: users[1].name: duplicate user "
                          "'alice'"));
}

TEST(ConfigTest, UsersMustBeAList) {
  auto cfg = Parse(UsersConfig("  alice: pw\n"));
  EXPECT_THAT(Errors(cfg),
              ElementsAre("proxy.yaml:2:3: users: expected a list of users"));
}

// ----------------------------------------------------------- error handling

TEST(ConfigTest, SeveralErrorsAreReportedTogether) {
  auto cfg = Parse(R"(listeners:
  - name: main
    port: 70000
    environment: prod
    tls_mod: require
environments:
  - name: prod
    databases:
      - name: app
        upstream:
          database: appdb
          user: warden
users:
  - name: alice
    password: pw
    kind: robot
)");
  const std::vector<std::string> errors = Errors(cfg);
  EXPECT_THAT(
      errors,
      UnorderedElementsAre(
          "proxy.yaml:11:11: environments[0].databases[0].upstream: a password "
          "(password, password_env or password_file) is required unless auth: "
          "trust",
          "proxy.yaml:5:5: listeners[0]: unknown key 'tls_mod' (allowed: name, "
          "address, port, environment, tls, auth, identity_providers)",
          "proxy.yaml:3:11: listeners[0].port: expected an integer in [0, "
          "65535], got '70000'",
          "proxy.yaml:16:11: users[0].kind: expected human, agent or service, "
          "got 'robot'"));
}

TEST(ConfigTest, YamlSyntaxErrorHasPosition) {
  auto cfg = Parse(
      "listeners:\n"
      "  - name: main\n"
      "    environment: [prod\n");
  // yaml-cpp reports the unclosed flow sequence where the input ends.
  const std::vector<std::string> errors = Errors(cfg);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0], MatchesRegex("proxy\\.yaml:4:1: .*sequence.*"));

  auto bad_map = Parse("listeners: a: b\n");
  const std::vector<std::string> map_errors = Errors(bad_map);
  ASSERT_THAT(map_errors, SizeIs(1));
  EXPECT_THAT(map_errors[0], MatchesRegex("proxy\\.yaml:1:13: .*map value.*"));
}

TEST(ConfigTest, EmptyDocument) {
  for (const char* text : {"", "\n", "# just a comment\n", "~\n"}) {
    auto cfg = Parse(text);
    ASSERT_FALSE(cfg.ok()) << "'" << text << "'";
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(cfg.status().message(), "proxy.yaml: the configuration is empty")
        << "'" << text << "'";
  }
}

TEST(ConfigTest, RootMustBeAMapping) {
  EXPECT_THAT(Errors(Parse("- a\n- b\n")),
              ElementsAre("proxy.yaml:1:1: config: expected a mapping"));
  EXPECT_THAT(Errors(Parse("just a string\n")),
              ElementsAre("proxy.yaml:1:1: config: expected a mapping"));
}

TEST(ConfigTest, LoadConfigReadsFileAndResolvesAgainstItsFolder) {
  const std::string dir = MakeTempDir("load_config");
  WriteFile(dir + "/pw.txt", "loaded-pw\n");
  WriteFile(dir + "/proxy.yaml",
            UpstreamConfig("          database: appdb\n"
                           "          user: warden\n"
                           "          password_file: pw.txt\n"));
  auto cfg = LoadConfig(dir + "/proxy.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->environments[0].databases[0].upstream.password, "loaded-pw");

  auto missing = LoadConfig(dir + "/nope.yaml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  WriteFile(dir + "/bad.yaml", "listeners: []\n");
  auto bad = LoadConfig(dir + "/bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith(dir + "/bad.yaml:"));
}

}  // namespace
}  // namespace warden::dataplane::config

namespace warden::dataplane::config {
namespace {

TEST(ConfigReviewTest, DuplicateKeysAreErrors) {
  auto cfg = ParseConfig(
      "listeners:\n"
      "  - name: main\n"
      "    name: other\n"
      "    environment: prod\n"
      "environments:\n"
      "  - name: prod\n"
      "    databases:\n"
      "      - name: db\n"
      "        upstream: { database: x, user: u, auth: trust }\n",
      "proxy.yaml", "");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find(
                "proxy.yaml:3:5: listeners[0]: duplicate key 'name'"),
            std::string::npos)
      << cfg.status().message();
}

TEST(ConfigReviewTest, EmptyPasswordFromEnvironmentIsAnError) {
  setenv("WARDEN_CONFIG_TEST_EMPTY_PW", "", 1);
  auto cfg = ParseConfig(
      "listeners: [{ name: l, environment: prod }]\n"
      "environments:\n"
      "  - name: prod\n"
      "    databases:\n"
      "      - name: db\n"
      "        upstream: { database: x, user: u, password_env: "
      "WARDEN_CONFIG_TEST_EMPTY_PW }\n",
      "proxy.yaml", "");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("is not set or empty"),
            std::string::npos);
}

// ------------------------------------------------------------ policy

TEST(ConfigTest, PolicyPathsResolveAgainstTheConfigFolder) {
  auto cfg = Parse(absl::StrCat("policy:\n  paths: [policies, /etc/warden/p.yaml]\n"
                                "  cache_entries: 50\n",
                                kMainListener, kProdEnv),
                   "/srv/warden");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_THAT(cfg->policy.paths,
              ElementsAre("/srv/warden/policies", "/etc/warden/p.yaml"));
  EXPECT_EQ(cfg->policy.cache_entries, 50);
}

TEST(ConfigTest, PolicyIsOptionalAndDefaultsToNone) {
  auto cfg = Parse(kMinimal);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->policy.paths.empty());
  EXPECT_EQ(cfg->policy.cache_entries, 10000);
}

TEST(ConfigTest, PolicySectionErrorsArePrecise) {
  EXPECT_THAT(Errors(Parse(absl::StrCat("policy:\n  path: [p]\n", kMainListener,
                                        kProdEnv))),
              ElementsAre(HasSubstr("proxy.yaml:2:3: policy: unknown key 'path'"),
                          HasSubstr("missing required key 'paths'")));
  EXPECT_THAT(Errors(Parse(absl::StrCat("policy:\n  paths: []\n", kMainListener,
                                        kProdEnv))),
              ElementsAre(HasSubstr(
                  "proxy.yaml:2:10: policy.paths: expected a non-empty list")));
  EXPECT_THAT(Errors(Parse(absl::StrCat("policy:\n  paths: [p]\n"
                                        "  cache_entries: -1\n",
                                        kMainListener, kProdEnv))),
              ElementsAre(HasSubstr("proxy.yaml:3:18: policy.cache_entries")));
}

TEST(ConfigTest, PolicyFromTheControlPlane) {
  auto cfg = Parse(absl::StrCat(
                       "policy:\n"
                       "  control_plane:\n"
                       "    address: 127.0.0.1:7443\n"
                       "    ca_file: keys/ca.crt\n"
                       "    trusted_keys: [keys/signing.pub]\n"
                       "    state_dir: state\n"
                       "    bootstrap_token_file: secrets/bootstrap.token\n"
                       "    proxy_id: p1\n",
                       kMainListener, kProdEnv),
                   "/srv/warden");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_TRUE(cfg->policy.control_plane.has_value());
  EXPECT_EQ(cfg->policy.control_plane->address, "127.0.0.1:7443");
  EXPECT_THAT(cfg->policy.control_plane->trusted_keys,
              ElementsAre("/srv/warden/keys/signing.pub"));
  EXPECT_EQ(cfg->policy.control_plane->state_dir, "/srv/warden/state");
  EXPECT_EQ(cfg->policy.control_plane->ca_file, "/srv/warden/keys/ca.crt");
  EXPECT_EQ(cfg->policy.control_plane->bootstrap_token_file,
            "/srv/warden/secrets/bootstrap.token");
  EXPECT_TRUE(cfg->policy.paths.empty());
  // Default: three of warden-control's announced heartbeat intervals.
  EXPECT_EQ(cfg->policy.control_plane->watch_silence_timeout_ms, 0);
}

TEST(ConfigTest, ControlPlaneReplicasAsAListOrCommaSeparated) {
  const std::string rest =
      "    ca_file: ca.crt\n"
      "    trusted_keys: [signing.pub]\n"
      "    state_dir: state\n";
  auto listed = Parse(absl::StrCat("policy:\n  control_plane:\n"
                                   "    address: [wc-a:7443, wc-b:7443]\n",
                                   rest, kMainListener, kProdEnv));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->policy.control_plane->address, "wc-a:7443,wc-b:7443");
  auto commas = Parse(absl::StrCat("policy:\n  control_plane:\n"
                                   "    address: wc-a:7443, wc-b:7443\n",
                                   rest, kMainListener, kProdEnv));
  ASSERT_TRUE(commas.ok()) << commas.status();
  EXPECT_EQ(commas->policy.control_plane->address, "wc-a:7443, wc-b:7443");
  // Each one must be host:port.
  EXPECT_THAT(Errors(Parse(absl::StrCat("policy:\n  control_plane:\n"
                                        "    address: [wc-a:7443, wc-b]\n",
                                        rest, kMainListener, kProdEnv))),
              ElementsAre(HasSubstr("'wc-b' is not host:port")));
  EXPECT_THAT(Errors(Parse(absl::StrCat("policy:\n  control_plane:\n"
                                        "    address: \", \"\n",
                                        rest, kMainListener, kProdEnv))),
              ElementsAre(HasSubstr("policy.control_plane.address")));
}

TEST(ConfigTest, WatchSilenceTimeout) {
  const std::string head =
      "policy:\n"
      "  control_plane: {address: a:1, ca_file: c, trusted_keys: [k], "
      "state_dir: s, watch_silence_timeout: ";
  auto cfg = Parse(absl::StrCat(head, "6s}\n", kMainListener, kProdEnv));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->policy.control_plane->watch_silence_timeout_ms, 6000);
  EXPECT_THAT(Errors(Parse(absl::StrCat(head, "500ms}\n", kMainListener,
                                        kProdEnv))),
              ElementsAre(HasSubstr(
                  "policy.control_plane.watch_silence_timeout: expected at "
                  "least 1s")));
  EXPECT_THAT(Errors(Parse(absl::StrCat(head, "11m}\n", kMainListener,
                                        kProdEnv))),
              ElementsAre(HasSubstr("policy.control_plane."
                                    "watch_silence_timeout: expected a "
                                    "duration")));
}

TEST(ConfigTest, ControlPlaneErrors) {
  EXPECT_THAT(
      Errors(Parse(absl::StrCat("policy:\n"
                                "  paths: [p]\n"
                                "  control_plane: {address: a:1, ca_file: c, "
                                "trusted_keys: [k], state_dir: s}\n",
                                kMainListener, kProdEnv))),
      ElementsAre(HasSubstr("proxy.yaml:2:10: policy.paths: give either paths "
                            "or control_plane, not both")));
  EXPECT_THAT(
      Errors(Parse(absl::StrCat("policy:\n"
                                "  control_plane: {address: a:1, ca_file: c, "
                                "state_dir: s}\n",
                                kMainListener, kProdEnv))),
      ElementsAre(HasSubstr("policy.control_plane.trusted_keys: expected a "
                            "non-empty list")));
  EXPECT_THAT(
      Errors(Parse(absl::StrCat("policy:\n"
                                "  control_plane: {address: a:1, "
                                "trusted_keys: [k], state_dir: s}\n",
                                kMainListener, kProdEnv))),
      ElementsAre(HasSubstr("ca_file")));
}

}  // namespace
}  // namespace warden::dataplane::config
