// warden-control's gRPC services over a real gRPC server on loopback:
// push/history/rollback/bundle/tokens end to end, and the authorization
// matrix: every RPC against every kind of caller.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "tests/unit/controlplane_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/bundle/bundle.h"

namespace warden::controlplane {
namespace {

using ::testing::HasSubstr;
using warden::v1::TokenScope;

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
)";

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cp_ = std::make_unique<TestControlPlane>(
        std::string("services_") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(cp_->ok());
    log_ = cp_->log();
    tokens_ = cp_->tokens();
    bundles_ = cp_->bundles();
    auto channel = cp_->Channel();
    policy_ = warden::v1::PolicyService::NewStub(channel);
    token_rpc_ = warden::v1::TokenService::NewStub(channel);
  }

  std::string Mint(std::vector<TokenScope> scopes,
                   absl::Duration ttl = absl::ZeroDuration()) {
    return cp_->Mint(scopes, ttl);
  }
  static void Auth(grpc::ClientContext* ctx, const std::string& header) {
    if (!header.empty()) ctx->AddMetadata("authorization", header);
  }

  std::unique_ptr<TestControlPlane> cp_;
  log::RocksDbLog* log_ = nullptr;
  tokens::Tokens* tokens_ = nullptr;
  bundles::Bundles* bundles_ = nullptr;
  std::unique_ptr<warden::v1::PolicyService::Stub> policy_;
  std::unique_ptr<warden::v1::TokenService::Stub> token_rpc_;
};

TEST_F(ServicesTest, PushHistoryGetAndRollbackOverGrpc) {
  const std::string writer = "Bearer " + Mint({warden::v1::TOKEN_SCOPE_POLICY_WRITE,
                                               warden::v1::TOKEN_SCOPE_POLICY_READ});
  warden::v1::PushPolicyRequest push;
  auto* src = push.add_sources();
  src->set_name("prod.yaml");
  src->set_text(kPolicy);
  push.set_message("first");
  warden::v1::PushPolicyResponse pushed;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->PushPolicy(&ctx, push, &pushed).ok());
  }
  // Revisions are log indexes: minting the token above was index 1.
  const uint64_t first = pushed.revision();
  const std::string first_digest = pushed.digest();
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(log_->LastIndex(), first);
  EXPECT_TRUE(pushed.diagnostics().empty());

  // An invalid policy: OK with diagnostics, nothing committed.
  warden::v1::PushPolicyRequest bad = push;
  bad.mutable_sources(0)->set_text(std::string(kPolicy) + "    - nme: x\n");
  warden::v1::PushPolicyResponse rejected;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->PushPolicy(&ctx, bad, &rejected).ok());
  }
  EXPECT_EQ(rejected.revision(), 0u);
  ASSERT_FALSE(rejected.diagnostics().empty());
  EXPECT_EQ(rejected.diagnostics(0).file(), "prod.yaml");
  EXPECT_GT(rejected.diagnostics(0).line(), 0);

  warden::v1::GetBundleRequest get;
  get.set_include_sources(true);
  warden::v1::GetBundleResponse bundle;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->GetBundle(&ctx, get, &bundle).ok());
  }
  policy::bundle::TrustedKeys trusted;
  ASSERT_TRUE(policy::bundle::AddTrustedKey(cp_->key().public_pem, &trusted).ok());
  EXPECT_TRUE(policy::bundle::VerifyBundle(bundle.bundle(), trusted, 0).ok());
  EXPECT_EQ(bundle.bundle().created_by(), "token:t");
  ASSERT_EQ(bundle.sources_size(), 1);

  push.mutable_sources(0)->set_text(
      std::string(kPolicy).replace(std::string(kPolicy).find("DROP TABLE"), 10,
                                   "TRUNCATE TABLE"));
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->PushPolicy(&ctx, push, &pushed).ok());
  }
  const uint64_t second = pushed.revision();
  EXPECT_EQ(second, first + 1);
  warden::v1::RollbackRequest rb;
  rb.set_to_revision(first);
  warden::v1::RollbackResponse rolled;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->Rollback(&ctx, rb, &rolled).ok());
  }
  EXPECT_EQ(rolled.revision(), second + 1);
  warden::v1::ListHistoryRequest hist;
  hist.set_page_size(2);
  warden::v1::ListHistoryResponse page;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->ListHistory(&ctx, hist, &page).ok());
  }
  ASSERT_EQ(page.bundles_size(), 2);
  EXPECT_EQ(page.bundles(0).revision(), second + 1);
  EXPECT_EQ(page.bundles(0).rollback_of(), first);
  // History shows the content digest push printed (the rollback restores
  // the first revision's content).
  EXPECT_EQ(page.bundles(0).digest(), first_digest);
  EXPECT_EQ(page.next_before_revision(), second);
  hist.set_before_revision(page.next_before_revision());
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->ListHistory(&ctx, hist, &page).ok());
  }
  ASSERT_EQ(page.bundles_size(), 1);
  EXPECT_EQ(page.bundles(0).revision(), first);
  EXPECT_EQ(page.next_before_revision(), 0u);
}

TEST_F(ServicesTest, TokensOverGrpcAndRevocationTakesEffect) {
  const std::string admin = "Bearer " + Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  warden::v1::CreateTokenRequest create;
  create.set_name("ci-main");
  create.add_scopes(warden::v1::TOKEN_SCOPE_POLICY_READ);
  warden::v1::CreateTokenResponse created;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, admin);
    ASSERT_TRUE(token_rpc_->CreateToken(&ctx, create, &created).ok());
  }
  EXPECT_EQ(created.info().created_by(), "token:t");
  warden::v1::GetFleetStatusResponse fleet;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, "Bearer " + created.token());
    EXPECT_TRUE(policy_->GetFleetStatus(&ctx, {}, &fleet).ok());
  }
  warden::v1::RevokeTokenRequest revoke;
  revoke.set_id(created.info().id());
  warden::v1::RevokeTokenResponse revoked;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, admin);
    ASSERT_TRUE(token_rpc_->RevokeToken(&ctx, revoke, &revoked).ok());
  }
  grpc::ClientContext ctx;
  Auth(&ctx, "Bearer " + created.token());
  const grpc::Status s = policy_->GetFleetStatus(&ctx, {}, &fleet);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  warden::v1::ListTokensRequest list_all;
  list_all.set_include_inactive(true);
  warden::v1::ListTokensResponse listed;
  grpc::ClientContext list_ctx;
  Auth(&list_ctx, admin);
  ASSERT_TRUE(token_rpc_->ListTokens(&list_ctx, list_all, &listed).ok());
  EXPECT_EQ(listed.tokens_size(), 2);
}

// Every RPC x every kind of caller.
TEST_F(ServicesTest, AuthorizationMatrix) {
  using Call = std::function<grpc::Status(grpc::ClientContext*)>;
  struct Rpc {
    const char* method;
    Call call;
  };
  const std::vector<Rpc> rpcs = {
      {"/warden.v1.PolicyService/PushPolicy",
       [&](grpc::ClientContext* c) {
         warden::v1::PushPolicyRequest r;
         r.set_dry_run(true);
         auto* s = r.add_sources();
         s->set_name("p.yaml");
         s->set_text(kPolicy);
         warden::v1::PushPolicyResponse out;
         return policy_->PushPolicy(c, r, &out);
       }},
      {"/warden.v1.PolicyService/GetBundle",
       [&](grpc::ClientContext* c) {
         warden::v1::GetBundleResponse out;
         return policy_->GetBundle(c, {}, &out);
       }},
      {"/warden.v1.PolicyService/ListHistory",
       [&](grpc::ClientContext* c) {
         warden::v1::ListHistoryResponse out;
         return policy_->ListHistory(c, {}, &out);
       }},
      {"/warden.v1.PolicyService/Rollback",
       [&](grpc::ClientContext* c) {
         warden::v1::RollbackRequest r;
         r.set_to_revision(1);
         warden::v1::RollbackResponse out;
         return policy_->Rollback(c, r, &out);
       }},
      {"/warden.v1.PolicyService/GetFleetStatus",
       [&](grpc::ClientContext* c) {
         warden::v1::GetFleetStatusResponse out;
         return policy_->GetFleetStatus(c, {}, &out);
       }},
      {"/warden.v1.TokenService/CreateToken",
       [&](grpc::ClientContext* c) {
         warden::v1::CreateTokenRequest r;
         r.set_name("x");
         r.add_scopes(warden::v1::TOKEN_SCOPE_AUDIT_READ);
         warden::v1::CreateTokenResponse out;
         return token_rpc_->CreateToken(c, r, &out);
       }},
      {"/warden.v1.TokenService/ListTokens",
       [&](grpc::ClientContext* c) {
         warden::v1::ListTokensResponse out;
         return token_rpc_->ListTokens(c, {}, &out);
       }},
      {"/warden.v1.TokenService/RevokeToken",
       [&](grpc::ClientContext* c) {
         warden::v1::RevokeTokenRequest r;
         r.set_id("tok_0000000000000000");
         warden::v1::RevokeTokenResponse out;
         return token_rpc_->RevokeToken(c, r, &out);
       }},
  };
  // One push so that GetBundle/Rollback have something to act on: rollback
  // to it (revision 1) must pass authorization and succeed.
  auto first = bundles_->Push({{"p.yaml", kPolicy}}, "m", "t", absl::Now(), false);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->revision, 1u);

  const std::string revoked = Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  ASSERT_TRUE(tokens_->Revoke("tok_" + revoked.substr(4, 16), absl::Now()).ok());
  const std::string expired =
      Mint({warden::v1::TOKEN_SCOPE_ADMIN}, absl::Milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string audit_only = Mint({warden::v1::TOKEN_SCOPE_AUDIT_READ});

  struct Caller {
    const char* what;
    std::string header;
    grpc::StatusCode want;  // for every RPC
  };
  const Caller refused[] = {
      {"no credentials", "", grpc::StatusCode::UNAUTHENTICATED},
      {"not a bearer token", "Basic YWxpY2U6cHc=", grpc::StatusCode::UNAUTHENTICATED},
      {"malformed token", "Bearer hunter2", grpc::StatusCode::UNAUTHENTICATED},
      {"unknown token", "Bearer wdn_0123456789abcdef_" + std::string(64, '0'),
       grpc::StatusCode::UNAUTHENTICATED},
      {"revoked token", "Bearer " + revoked, grpc::StatusCode::UNAUTHENTICATED},
      {"expired token", "Bearer " + expired, grpc::StatusCode::UNAUTHENTICATED},
      {"wrong scope", "Bearer " + audit_only, grpc::StatusCode::PERMISSION_DENIED},
  };
  for (const Rpc& rpc : rpcs) {
    const TokenScope needed = server::RequiredScope(rpc.method);
    ASSERT_NE(needed, warden::v1::TOKEN_SCOPE_UNSPECIFIED) << rpc.method;
    for (const Caller& caller : refused) {
      grpc::ClientContext ctx;
      Auth(&ctx, caller.header);
      EXPECT_EQ(rpc.call(&ctx).error_code(), caller.want)
          << rpc.method << " with " << caller.what;
    }
    // The exact scope works; a token with only the other scopes does not.
    const std::string exact = "Bearer " + Mint({needed});
    grpc::ClientContext ok_ctx;
    Auth(&ok_ctx, exact);
    const grpc::Status ok = rpc.call(&ok_ctx);
    EXPECT_NE(ok.error_code(), grpc::StatusCode::UNAUTHENTICATED) << rpc.method;
    EXPECT_NE(ok.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << rpc.method << ": " << ok.error_message();
    std::vector<TokenScope> others;
    for (TokenScope s : {warden::v1::TOKEN_SCOPE_POLICY_WRITE,
                         warden::v1::TOKEN_SCOPE_POLICY_READ,
                         warden::v1::TOKEN_SCOPE_AUDIT_READ,
                         warden::v1::TOKEN_SCOPE_APPROVALS_DECIDE}) {
      if (s != needed) others.push_back(s);
    }
    grpc::ClientContext other_ctx;
    Auth(&other_ctx, "Bearer " + Mint(others));
    EXPECT_EQ(rpc.call(&other_ctx).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << rpc.method << " with every scope but " << needed;
  }
  EXPECT_EQ(server::RequiredScope("/warden.v1.PolicyService/Nope"),
            warden::v1::TOKEN_SCOPE_UNSPECIFIED);
}

}  // namespace
}  // namespace warden::controlplane
