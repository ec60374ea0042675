// wardenctl's remote commands against the real warden-control services
// (RocksDB log and store, tokens, signed bundles) on a loopback gRPC server
// in this process: outputs and exit codes as CI sees them.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/x509.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/cli/remote_audit.h"
#include "controlplane/cli/remote_common.h"
#include "controlplane/cli/remote_identities.h"
#include "controlplane/cli/remote_policy.h"
#include "controlplane/cli/remote_tokens.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/lang/sources.h"
#include "tests/unit/controlplane/controlplane_fixture.h"

namespace warden::controlplane::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using warden::v1::TokenScope;

constexpr char kGuard[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
    - name: no-truncate
      match: { commands: [TRUNCATE TABLE] }
      action: deny
)";

// kGuard with no-drop changed, no-truncate removed, no-alter-system added,
// and a new policy.
constexpr char kGuardChanged[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: use a migration
    - name: no-alter-system
      match: { commands: [ALTER SYSTEM] }
      action: deny
)";
constexpr char kExtra[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: extra }
spec:
  rules:
    - name: no-copy-program
      match: { copy: [program] }
      action: deny
)";

struct Result {
  int code;
  std::string out;
  std::string err;
};

class WardenctlRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cp_ = std::make_unique<TestControlPlane>(
        std::string("wardenctl_remote_") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(cp_->ok());
    dir_ = cp_->dir();
    std::filesystem::create_directories(dir_ + "/policies");
    log_ = cp_->log();
    tokens_ = cp_->tokens();
    server_address_ = cp_->address();
    writer_ = Mint({warden::v1::TOKEN_SCOPE_POLICY_WRITE,
                    warden::v1::TOKEN_SCOPE_POLICY_READ});
    admin_ = Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  }

  std::string Mint(std::vector<TokenScope> scopes) {
    return cp_->Mint(scopes);
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/policies/" + name) << text;
  }

  // Options aimed at the test server with `token`.
  template <typename Options>
  Options With(const std::string& token, Format format = Format::kText) {
    Options o;
    o.connection.server = server_address_;
    o.connection.ca_file = cp_->ca_file();
    o.connection.token = token;
    o.connection.timeout = "5s";
    o.format = format;
    return o;
  }

  template <typename Options, typename Fn>
  static Result Run(Fn fn, const Options& options) {
    std::ostringstream out, err;
    const int code = fn(options, out, err);
    return {code, out.str(), err.str()};
  }

  Result Push(const std::string& message = "", bool dry_run = false,
              Format format = Format::kText) {
    auto o = With<PushOptions>(writer_, format);
    o.paths = {dir_ + "/policies"};
    o.message = message;
    o.dry_run = dry_run;
    return Run(RunPush, o);
  }

  Result Diff(Format format = Format::kText) {
    auto o = With<DiffOptions>(writer_, format);
    o.paths = {dir_ + "/policies"};
    return Run(RunDiff, o);
  }

  std::unique_ptr<TestControlPlane> cp_;
  std::string dir_;
  log::RocksDbLog* log_ = nullptr;
  tokens::Tokens* tokens_ = nullptr;
  std::string server_address_;
  std::string writer_;
  std::string admin_;
};

TEST_F(WardenctlRemoteTest, PushPrintsTheNewRevisionThenUnchanged) {
  Write("prod.yaml", kGuard);
  Result r = Push("first");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  // Two tokens minted in SetUp were log indexes 1 and 2.
  EXPECT_THAT(r.out, ContainsRegex("^revision 3 \\(digest [0-9a-f]{64}\\)\n$"));
  r = Push("again");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "unchanged at revision 3\n");
}

TEST_F(WardenctlRemoteTest, PushJson) {
  Write("prod.yaml", kGuard);
  const Result r = Push("m", false, Format::kJson);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["accepted"].get<bool>());
  EXPECT_EQ(j["revision"].get<uint64_t>(), 3u);
  EXPECT_EQ(j["digest"].get<std::string>().size(), 64u);
  EXPECT_TRUE(j["diagnostics"].empty());
}

TEST_F(WardenctlRemoteTest, InvalidPushExitsOneWithFileLineColumn) {
  Write("prod.yaml", std::string(kGuard) + "    - nme: x\n");
  Result r = Push();
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_EQ(r.out, "");
  // Relative to the directory given, not the absolute path.
  EXPECT_THAT(r.err, ContainsRegex("^prod\\.yaml:[0-9]+:[0-9]+: "));
  EXPECT_THAT(r.err, HasSubstr("rejected: "));
  r = Push("", false, Format::kJson);
  EXPECT_EQ(r.code, kExitFailed);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["accepted"].get<bool>());
  EXPECT_EQ(j["diagnostics"][0]["file"], "prod.yaml");
  EXPECT_GT(j["diagnostics"][0]["line"].get<int>(), 0);
}

TEST_F(WardenctlRemoteTest, DryRunCreatesNothing) {
  Write("prod.yaml", kGuard);
  const uint64_t before = log_->LastIndex();
  const Result r = Push("", true);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("^dry run: valid, digest [0-9a-f]{64}\n$"));
  EXPECT_EQ(log_->LastIndex(), before);
}

TEST_F(WardenctlRemoteTest, HistoryNewestFirstAndRollback) {
  // Revisions are log indexes; each push's audit record takes the index
  // after it: 3, 5, then the rollback 7.
  Write("prod.yaml", kGuard);
  ASSERT_EQ(Push("first").code, kExitOk);  // revision 3
  Write("prod.yaml", kGuardChanged);
  ASSERT_EQ(Push("second").code, kExitOk);  // revision 5

  auto rb = With<RollbackOptions>(writer_);
  rb.revision = 3;
  rb.message = "bad change";
  Result r = Run(RunRollback, rb);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("^revision 7 \\(digest [0-9a-f]{64}\\), "
                                   "rollback of 3\n$"));

  auto h = With<HistoryOptions>(writer_);
  r = Run(RunHistory, h);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  const size_t p5 = r.out.find("\n7 "), p4 = r.out.find("\n5 "),
               p3 = r.out.find("\n3 ");
  ASSERT_NE(p5, std::string::npos) << r.out;
  ASSERT_NE(p4, std::string::npos) << r.out;
  ASSERT_NE(p3, std::string::npos) << r.out;
  EXPECT_LT(p5, p4);
  EXPECT_LT(p4, p3);
  EXPECT_THAT(r.out, HasSubstr("rollback of 3: bad change"));
  EXPECT_THAT(r.out, HasSubstr("token:t"));

  // --limit pages through the history.
  h.limit = 2;
  h.format = Format::kJson;
  r = Run(RunHistory, h);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["revisions"].size(), 2u);
  EXPECT_EQ(j["revisions"][0]["revision"], 7);
  EXPECT_EQ(j["revisions"][0]["rollback_of"], 3);
  EXPECT_EQ(j["revisions"][1]["message"], "second");
  EXPECT_EQ(j["revisions"][1]["sources"][0], "prod.yaml");

  // Rolling back to a revision that does not exist: NOT_FOUND -> 1.
  rb.revision = 99;
  r = Run(RunRollback, rb);
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));
}

TEST_F(WardenctlRemoteTest, DiffRuleByRule) {
  Write("prod.yaml", kGuard);
  // Nothing pushed yet: everything is new, against revision 0.
  Result r = Diff();
  EXPECT_EQ(r.code, kExitDifferences) << r.err;
  EXPECT_EQ(r.out,
            "+ policy guard\n"
            "+ policy guard rule no-drop\n"
            "+ policy guard rule no-truncate\n"
            "3 changes against revision 0\n");

  ASSERT_EQ(Push().code, kExitOk);
  r = Diff();
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "no changes against revision 3\n");

  // A comment moves every rule down a line: not a change of what they do.
  Write("prod.yaml", "# moved\n" + std::string(kGuard));
  r = Diff();
  EXPECT_EQ(r.code, kExitOk) << r.out;

  Write("prod.yaml", kGuardChanged);
  Write("extra.yaml", kExtra);
  r = Diff();
  EXPECT_EQ(r.code, kExitDifferences) << r.err;
  EXPECT_EQ(r.out,
            "+ policy extra\n"
            "+ policy extra rule no-copy-program\n"
            "~ policy guard rule no-drop\n"
            "+ policy guard rule no-alter-system\n"
            "- policy guard rule no-truncate\n"
            "5 changes against revision 3\n");

  r = Diff(Format::kJson);
  EXPECT_EQ(r.code, kExitDifferences);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["revision"], 3);
  ASSERT_EQ(j["changes"].size(), 5u);
  EXPECT_EQ(j["changes"][2]["op"], "~");
  EXPECT_EQ(j["changes"][2]["policy"], "guard");
  EXPECT_EQ(j["changes"][2]["rule"], "no-drop");

  // Removing a policy file, and reordering rules.
  std::filesystem::remove(dir_ + "/policies/extra.yaml");
  const std::string swapped = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-truncate
      match: { commands: [TRUNCATE TABLE] }
      action: deny
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
)";
  Write("prod.yaml", swapped);
  r = Diff();
  EXPECT_EQ(r.code, kExitDifferences);
  EXPECT_EQ(r.out, "~ policy guard rule order\n1 change against revision 3\n");

  // Invalid local files: exit 1, nothing compared.
  Write("prod.yaml", std::string(kGuard) + "    - nme: x\n");
  r = Diff();
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, ContainsRegex("^prod\\.yaml:[0-9]+:[0-9]+: "));
}

TEST_F(WardenctlRemoteTest, StatusShowsCurrentRevisionAndNoProxies) {
  Write("prod.yaml", kGuard);
  ASSERT_EQ(Push().code, kExitOk);
  auto o = With<StatusOptions>(writer_);
  Result r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "current revision: 3\nno proxies connected\n");
  o.format = Format::kJson;
  r = Run(RunStatus, o);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["current_revision"], 3);
  EXPECT_TRUE(j["proxies"].empty());
}

TEST_F(WardenctlRemoteTest, TokensCreateListRevoke) {
  auto create = With<TokenCreateOptions>(admin_);
  create.name = "ci-main";
  create.scopes = {"policy:write", "policy:read"};
  Result r = Run(RunTokensCreate, create);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  // The secret alone on stdout, usable as $(wardenctl tokens create ...).
  EXPECT_THAT(r.out, ContainsRegex("^wdn_[^\n ]+\n$"));
  EXPECT_THAT(r.err, HasSubstr("shown only once"));
  const std::string secret = r.out.substr(0, r.out.size() - 1);

  // The new token works.
  Write("prod.yaml", kGuard);
  auto push = With<PushOptions>(secret);
  push.paths = {dir_ + "/policies"};
  EXPECT_EQ(Run(RunPush, push).code, kExitOk);

  create.name = "reader";
  create.scopes = {"audit:read"};
  create.format = Format::kJson;
  r = Run(RunTokensCreate, create);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_THAT(j["token"].get<std::string>(), StartsWith("wdn_"));
  const std::string id = j["info"]["id"];
  EXPECT_EQ(j["info"]["scopes"][0], "audit:read");
  EXPECT_FALSE(j["info"]["expires_at"].is_null());  // --ttl 720h default

  auto list = With<TokenListOptions>(admin_);
  r = Run(RunTokensList, list);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ci-main"));
  EXPECT_THAT(r.out, HasSubstr("policy:write,policy:read"));
  EXPECT_THAT(r.out, HasSubstr(id));

  auto revoke = With<TokenRevokeOptions>(admin_);
  revoke.id = id;
  r = Run(RunTokensRevoke, revoke);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "revoked " + id + " (reader)\n");

  r = Run(RunTokensList, list);
  EXPECT_THAT(r.out, Not(HasSubstr(id)));
  list.all = true;
  list.format = Format::kJson;
  r = Run(RunTokensList, list);
  j = nlohmann::json::parse(r.out);
  bool found = false;
  for (const auto& t : j["tokens"]) {
    if (t["id"] == id) {
      found = true;
      EXPECT_EQ(t["state"], "revoked");
    }
  }
  EXPECT_TRUE(found) << r.out;

  revoke.id = "tok_0000000000000000";
  r = Run(RunTokensRevoke, revoke);
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));

  create.scopes = {"policy:everything"};
  r = Run(RunTokensCreate, create);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown scope 'policy:everything'"));
}

TEST_F(WardenctlRemoteTest, NoTokenIsUnauthenticated) {
  auto o = With<StatusOptions>("");
  Result r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, StartsWith("error: UNAUTHENTICATED: "));
  o.format = Format::kJson;
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_EQ(nlohmann::json::parse(r.out)["error"]["code"], "UNAUTHENTICATED");
}

TEST_F(WardenctlRemoteTest, WrongScopeIsPermissionDenied) {
  Write("prod.yaml", kGuard);
  auto push = With<PushOptions>(Mint({warden::v1::TOKEN_SCOPE_POLICY_READ}));
  push.paths = {dir_ + "/policies"};
  Result r = Run(RunPush, push);
  EXPECT_EQ(r.code, kExitAuth);
  EXPECT_THAT(r.err, StartsWith("error: PERMISSION_DENIED: "));
  auto list = With<TokenListOptions>(writer_);
  EXPECT_EQ(Run(RunTokensList, list).code, kExitAuth);
}

TEST_F(WardenctlRemoteTest, ServerDownIsUnavailable) {
  // A port that was just free: bind, read it, close.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  auto o = With<StatusOptions>(writer_);
  o.connection.server = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const Result r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
}

// A cluster's replicas as one --server list: the first that answers.
TEST_F(WardenctlRemoteTest, SeveralReplicasTheFirstThatAnswersIsUsed) {
  // A port nothing listens on, and one that listens but never answers (a
  // stopped replica: the kernel completes TCP, TLS never does).
  auto bound = [](bool listening, int* fd_out) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    if (listening) {
      listen(fd, 16);
      *fd_out = fd;
    } else {
      close(fd);
    }
    return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  };
  int hung_fd = -1;
  const std::string dead = bound(false, nullptr);
  const std::string hung = bound(true, &hung_fd);
  ASSERT_GE(hung_fd, 0);

  auto o = With<StatusOptions>(writer_);
  o.connection.timeout = "2s";
  o.connection.server = dead + ", " + hung + "," + server_address_;
  Result r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no proxies connected"));

  // None answers: UNAVAILABLE, as with one server.
  o.connection.server = dead + "," + hung;
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUnavailable) << r.out;
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));

  // A list with no address at all is a usage error.
  o.connection.server = " , ,";
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no control plane address"));
  close(hung_fd);
}

TEST_F(WardenctlRemoteTest, AlwaysTlsAndClearConnectionErrors) {
  auto o = With<StatusOptions>(writer_);
  o.connection.ca_file.clear();
  Result r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no CA to verify the control plane with"));
  EXPECT_THAT(r.err, HasSubstr("--ca-file"));

  // A CA that did not issue the server's certificate: TLS fails, nothing
  // (no token) is sent.
  auto other_key = x509::GenerateKey();
  auto other = x509::MakeSelfSignedCa(*other_key, {"Other", {}, {}, {}},
                                      absl::Now(), absl::Hours(1));
  ASSERT_TRUE(other.ok());
  std::ofstream(dir_ + "/other-ca.pem") << *other;
  o = With<StatusOptions>(writer_);
  o.connection.ca_file = dir_ + "/other-ca.pem";
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));

  o.connection.server = "";
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("WARDEN_SERVER"));

  o.connection.server = server_address_;
  o.connection.timeout = "soon";
  EXPECT_EQ(Run(RunStatus, o).code, kExitUsage);

  o.connection.timeout = "5s";
  o.connection.server = "control.example.com:443";
  o.connection.ca_file = dir_ + "/missing-ca.pem";
  r = Run(RunStatus, o);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("cannot read CA file"));

}

// --- text outputs print what others wrote escaped (TerminalSafe) ----------

TEST(TerminalSafe, KeepsPrintableTextAsItIs) {
  EXPECT_EQ(TerminalSafe(""), "");
  EXPECT_EQ(TerminalSafe("alice@example.com: ALLOW SELECT 'x' -> 42501"),
            "alice@example.com: ALLOW SELECT 'x' -> 42501");
  // Printable Unicode, including right-to-left letters and emoji, stays.
  EXPECT_EQ(TerminalSafe(
                "Zoë 日本 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xF0\x9F\x98\x80"),
            "Zoë 日本 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xF0\x9F\x98\x80");
  // U+00A0 (the first code point after the C1 controls) and U+202F stay.
  EXPECT_EQ(TerminalSafe("a\xC2\xA0"
                         "b\xE2\x80\xAF"
                         "c"),
            "a\xC2\xA0"
            "b\xE2\x80\xAF"
            "c");
}

TEST(TerminalSafe, EscapesNewlinesTabsAndTheBackslashItself) {
  EXPECT_EQ(TerminalSafe("a\nb"), "a\\nb");
  EXPECT_EQ(TerminalSafe("a\rb"), "a\\rb");
  EXPECT_EQ(TerminalSafe("a\tb"), "a\\tb");
  // A backslash is doubled, so a written "\n" never reads as an escape.
  EXPECT_EQ(TerminalSafe("a\\nb"), "a\\\\nb");
  EXPECT_EQ(TerminalSafe("C:\\x"), "C:\\\\x");
}

TEST(TerminalSafe, EscapesEveryOtherC0ControlAndDel) {
  EXPECT_EQ(TerminalSafe(std::string("\0", 1)), "\\x00");
  EXPECT_EQ(TerminalSafe("\x1b[2J\x1b]0;title\x07"),
            "\\x1b[2J\\x1b]0;title\\x07");
  EXPECT_EQ(TerminalSafe("\x08\x0b\x0c\x1f"), "\\x08\\x0b\\x0c\\x1f");
  EXPECT_EQ(TerminalSafe("a\x7f"
                         "b"),
            "a\\x7fb");
  for (int c = 0; c < 0x20; ++c) {
    const std::string out = TerminalSafe(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(out[0], '\\') << c;
    EXPECT_EQ(out.find_first_of(std::string("\0\n\r\x1b", 4)),
              std::string::npos)
        << c;
  }
}

TEST(TerminalSafe, EscapesC1ControlsSeparatorsAndBidiControls) {
  EXPECT_EQ(TerminalSafe("\xC2\x80"), "\\u0080");
  EXPECT_EQ(TerminalSafe("\xC2\x85"), "\\u0085");  // NEL, a newline to some
  EXPECT_EQ(TerminalSafe("\xC2\x9B"
                         "31m"),
            "\\u009b31m");  // CSI
  EXPECT_EQ(TerminalSafe("\xC2\x9F"), "\\u009f");
  EXPECT_EQ(TerminalSafe("a\xE2\x80\xA8"
                         "b\xE2\x80\xA9"
                         "c"),
            "a\\u2028b\\u2029c");
  // Embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, marks.
  const struct {
    const char* utf8;
    const char* escaped;
  } kBidi[] = {{"\xE2\x80\xAA", "\\u202a"}, {"\xE2\x80\xAB", "\\u202b"},
               {"\xE2\x80\xAC", "\\u202c"}, {"\xE2\x80\xAD", "\\u202d"},
               {"\xE2\x80\xAE", "\\u202e"}, {"\xE2\x81\xA6", "\\u2066"},
               {"\xE2\x81\xA7", "\\u2067"}, {"\xE2\x81\xA8", "\\u2068"},
               {"\xE2\x81\xA9", "\\u2069"}, {"\xD8\x9C", "\\u061c"},
               {"\xE2\x80\x8E", "\\u200e"}, {"\xE2\x80\x8F", "\\u200f"}};
  for (const auto& b : kBidi) {
    EXPECT_EQ(TerminalSafe(absl::StrCat("x", b.utf8, "y")),
              absl::StrCat("x", b.escaped, "y"));
  }
  // "evil.sh" shown as "hs.live" by a right-to-left override is not.
  EXPECT_EQ(TerminalSafe("\xE2\x80\xAEhs.live"), "\\u202ehs.live");
}

// Red team: "zwsp<U+200B>alice@example.com" read as alice's line.
TEST(TerminalSafe, EscapesInvisibleCharacters) {
  const struct {
    const char* utf8;
    const char* escaped;
  } kInvisible[] = {
      {"\xE2\x80\x8B", "\\u200b"},  // ZERO WIDTH SPACE
      {"\xE2\x80\x8C", "\\u200c"},  // ZERO WIDTH NON-JOINER
      {"\xE2\x80\x8D", "\\u200d"},  // ZERO WIDTH JOINER
      {"\xE2\x81\xA0", "\\u2060"},  // WORD JOINER
      {"\xEF\xBB\xBF", "\\ufeff"},  // BYTE ORDER MARK
      {"\xC2\xAD", "\\u00ad"},       // SOFT HYPHEN
      {"\xEF\xB8\x8F", "\\ufe0f"},  // VARIATION SELECTOR-16
      {"\xE3\x85\xA4", "\\u3164"},  // HANGUL FILLER
  };
  for (const auto& c : kInvisible) {
    EXPECT_EQ(TerminalSafe(absl::StrCat("x", c.utf8, "alice")),
              absl::StrCat("x", c.escaped, "alice"));
  }
}

TEST(TerminalSafe, EscapesBytesThatAreNotUtf8) {
  EXPECT_EQ(TerminalSafe("a\xff"
                         "b"),
            "a\\xffb");
  EXPECT_EQ(TerminalSafe("\xC2"), "\\xc2");           // cut short
  EXPECT_EQ(TerminalSafe("\xC0\x8A"), "\\xc0\\x8a");  // overlong '\n'
  EXPECT_EQ(TerminalSafe("\xE0\x80\x8A"), "\\xe0\\x80\\x8a");
  EXPECT_EQ(TerminalSafe("\xED\xA0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(TerminalSafe("\xF4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  EXPECT_EQ(TerminalSafe("\x85"), "\\x85");  // a lone C1 byte (Latin-1 NEL)
}

TEST_F(WardenctlRemoteTest, AuditTailPrintsEveryEventOnOneLine) {
  // A proxy's events whose fields hold what clients sent: a user name with
  // a carriage return, a refusal naming an unverified issuer with a
  // newline that forges a following event, ESC sequences, a line
  // separator and a bidi override, and a statement over several lines.
  const std::string forged =
      "\n#99 2024-01-01T00:00:00.000Z prod/p1 #9 root: authentication ok "
      "(oidc:corp)";
  warden::v1::AppendAuditRequest request;
  auto* auth = request.add_events();
  auth->set_kind(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  auth->set_proxy_id("p1");
  auth->set_environment("prod");
  auth->set_sequence(1);
  auth->mutable_identity()->set_user("mallory\r\x1b[2K");
  auth->mutable_authentication()->set_success(false);
  auth->mutable_authentication()->set_method("oidc");
  auth->mutable_authentication()->set_reason(absl::StrCat(
      "token refused: unverified issuer \"https://evil.test", forged,
      "\x1b[31m\xE2\x80\xA8\xE2\x80\xAE\xC2\x85\" is not an identity "
      "provider of this listener"));
  auto* st = request.add_events();
  st->set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  st->set_proxy_id("p1");
  st->set_environment("prod");
  st->set_sequence(2);
  st->mutable_identity()->set_user("alice");
  st->mutable_statement()->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  st->mutable_statement()->set_decision(warden::v1::POLICY_ACTION_ALLOW);
  st->mutable_statement()->set_text("SELECT 1\n-- done\tok");
  warden::v1::AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());

  auto o = With<AuditTailOptions>(Mint({warden::v1::TOKEN_SCOPE_AUDIT_READ}));
  o.from = 0;
  Result r = Run(RunAuditTail, o);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_THAT(lines[0], StartsWith("#0 "));
  EXPECT_THAT(lines[0],
              HasSubstr("prod/p1 #1 mallory\\r\\x1b[2K: authentication FAILED "
                        "(oidc): token refused: unverified issuer "
                        "\"https://evil.test\\n#99 2024-01-01T00:00:00.000Z "
                        "prod/p1 #9 root: authentication ok (oidc:corp)"
                        "\\x1b[31m\\u2028\\u202e\\u0085\" is not an identity "
                        "provider of this listener"));
  EXPECT_THAT(lines[1], StartsWith("#1 "));
  EXPECT_THAT(lines[1], HasSubstr("prod/p1 #2 alice: ALLOW SELECT 1\\n-- "
                                  "done\\tok"));
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
  EXPECT_EQ(r.out.find("\xE2\x80\xA8"), std::string::npos);
  EXPECT_EQ(r.out.find("\xE2\x80\xAE"), std::string::npos);

  // `audit search` prints the same way; JSON keeps the exact value.
  o.search = true;
  o.users = {"alice"};
  r = Run(RunAuditTail, o);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("SELECT 1\\n-- done\\tok\n"));
  o.search = false;
  o.users.clear();
  o.format = Format::kJson;
  r = Run(RunAuditTail, o);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> json_lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(json_lines.size(), 2u) << r.out;
  EXPECT_EQ(
      nlohmann::json::parse(json_lines[0])["leaf"]["event"]["identity"]["user"],
      "mallory\r\x1b[2K");
}

TEST_F(WardenctlRemoteTest, ListsAndHistoryPrintWhatOthersWroteEscaped) {
  auto one_line = [](const std::string& text) {
    return std::count(text.begin(), text.end(), '\n');
  };
  // A directory user whose name carries a newline and ESC (deactivated by
  // name: any name is accepted, as for a user no provider announced).
  auto deactivate = With<IdentitiesSetActiveOptions>(admin_);
  deactivate.user = "eve\nroot active\x1b[8m";
  Result r = Run(RunIdentitiesSetActive, deactivate);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("deactivated eve\\nroot active\\x1b[8m"));
  EXPECT_EQ(one_line(r.out), 1) << r.out;
  auto list = With<IdentitiesListOptions>(admin_);
  r = Run(RunIdentitiesList, list);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("eve\\nroot active\\x1b[8m"));
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(one_line(r.out), 2) << r.out;  // header and eve

  // A push message that would forge a revision line in `policy history`.
  Write("prod.yaml", kGuard);
  auto push = With<PushOptions>(writer_);
  push.paths = {dir_ + "/policies"};
  push.message = "line one\n99       2024-01-01T00:00:00Z  ci  fake\x1b[0m";
  r = Run(RunPush, push);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto history = With<HistoryOptions>(writer_);
  r = Run(RunHistory, history);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("line one\\n99       2024-01-01T00:00:00Z  ci  "
                               "fake\\x1b[0m"));
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(one_line(r.out), 2) << r.out;  // header and the revision
}

TEST_F(WardenctlRemoteTest, SourceNamesRelativeToTheDirectory) {
  std::filesystem::create_directories(dir_ + "/policies/prod");
  Write("prod/a.yaml", kGuard);
  Write("b.yaml", kExtra);
  auto files = policy::lang::ReadSources({dir_ + "/policies/"});
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "b.yaml");
  EXPECT_EQ((*files)[1].name, "prod/a.yaml");
  // The same name from two places is refused rather than pushed twice.
  std::filesystem::create_directories(dir_ + "/other");
  std::ofstream(dir_ + "/other/b.yaml") << kExtra;
  files = policy::lang::ReadSources({dir_ + "/policies", dir_ + "/other"});
  EXPECT_FALSE(files.ok());
}

}  // namespace
}  // namespace warden::controlplane::cli
