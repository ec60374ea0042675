// wardenctl's remote commands against the real warden-control services
// (RocksDB log and store, tokens, signed bundles) on a loopback gRPC server
// in this process: outputs and exit codes as CI sees them.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/cli/remote_commands.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "tests/unit/controlplane_fixture.h"
#include "gmock/gmock.h"
#include "common/x509.h"
#include "gtest/gtest.h"

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

TEST_F(WardenctlRemoteTest, SourceNamesRelativeToTheDirectory) {
  std::filesystem::create_directories(dir_ + "/policies/prod");
  Write("prod/a.yaml", kGuard);
  Write("b.yaml", kExtra);
  auto files = ReadNamedSources({dir_ + "/policies/"});
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "b.yaml");
  EXPECT_EQ((*files)[1].name, "prod/a.yaml");
  // The same name from two places is refused rather than pushed twice.
  std::filesystem::create_directories(dir_ + "/other");
  std::ofstream(dir_ + "/other/b.yaml") << kExtra;
  files = ReadNamedSources({dir_ + "/policies", dir_ + "/other"});
  EXPECT_FALSE(files.ok());
}

}  // namespace
}  // namespace warden::controlplane::cli
