// Tokens and the state machine behind them, on real RocksDB folders.
#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::controlplane {
namespace {

using ::testing::HasSubstr;
using warden::v1::TOKEN_SCOPE_ADMIN;
using warden::v1::TOKEN_SCOPE_AUDIT_READ;
using warden::v1::TOKEN_SCOPE_POLICY_READ;
using warden::v1::TOKEN_SCOPE_POLICY_WRITE;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);

// A control plane's state on disk: log + store, reopenable.
class Node {
 public:
  explicit Node(const std::string& dir) : dir_(dir) { Open(); }
  void Open() {
    auto log = log::RocksDbLog::Open(dir_ + "/log");
    auto store = store::Store::Open(dir_ + "/state");
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE(store.ok()) << store.status();
    log_ = std::move(*log);
    store_ = std::move(*store);
    state_ = std::make_unique<state::StateMachine>(log_.get(), store_.get());
    ASSERT_TRUE(state_->CatchUp().ok());
    tokens_ = std::make_unique<tokens::Tokens>(state_.get(), store_.get());
  }
  void Close() {
    tokens_.reset();
    state_.reset();
    store_.reset();
    log_.reset();
  }
  tokens::Tokens& tokens() { return *tokens_; }
  log::RocksDbLog& log() { return *log_; }
  store::Store& store() { return *store_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::unique_ptr<log::RocksDbLog> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<state::StateMachine> state_;
  std::unique_ptr<tokens::Tokens> tokens_;
};

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "/tokens_" + info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(TokensTest, CreatedTokenAuthenticatesWithItsScopes) {
  Node node(FreshDir());
  auto created = node.tokens().Create("ci-main", {TOKEN_SCOPE_POLICY_WRITE},
                                      absl::ZeroDuration(), "admin", kNow);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(created->token, ::testing::MatchesRegex("wdn_[0-9a-f]{16}_[0-9a-f]{64}"));
  EXPECT_EQ(created->info.id(), "tok_" + created->token.substr(4, 16));
  auto info = node.tokens().Authenticate(created->token, kNow);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), "ci-main");
  EXPECT_EQ(info->created_by(), "admin");
  EXPECT_TRUE(tokens::Tokens::HasScope(*info, TOKEN_SCOPE_POLICY_WRITE));
  EXPECT_FALSE(tokens::Tokens::HasScope(*info, TOKEN_SCOPE_AUDIT_READ));
  auto admin = node.tokens().Create("root", {TOKEN_SCOPE_ADMIN},
                                    absl::ZeroDuration(), "bootstrap", kNow);
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(tokens::Tokens::HasScope(admin->info, TOKEN_SCOPE_AUDIT_READ));
}

TEST(TokensTest, OnlyTheHashOfTheSecretIsStored) {
  Node node(FreshDir());
  auto created = node.tokens().Create("t", {TOKEN_SCOPE_POLICY_READ},
                                      absl::ZeroDuration(), "a", kNow);
  ASSERT_TRUE(created.ok());
  const std::string secret = created->token.substr(4 + 16 + 1);
  auto rows = node.store().Scan(store::Column::kTokens, "");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].value.find(secret), std::string::npos);
  auto entries = node.log().Read(1, 10);
  ASSERT_TRUE(entries.ok());
  for (const auto& e : *entries) {
    EXPECT_EQ(e.data.find(secret), std::string::npos);
  }
}

TEST(TokensTest, RefusalsSayWhy) {
  Node node(FreshDir());
  auto created = node.tokens().Create("short", {TOKEN_SCOPE_POLICY_READ},
                                      absl::Hours(1), "a", kNow);
  ASSERT_TRUE(created.ok());
  std::string wrong = created->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  struct Case {
    std::string token;
    absl::Time at;
    const char* reason;
  };
  const Case cases[] = {
      {"Bearer nonsense", kNow, "malformed"},
      {"wdn_0123456789abcdef_" + std::string(64, 'a'), kNow, "unknown token"},
      {wrong, kNow, "wrong secret"},
      {created->token, kNow + absl::Hours(2), "has expired"},
  };
  for (const Case& c : cases) {
    auto r = node.tokens().Authenticate(c.token, c.at);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << c.reason;
    EXPECT_THAT(r.status().message(), HasSubstr(c.reason));
  }
  EXPECT_TRUE(node.tokens().Authenticate(created->token, kNow).ok());
}

TEST(TokensTest, RevokedTokensStopWorkingAndRevokeIsIdempotent) {
  Node node(FreshDir());
  auto created = node.tokens().Create("laptop", {TOKEN_SCOPE_POLICY_READ},
                                      absl::ZeroDuration(), "a", kNow);
  ASSERT_TRUE(created.ok());
  auto revoked = node.tokens().Revoke(created->info.id(), kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->has_revoked_at());
  auto again = node.tokens().Revoke(created->info.id(), kNow + absl::Hours(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked_at().seconds(), revoked->revoked_at().seconds());
  auto r = node.tokens().Authenticate(created->token, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(r.status().message(), HasSubstr("was revoked"));
  EXPECT_EQ(node.tokens().Revoke("tok_nope", kNow).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TokensTest, ListHidesInactiveUnlessAsked) {
  Node node(FreshDir());
  auto a = node.tokens().Create("a", {TOKEN_SCOPE_POLICY_READ},
                                absl::ZeroDuration(), "x", kNow);
  auto b = node.tokens().Create("b", {TOKEN_SCOPE_POLICY_READ}, absl::Minutes(1),
                                "x", kNow + absl::Seconds(1));
  auto c = node.tokens().Create("c", {TOKEN_SCOPE_POLICY_READ},
                                absl::ZeroDuration(), "x", kNow + absl::Seconds(2));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(node.tokens().Revoke(c->info.id(), kNow).ok());
  auto active = node.tokens().List(false, kNow + absl::Hours(1));
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].name(), "a");
  auto all = node.tokens().List(true, kNow + absl::Hours(1));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name(), "a");
  EXPECT_EQ((*all)[2].name(), "c");
}

TEST(TokensTest, BadRequestsAreRefused) {
  Node node(FreshDir());
  EXPECT_EQ(node.tokens()
                .Create("", {TOKEN_SCOPE_POLICY_READ}, absl::ZeroDuration(), "x", kNow)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(node.tokens().Create("n", {}, absl::ZeroDuration(), "x", kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(node.tokens()
                .Create("n", {warden::v1::TOKEN_SCOPE_UNSPECIFIED},
                        absl::ZeroDuration(), "x", kNow)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokensTest, ServiceTokensAreScopedHashedAndGrantNoApi) {
  Node node(FreshDir());
  auto created = node.tokens().CreateService(
      "support-bot", "agent", {"prod"}, {"shop"}, {"support"}, absl::Hours(1),
      "admin", kNow);
  ASSERT_TRUE(created.ok()) << created.status();
  const auto& info = created->info;
  EXPECT_EQ(info.kind(), "agent");
  ASSERT_EQ(info.scopes_size(), 1);
  EXPECT_EQ(info.scopes(0), warden::v1::TOKEN_SCOPE_DATABASE_CONNECT);
  // Not an API token: no scope, and admin does not imply db:connect.
  EXPECT_FALSE(tokens::Tokens::HasScope(info, TOKEN_SCOPE_POLICY_READ));
  warden::v1::TokenInfo admin;
  admin.add_scopes(TOKEN_SCOPE_ADMIN);
  EXPECT_FALSE(tokens::Tokens::HasScope(
      admin, warden::v1::TOKEN_SCOPE_DATABASE_CONNECT));
  // What bundles carry: the hash, never the secret.
  auto listed = node.tokens().ServiceTokens(kNow);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const auto& t = (*listed)[0];
  EXPECT_EQ(t.id(), info.id());
  EXPECT_EQ(t.name(), "support-bot");
  EXPECT_EQ(t.secret_sha256().size(), 64u);
  EXPECT_EQ(created->token.find(t.secret_sha256()), std::string::npos);
  EXPECT_EQ(t.environments(0), "prod");
  EXPECT_EQ(t.databases(0), "shop");
  EXPECT_EQ(t.groups(0), "support");
  EXPECT_EQ(t.expires_at_unix(), absl::ToUnixSeconds(kNow + absl::Hours(1)));
  // Revoked or expired tokens leave the list; API tokens are never in it.
  ASSERT_TRUE(node.tokens()
                  .Create("ci", {TOKEN_SCOPE_POLICY_WRITE}, absl::ZeroDuration(),
                          "admin", kNow)
                  .ok());
  EXPECT_EQ(node.tokens().ServiceTokens(kNow + absl::Hours(2))->size(), 0u);
  ASSERT_TRUE(node.tokens().Revoke(info.id(), kNow).ok());
  EXPECT_EQ(node.tokens().ServiceTokens(kNow)->size(), 0u);

  // Refusals say why.
  EXPECT_THAT(std::string(node.tokens()
                              .CreateService("bot", "robot", {"prod"}, {}, {},
                                             absl::ZeroDuration(), "a", kNow)
                              .status()
                              .message()),
              HasSubstr("agent or service"));
  EXPECT_THAT(std::string(node.tokens()
                              .CreateService("bot", "agent", {}, {}, {},
                                             absl::ZeroDuration(), "a", kNow)
                              .status()
                              .message()),
              HasSubstr("names the environments"));
  EXPECT_FALSE(node.tokens()
                   .CreateService("bad name!", "agent", {"prod"}, {}, {},
                                  absl::ZeroDuration(), "a", kNow)
                   .ok());
  EXPECT_THAT(std::string(node.tokens()
                              .Create("x", {warden::v1::TOKEN_SCOPE_DATABASE_CONNECT},
                                      absl::ZeroDuration(), "a", kNow)
                              .status()
                              .message()),
              HasSubstr("db:connect is the scope of service tokens"));
}

TEST(StateMachineTest, StateSurvivesRestartAndEveryChangeIsALogEntry) {
  const std::string dir = FreshDir();
  std::string token;
  {
    Node node(dir);
    auto created = node.tokens().Create("keep", {TOKEN_SCOPE_POLICY_READ},
                                        absl::ZeroDuration(), "x", kNow);
    ASSERT_TRUE(created.ok());
    token = created->token;
    ASSERT_TRUE(node.tokens().Revoke(created->info.id(), kNow).ok());
    EXPECT_EQ(node.log().LastIndex(), 2u);
    EXPECT_EQ(node.store().applied_index(), 2u);
  }
  Node node(dir);
  auto r = node.tokens().Authenticate(token, kNow);
  EXPECT_THAT(r.status().message(), HasSubstr("was revoked"));
}

TEST(StateMachineTest, CatchUpAppliesWhatTheLogHasAndTheStoreLacks) {
  const std::string dir = FreshDir();
  std::string token;
  {
    Node node(dir);
    auto created = node.tokens().Create("late", {TOKEN_SCOPE_POLICY_READ},
                                        absl::ZeroDuration(), "x", kNow);
    ASSERT_TRUE(created.ok());
    token = created->token;
  }
  // A crash between the log append and the store apply: the log has the
  // entry, a fresh store does not.
  std::filesystem::remove_all(dir + "/state");
  Node node(dir);  // Open() runs CatchUp.
  EXPECT_EQ(node.store().applied_index(), 1u);
  EXPECT_TRUE(node.tokens().Authenticate(token, kNow).ok());
}

TEST(StateMachineTest, AnEntryLoggedButNotAppliedLandsBeforeTheNextCommit) {
  Node node(FreshDir());
  // As if the store write failed after the log append: the log has entry 1,
  // the store does not.
  warden::v1::LogEntry lost;
  lost.mutable_put_token()->mutable_info()->set_id("tok_lost");
  ASSERT_TRUE(node.log().Append(lost.SerializeAsString()).ok());
  EXPECT_EQ(node.store().applied_index(), 0u);
  auto next = node.tokens().Create("next", {TOKEN_SCOPE_POLICY_READ},
                                   absl::ZeroDuration(), "x", kNow);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(node.store().applied_index(), 2u);
  EXPECT_TRUE(node.store().Get(store::Column::kTokens, "tok/tok_lost").ok());
}

TEST(StateMachineTest, StoreAheadOfTheLogIsDataLoss) {
  const std::string dir = FreshDir();
  {
    Node node(dir);
    ASSERT_TRUE(node.tokens()
                    .Create("x", {TOKEN_SCOPE_POLICY_READ}, absl::ZeroDuration(),
                            "x", kNow)
                    .ok());
  }
  std::filesystem::remove_all(dir + "/log");
  auto log = log::RocksDbLog::Open(dir + "/log");
  auto store = store::Store::Open(dir + "/state");
  ASSERT_TRUE(log.ok() && store.ok());
  state::StateMachine machine(log->get(), store->get());
  const absl::Status s = machine.CatchUp();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("log ends at 0"));
}

}  // namespace
}  // namespace warden::controlplane
