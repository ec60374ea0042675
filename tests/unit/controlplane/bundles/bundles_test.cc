// Policy revisions on the control plane: compile, sign, commit, history,
// rollback, persistence; verified the way a proxy will verify them.
#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/crypto.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/bundle/bundle.h"
#include "policy/lang/compile.h"

namespace warden::controlplane {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);

std::string Policy(const std::string& name, const std::string& command) {
  return "apiVersion: warden/v1\nkind: Policy\nmetadata: { name: " + name +
         " }\nspec:\n  environments: [prod]\n  rules:\n    - name: r\n"
         "      match: { commands: [\"" + command +
         "\"] }\n      action: deny\n";
}

class BundlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "/bundles_" + info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto key = crypto::GenerateEd25519Key();
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
    ASSERT_TRUE(policy::bundle::AddTrustedKey(key_.public_pem, &trusted_).ok());
    Open();
  }
  void Open() {
    auto log = log::RocksDbLog::Open(dir_ + "/log");
    auto store = store::Store::Open(dir_ + "/state");
    ASSERT_TRUE(log.ok() && store.ok());
    log_ = std::move(*log);
    store_ = std::move(*store);
    state_ = std::make_unique<state::StateMachine>(log_.get(), store_.get());
    ASSERT_TRUE(state_->CatchUp().ok());
    bundles_ = std::make_unique<bundles::Bundles>(
        state_.get(), store_.get(), bundles::SigningKey{key_.private_pem});
  }
  void Close() {
    bundles_.reset();
    state_.reset();
    store_.reset();
    log_.reset();
  }
  absl::StatusOr<bundles::PushResult> Push(const std::string& text,
                                           bool dry_run = false) {
    return bundles_->Push({{"prod.yaml", text}}, "msg", "ci-main", kNow,
                          dry_run);
  }

  std::string dir_;
  crypto::Ed25519KeyPair key_;
  policy::bundle::TrustedKeys trusted_;
  std::unique_ptr<log::RocksDbLog> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<state::StateMachine> state_;
  std::unique_ptr<bundles::Bundles> bundles_;
};

TEST_F(BundlesTest, PushCompilesSignsAndCommitsARevisionProxiesCanVerify) {
  auto pushed = Push(Policy("guard", "DROP TABLE"));
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->revision, 1u);
  EXPECT_FALSE(pushed->unchanged);
  auto record = bundles_->Get(0);
  ASSERT_TRUE(record.ok()) << record.status();
  const auto& sb = record->signed_bundle();
  EXPECT_EQ(sb.revision(), 1u);
  EXPECT_EQ(sb.parent_revision(), 0u);
  EXPECT_EQ(sb.created_by(), "ci-main");
  EXPECT_EQ(sb.message(), "msg");
  ASSERT_EQ(record->sources_size(), 1);
  EXPECT_EQ(record->sources(0).name(), "prod.yaml");
  auto verified = policy::bundle::VerifyBundle(sb, trusted_, 0);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->policies(0).name(), "guard");
  EXPECT_EQ(verified->digest(), pushed->digest);
}

TEST_F(BundlesTest, InvalidPolicyIsRefusedWithDiagnosticsAndCommitsNothing) {
  std::vector<policy::lang::Diagnostic> diags;
  auto bad = bundles_->Push({{"prod.yaml", "apiVersion: warden/v1\nkind: Policy\n"
                                           "metadata: { name: x }\nspec: { rulez: [] }\n"}},
                            "m", "ci", kNow, false, &diags);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("prod.yaml:4:9: unknown key 'rulez'"));
  EXPECT_FALSE(diags.empty());
  EXPECT_EQ(log_->LastIndex(), 0u);
  EXPECT_EQ(*bundles_->Head(), 0u);
}

TEST_F(BundlesTest, DryRunAndUnchangedContentCommitNothing) {
  auto dry = Push(Policy("guard", "DROP TABLE"), /*dry_run=*/true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->revision, 0u);
  EXPECT_EQ(log_->LastIndex(), 0u);
  ASSERT_TRUE(Push(Policy("guard", "DROP TABLE")).ok());
  auto same = Push(Policy("guard", "DROP TABLE"));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->unchanged);
  EXPECT_EQ(same->revision, 1u);
  EXPECT_EQ(log_->LastIndex(), 1u);
}

TEST_F(BundlesTest, RevisionsChainAndRollbackRepublishesOldContent) {
  auto first = Push(Policy("guard", "DROP TABLE"));
  auto second = Push(Policy("guard", "TRUNCATE TABLE"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(second->revision, 2u);
  auto back = bundles_->Rollback(1, "", "oncall", kNow + absl::Minutes(5));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->revision, 3u);
  EXPECT_EQ(back->digest, first->digest);
  auto record = bundles_->Get(3);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->signed_bundle().parent_revision(), 2u);
  EXPECT_EQ(record->signed_bundle().rollback_of(), 1u);
  EXPECT_EQ(record->signed_bundle().message(), "rollback to revision 1");
  // A proxy running revision 2 accepts 3 (higher) and gets rev 1's content.
  auto verified =
      policy::bundle::VerifyBundle(record->signed_bundle(), trusted_, 2);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->digest(), first->digest);
  auto history = bundles_->History(10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].signed_bundle().revision(), 3u);
  EXPECT_EQ((*history)[2].signed_bundle().revision(), 1u);
  EXPECT_EQ(bundles_->History(1)->size(), 1u);
  EXPECT_EQ(bundles_->Rollback(9, "", "x", kNow).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BundlesTest, HeadAndHistorySurviveRestartAndRevisionsKeepGrowing) {
  ASSERT_TRUE(Push(Policy("guard", "DROP TABLE")).ok());
  Close();
  Open();
  EXPECT_EQ(*bundles_->Head(), 1u);
  auto next = Push(Policy("guard", "TRUNCATE TABLE"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->revision, 2u);
}

TEST_F(BundlesTest, RevisionsAreLogIndexesSharedWithOtherChanges) {
  warden::v1::LogEntry token;
  token.mutable_put_token()->mutable_info()->set_id("tok_1");
  ASSERT_TRUE(state_->Commit(token).ok());  // index 1
  auto pushed = Push(Policy("guard", "DROP TABLE"));
  ASSERT_TRUE(pushed.ok());
  EXPECT_EQ(pushed->revision, 2u);
  EXPECT_TRUE(policy::bundle::VerifyBundle(bundles_->Get(2)->signed_bundle(),
                                           trusted_, 0)
                  .ok());
}

constexpr char kIdp[] = R"(apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: corp }
spec:
  issuer: https://idp.example.com
  audiences: [warden]
)";

TEST_F(BundlesTest, IdentityProvidersNeedTheirKeysFetched) {
  // No way to fetch: the push is refused, nothing committed.
  auto refused = bundles_->Push({{"prod.yaml", Policy("guard", "DROP TABLE")},
                                 {"idp.yaml", kIdp}},
                                "msg", "ci-main", kNow, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*bundles_->Head(), 0u);

  // A fetch that fails refuses the push with the provider's error.
  bundles_->SetKeyResolver([](warden::v1::PolicyBundle*) {
    return absl::UnavailableError("identity provider corp: discovery: down");
  });
  refused = bundles_->Push({{"prod.yaml", Policy("guard", "DROP TABLE")},
                            {"idp.yaml", kIdp}},
                           "msg", "ci-main", kNow, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("corp: discovery: down"));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("push is refused"));

  // Keys as the resolver finds them go into the signed bundle.
  std::string keys = R"({"keys":[1]})";
  bundles_->SetKeyResolver([&keys](warden::v1::PolicyBundle* b) {
    for (auto& idp : *b->mutable_identity_providers()) idp.set_jwks(keys);
    b->set_digest(policy::lang::ContentDigest(*b));
    return absl::OkStatus();
  });
  auto pushed = bundles_->Push({{"prod.yaml", Policy("guard", "DROP TABLE")},
                                {"idp.yaml", kIdp}},
                               "msg", "ci-main", kNow, false);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto head = bundles_->Get(0);
  ASSERT_TRUE(head.ok());
  auto verified = policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok()) << verified.status();
  ASSERT_EQ(verified->identity_providers_size(), 1);
  EXPECT_EQ(verified->identity_providers(0).jwks(), keys);
  EXPECT_EQ(verified->identity_providers(0).issuer(), "https://idp.example.com");

  // Refresh: same keys, nothing new; changed keys, a new revision with the
  // same policies, saying why.
  auto same = bundles_->RefreshKeys("warden-control", kNow);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->unchanged);
  EXPECT_EQ(*bundles_->Head(), pushed->revision);
  keys = R"({"keys":[2]})";
  auto rotated = bundles_->RefreshKeys("warden-control", kNow);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_FALSE(rotated->unchanged);
  EXPECT_GT(rotated->revision, pushed->revision);
  head = bundles_->Get(0);
  EXPECT_THAT(head->signed_bundle().message(),
              HasSubstr("identity provider keys changed (corp)"));
  EXPECT_EQ(head->signed_bundle().created_by(), "warden-control");
  EXPECT_EQ(head->sources_size(), 2);
  verified = policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->identity_providers(0).jwks(), keys);
  EXPECT_EQ(verified->policies_size(), 1);
}

TEST_F(BundlesTest, ServiceTokensTravelInEveryRevisionAndRollbackKeepsTheCurrentOnes) {
  std::vector<warden::v1::ServiceToken> active;
  bundles_->SetServiceTokens(
      [&active]() -> absl::StatusOr<std::vector<warden::v1::ServiceToken>> {
        return active;
      });
  warden::v1::ServiceToken bot;
  bot.set_id("tok_1");
  bot.set_name("support-bot");
  bot.set_secret_sha256(std::string(64, 'a'));
  active.push_back(bot);
  auto first = Push(Policy("guard", "DROP TABLE"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto head = bundles_->Get(0);
  auto verified = policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok());
  ASSERT_EQ(verified->service_tokens_size(), 1);
  EXPECT_EQ(verified->service_tokens(0).name(), "support-bot");

  // Nothing changed: no revision. Revoked: a new revision without it.
  EXPECT_TRUE(bundles_->RefreshIdentities("warden-control", kNow)->unchanged);
  active.clear();
  auto revoked = bundles_->RefreshIdentities("warden-control", kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_FALSE(revoked->unchanged);
  head = bundles_->Get(0);
  EXPECT_THAT(head->signed_bundle().message(),
              HasSubstr("service tokens changed"));
  verified = policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->service_tokens_size(), 0);
  EXPECT_EQ(verified->policies_size(), 1);

  // Rolling back to the first revision restores its policies, not the
  // token revoked since.
  auto rolled = bundles_->Rollback(first->revision, "", "ci-main", kNow);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  head = bundles_->Get(0);
  verified = policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->service_tokens_size(), 0);
}

// A rollback never brings back keys an identity provider retired since
// (issue 14): the revision's policies with the provider's current keys;
// a provider that cannot be reached refuses the rollback.
TEST_F(BundlesTest, ARollbackFetchesTheProvidersKeysAgain) {
  std::string keys = R"({"keys":["old"]})";
  bool reachable = true;
  bundles_->SetKeyResolver([&](warden::v1::PolicyBundle* b) {
    if (!reachable) return absl::UnavailableError("corp: discovery: down");
    for (auto& idp : *b->mutable_identity_providers()) idp.set_jwks(keys);
    b->set_digest(policy::lang::ContentDigest(*b));
    return absl::OkStatus();
  });
  auto first = bundles_->Push({{"prod.yaml", Policy("guard", "DROP TABLE")},
                               {"idp.yaml", kIdp}},
                              "msg", "ci-main", kNow, false);
  ASSERT_TRUE(first.ok()) << first.status();
  keys = R"({"keys":["new"]})";  // the provider retired "old"
  ASSERT_TRUE(bundles_->Push({{"prod.yaml", Policy("guard", "TRUNCATE TABLE")},
                              {"idp.yaml", kIdp}},
                             "msg", "ci-main", kNow, false)
                  .ok());
  reachable = false;
  auto refused = bundles_->Rollback(first->revision, "", "admin", kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("rollback is refused"));
  reachable = true;
  auto rolled = bundles_->Rollback(first->revision, "", "admin", kNow);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  auto head = bundles_->Get(0);
  ASSERT_TRUE(head.ok());
  auto verified =
      policy::bundle::VerifyBundle(head->signed_bundle(), trusted_, 0);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->policies(0).rules(0).match().commands(0), "DROP TABLE");
  EXPECT_EQ(verified->identity_providers(0).jwks(), keys);
}

TEST_F(BundlesTest, AKeyRefreshNeverOverwritesAPushMadeWhileItFetched) {
  std::string keys = R"({"keys":[1]})";
  bundles_->SetKeyResolver([&keys](warden::v1::PolicyBundle* b) {
    for (auto& idp : *b->mutable_identity_providers()) idp.set_jwks(keys);
    b->set_digest(policy::lang::ContentDigest(*b));
    return absl::OkStatus();
  });
  ASSERT_TRUE(bundles_
                  ->Push({{"prod.yaml", Policy("guard", "DROP TABLE")},
                          {"idp.yaml", kIdp}},
                         "msg", "ci-main", kNow, false)
                  .ok());
  // While the refresh fetches (new keys), CI pushes new policies.
  uint64_t pushed = 0;
  bundles_->SetKeyResolver([&](warden::v1::PolicyBundle* b) {
    auto p = Push(Policy("guard", "TRUNCATE TABLE"));
    EXPECT_TRUE(p.ok()) << p.status();
    pushed = p.ok() ? p->revision : 0;
    for (auto& idp : *b->mutable_identity_providers()) {
      idp.set_jwks(R"({"keys":[2]})");
    }
    b->set_digest(policy::lang::ContentDigest(*b));
    return absl::OkStatus();
  });
  auto refreshed = bundles_->RefreshKeys("warden-control", kNow);
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_TRUE(refreshed->unchanged);
  EXPECT_EQ(*bundles_->Head(), pushed) << "the push stays the head";
  auto head = bundles_->Get(0);
  warden::v1::PolicyBundle bundle;
  ASSERT_TRUE(bundle.ParseFromString(head->signed_bundle().bundle()));
  EXPECT_EQ(bundle.policies(0).rules(0).match().commands(0), "TRUNCATE TABLE");
}

}  // namespace
}  // namespace warden::controlplane
