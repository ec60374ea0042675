// warden-control's gRPC services over a real gRPC server on loopback:
// push/history/rollback/bundle/tokens end to end, and the authorization
// matrix: every RPC against every kind of caller.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/x509.h"
#include "controlplane/ca/ca.h"
#include "proto/warden/v1/audit.grpc.pb.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "tests/unit/controlplane/controlplane_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "controlplane/audit/leaf.h"
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
  // Revisions are log indexes: minting the token above was index 1; the
  // push's audit record (controlplane/server AdminAudit) follows it.
  const uint64_t first = pushed.revision();
  const std::string first_digest = pushed.digest();
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(log_->LastIndex(), first + 1);
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
  EXPECT_GT(second, first);  // monotonic; other log entries may sit between
  warden::v1::RollbackRequest rb;
  rb.set_to_revision(first);
  warden::v1::RollbackResponse rolled;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->Rollback(&ctx, rb, &rolled).ok());
  }
  EXPECT_GT(rolled.revision(), second);
  warden::v1::ListHistoryRequest hist;
  hist.set_page_size(2);
  warden::v1::ListHistoryResponse page;
  {
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    ASSERT_TRUE(policy_->ListHistory(&ctx, hist, &page).ok());
  }
  ASSERT_EQ(page.bundles_size(), 2);
  EXPECT_EQ(page.bundles(0).revision(), rolled.revision());
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

// Every RPC x every kind of caller: bearer tokens (none, malformed,
// unknown, revoked, expired, used, wrong scope, exact scope) and client
// certificates (none, Warden's proxy certificate, expired, from another CA).
TEST_F(ServicesTest, AuthorizationMatrix) {
  using ChannelPtr = std::shared_ptr<grpc::Channel>;
  using Call = std::function<grpc::Status(grpc::ClientContext*, ChannelPtr)>;
  struct Rpc {
    const char* method;
    Call call;
  };
  auto csr = [] {
    auto key = x509::GenerateKey();
    return *x509::MakeRequest(*key, "p9");
  };
  std::string victim_id;  // a token RevokeToken revokes (set below).
  const std::vector<Rpc> token_rpcs = {
      {"/warden.v1.DirectoryService/ListIdentities",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::ListIdentitiesResponse out;
         return warden::v1::DirectoryService::NewStub(ch)->ListIdentities(
             c, {}, &out);
       }},
      {"/warden.v1.DirectoryService/SetIdentityActive",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::SetIdentityActiveRequest r;
         r.set_user_name("mallory@example.com");
         warden::v1::SetIdentityActiveResponse out;
         return warden::v1::DirectoryService::NewStub(ch)->SetIdentityActive(
             c, r, &out);
       }},
      {"/warden.v1.PolicyService/PushPolicy",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::PushPolicyRequest r;
         r.set_dry_run(true);
         auto* s = r.add_sources();
         s->set_name("p.yaml");
         s->set_text(kPolicy);
         warden::v1::PushPolicyResponse out;
         return warden::v1::PolicyService::NewStub(ch)->PushPolicy(c, r, &out);
       }},
      {"/warden.v1.PolicyService/GetBundle",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetBundleResponse out;
         return warden::v1::PolicyService::NewStub(ch)->GetBundle(c, {}, &out);
       }},
      {"/warden.v1.PolicyService/ListHistory",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::ListHistoryResponse out;
         return warden::v1::PolicyService::NewStub(ch)->ListHistory(c, {},
                                                                    &out);
       }},
      {"/warden.v1.PolicyService/Rollback",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::RollbackRequest r;
         r.set_to_revision(1);
         warden::v1::RollbackResponse out;
         return warden::v1::PolicyService::NewStub(ch)->Rollback(c, r, &out);
       }},
      {"/warden.v1.PolicyService/GetFleetStatus",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetFleetStatusResponse out;
         return warden::v1::PolicyService::NewStub(ch)->GetFleetStatus(c, {},
                                                                       &out);
       }},
      {"/warden.v1.TokenService/CreateToken",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::CreateTokenRequest r;
         r.set_name("x");
         r.add_scopes(warden::v1::TOKEN_SCOPE_AUDIT_READ);
         warden::v1::CreateTokenResponse out;
         return warden::v1::TokenService::NewStub(ch)->CreateToken(c, r, &out);
       }},
      {"/warden.v1.TokenService/ListTokens",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::ListTokensResponse out;
         return warden::v1::TokenService::NewStub(ch)->ListTokens(c, {}, &out);
       }},
      {"/warden.v1.TokenService/RevokeToken",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::RevokeTokenRequest r;
         r.set_id(victim_id);  // revoking is idempotent.
         warden::v1::RevokeTokenResponse out;
         return warden::v1::TokenService::NewStub(ch)->RevokeToken(c, r, &out);
       }},
      {"/warden.v1.AuditLog/GetCheckpoint",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetCheckpointResponse out;
         return warden::v1::AuditLog::NewStub(ch)->GetCheckpoint(c, {}, &out);
       }},
      {"/warden.v1.AuditLog/GetEntries",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetEntriesRequest r;
         r.set_end(10);
         warden::v1::GetEntriesResponse out;
         return warden::v1::AuditLog::NewStub(ch)->GetEntries(c, r, &out);
       }},
      {"/warden.v1.AuditLog/GetInclusionProof",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetInclusionProofRequest r;
         r.set_index(0);
         warden::v1::GetInclusionProofResponse out;
         return warden::v1::AuditLog::NewStub(ch)->GetInclusionProof(c, r, &out);
       }},
      {"/warden.v1.AuditLog/GetConsistencyProof",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::GetConsistencyProofRequest r;
         r.set_first_size(1);
         r.set_second_size(1);
         warden::v1::GetConsistencyProofResponse out;
         return warden::v1::AuditLog::NewStub(ch)->GetConsistencyProof(c, r,
                                                                       &out);
       }},
      {"/warden.v1.AuditExport/ListEvents",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::ListEventsResponse out;
         return warden::v1::AuditExport::NewStub(ch)->ListEvents(c, {}, &out);
       }},
      {"/warden.v1.AuditExport/Subscribe",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         auto stub = warden::v1::AuditExport::NewStub(ch);
         auto reader = stub->Subscribe(c, {});
         warden::v1::SubscribeResponse got;
         if (reader->Read(&got)) {  // the first checkpoint: authorized.
           c->TryCancel();
           reader->Finish();
           return grpc::Status::OK;
         }
         return reader->Finish();
       }},
      {"/warden.v1.ProxyEnrollment/Enroll",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::EnrollRequest r;
         r.set_csr_pem(csr());
         r.set_proxy_id("p9");
         warden::v1::EnrollResponse out;
         return warden::v1::ProxyEnrollment::NewStub(ch)->Enroll(c, r, &out);
       }},
      {"/warden.v1.ProxyEnrollment/ListProxies",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::ListProxiesResponse out;
         return warden::v1::ProxyEnrollment::NewStub(ch)->ListProxies(c, {},
                                                                     &out);
       }},
      {"/warden.v1.ProxyEnrollment/RevokeProxy",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::RevokeProxyRequest r;
         r.set_environment("prod");
         r.set_proxy_id("p8");  // has audit events (below)
         r.set_reason("matrix");
         warden::v1::RevokeProxyResponse out;
         return warden::v1::ProxyEnrollment::NewStub(ch)->RevokeProxy(c, r,
                                                                     &out);
       }},
  };
  // The calls proxies authenticate with their certificate instead.
  const std::vector<Rpc> certificate_rpcs = {
      {"/warden.v1.AuditIngest/Append",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::AppendAuditRequest r;  // empty: "what do you have?"
         warden::v1::AppendAuditResponse out;
         return warden::v1::AuditIngest::NewStub(ch)->Append(c, r, &out);
       }},
      {"/warden.v1.ProxyEnrollment/Renew",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         warden::v1::RenewRequest r;
         r.set_csr_pem(csr());
         warden::v1::EnrollResponse out;
         return warden::v1::ProxyEnrollment::NewStub(ch)->Renew(c, r, &out);
       }},
      {"/warden.v1.BundleDistribution/Watch",
       [&](grpc::ClientContext* c, ChannelPtr ch) {
         auto stub = warden::v1::BundleDistribution::NewStub(ch);
         auto stream = stub->Watch(c);
         warden::v1::WatchRequest hello;
         hello.mutable_hello()->set_proxy_id("p1");
         hello.mutable_hello()->set_environment("prod");
         stream->Write(hello);
         warden::v1::WatchResponse got;
         if (stream->Read(&got)) {  // the head bundle: authorized.
           c->TryCancel();
           stream->Finish();
           return grpc::Status::OK;
         }
         return stream->Finish();
       }},
  };
  // One push so that GetBundle/Rollback/Watch have something to act on:
  // rollback to it (revision 1) must pass authorization and succeed.
  auto first = bundles_->Push({{"p.yaml", kPolicy}}, "m", "t", absl::Now(), false);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->revision, 1u);
  // One audit event each from p1 and p8, so that the proof RPCs have a
  // leaf to prove and p8 is a proxy RevokeProxy can revoke.
  for (const char* id : {"p1", "p8"}) {
    warden::v1::AppendAuditRequest r;
    auto* e = r.add_events();
    e->set_proxy_id(id);
    e->set_environment("prod");
    e->set_sequence(1);
    warden::v1::AppendAuditResponse out;
    ASSERT_TRUE(cp_->audit_ingest()
                    ->AppendFrom({id, "prod"}, r, absl::Now(), &out)
                    .ok());
  }
  victim_id = "tok_" + Mint({warden::v1::TOKEN_SCOPE_AUDIT_READ}).substr(4, 16);

  const std::string revoked = Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  ASSERT_TRUE(tokens_->Revoke("tok_" + revoked.substr(4, 16), absl::Now()).ok());
  const std::string expired =
      Mint({warden::v1::TOKEN_SCOPE_ADMIN}, absl::Milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // A scope no RPC here needs.
  const std::string approvals_only =
      Mint({warden::v1::TOKEN_SCOPE_APPROVALS_DECIDE});
  auto bootstrap = [&] {
    auto t = tokens_->CreateBootstrap("boot", "prod", "", absl::Hours(1), "t",
                                      absl::Now());
    EXPECT_TRUE(t.ok()) << t.status();
    return t->token;
  };
  const std::string used = bootstrap();
  ASSERT_TRUE(
      tokens_->Consume("tok_" + used.substr(4, 16), absl::Now()).ok());
  const std::string admin = Mint({warden::v1::TOKEN_SCOPE_ADMIN});

  // Client certificates.
  int distinct = 0;
  const ChannelPtr plain = cp_->Channel();
  const ChannelPtr proxy = cp_->ProxyChannel("p1", "prod", ++distinct);
  auto foreign_channel = [&] {
    auto other_key = x509::GenerateKey();
    auto other_cert = x509::MakeSelfSignedCa(
        *other_key, {"Warden CA", {}, {}, {}}, absl::Now(), absl::Hours(1));
    auto other = ca::Authority::FromPem(*other_cert, *other_key);
    EXPECT_TRUE(other.ok());
    auto key = x509::GenerateKey();
    auto cert = (*other)->IssueProxy(*x509::MakeRequest(*key, "p1"),
                                     {"p1", "prod"}, absl::Now(),
                                     absl::Hours(1));
    return cp_->ChannelWith(*key, *cert, ++distinct);
  };
  auto expired_channel = [&] {
    auto key = x509::GenerateKey();
    auto cert = cp_->authority()->IssueProxy(*x509::MakeRequest(*key, "p1"),
                                             {"p1", "prod"},
                                             absl::Now() - absl::Hours(2),
                                             absl::Hours(1));
    return cp_->ChannelWith(*key, *cert, ++distinct);
  };

  struct Caller {
    const char* what;
    std::string header;
    ChannelPtr channel;
    grpc::StatusCode want;  // for every token RPC
  };
  const std::vector<Caller> refused = {
      {"no credentials", "", plain, grpc::StatusCode::UNAUTHENTICATED},
      {"not a bearer token", "Basic YWxpY2U6cHc=", plain,
       grpc::StatusCode::UNAUTHENTICATED},
      {"malformed token", "Bearer hunter2", plain,
       grpc::StatusCode::UNAUTHENTICATED},
      {"unknown token", "Bearer wdn_0123456789abcdef_" + std::string(64, '0'),
       plain, grpc::StatusCode::UNAUTHENTICATED},
      {"revoked token", "Bearer " + revoked, plain,
       grpc::StatusCode::UNAUTHENTICATED},
      {"expired token", "Bearer " + expired, plain,
       grpc::StatusCode::UNAUTHENTICATED},
      {"used bootstrap token", "Bearer " + used, plain,
       grpc::StatusCode::UNAUTHENTICATED},
      {"wrong scope", "Bearer " + approvals_only, plain,
       grpc::StatusCode::PERMISSION_DENIED},
      // A proxy's certificate is not a token.
      {"proxy certificate, no token", "", proxy,
       grpc::StatusCode::UNAUTHENTICATED},
      // TLS refuses the handshake: the RPC never reaches a handler.
      {"admin token, certificate from another CA", "Bearer " + admin,
       foreign_channel(), grpc::StatusCode::UNAVAILABLE},
      {"admin token, expired Warden certificate", "Bearer " + admin,
       expired_channel(), grpc::StatusCode::UNAVAILABLE},
  };
  for (const Rpc& rpc : token_rpcs) {
    const TokenScope needed = server::RequiredScope(rpc.method);
    ASSERT_NE(needed, warden::v1::TOKEN_SCOPE_UNSPECIFIED) << rpc.method;
    for (const Caller& caller : refused) {
      grpc::ClientContext ctx;
      Auth(&ctx, caller.header);
      const grpc::Status got = rpc.call(&ctx, caller.channel);
      EXPECT_EQ(got.error_code(), caller.want)
          << rpc.method << " with " << caller.what << ": "
          << got.error_message();
    }
    // The exact scope works; a token with every other scope does not (for
    // Enroll that includes admin: only bootstrap tokens enroll).
    const bool enroll = needed == warden::v1::TOKEN_SCOPE_PROXY_ENROLL;
    const std::string exact =
        "Bearer " + (enroll ? bootstrap() : Mint({needed}));
    grpc::ClientContext ok_ctx;
    Auth(&ok_ctx, exact);
    const grpc::Status ok = rpc.call(&ok_ctx, plain);
    EXPECT_TRUE(ok.ok()) << rpc.method << ": " << ok.error_message();
    std::vector<TokenScope> others;
    for (TokenScope s : {warden::v1::TOKEN_SCOPE_POLICY_WRITE,
                         warden::v1::TOKEN_SCOPE_POLICY_READ,
                         warden::v1::TOKEN_SCOPE_AUDIT_READ,
                         warden::v1::TOKEN_SCOPE_APPROVALS_DECIDE,
                         warden::v1::TOKEN_SCOPE_ADMIN}) {
      if (s != needed && (enroll || s != warden::v1::TOKEN_SCOPE_ADMIN)) {
        others.push_back(s);
      }
    }
    grpc::ClientContext other_ctx;
    Auth(&other_ctx, "Bearer " + Mint(others));
    EXPECT_EQ(rpc.call(&other_ctx, plain).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << rpc.method << " with every scope but " << needed;
    // A bootstrap token grants nothing but Enroll.
    if (!enroll) {
      grpc::ClientContext boot_ctx;
      Auth(&boot_ctx, "Bearer " + bootstrap());
      EXPECT_EQ(rpc.call(&boot_ctx, plain).error_code(),
                grpc::StatusCode::PERMISSION_DENIED)
          << rpc.method << " with a bootstrap token";
    }
  }
  for (const Rpc& rpc : certificate_rpcs) {
    EXPECT_EQ(server::RequiredScope(rpc.method),
              warden::v1::TOKEN_SCOPE_UNSPECIFIED)
        << rpc.method << " takes no token";
    const Caller callers[] = {
        {"no certificate", "", plain, grpc::StatusCode::UNAUTHENTICATED},
        {"admin token, no certificate", "Bearer " + admin, plain,
         grpc::StatusCode::UNAUTHENTICATED},
        {"certificate from another CA", "", foreign_channel(),
         grpc::StatusCode::UNAVAILABLE},
        {"expired Warden certificate", "", expired_channel(),
         grpc::StatusCode::UNAVAILABLE},
        {"Warden proxy certificate", "", proxy, grpc::StatusCode::OK},
    };
    for (const Caller& caller : callers) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
      Auth(&ctx, caller.header);
      const grpc::Status got = rpc.call(&ctx, caller.channel);
      EXPECT_EQ(got.error_code(), caller.want)
          << rpc.method << " with " << caller.what << ": "
          << got.error_message();
    }
  }
  EXPECT_EQ(server::RequiredScope("/warden.v1.PolicyService/Nope"),
            warden::v1::TOKEN_SCOPE_UNSPECIFIED);
}

// One identity per proxy id (issue 14): a bootstrap token that names no id
// cannot enroll as a proxy that exists, so it cannot write into that
// proxy's audit sequence; renewal moves the binding; revocation ends it.
TEST_F(ServicesTest, AProxyIdIsBoundToItsCertificate) {
  auto stub = warden::v1::ProxyEnrollment::NewStub(cp_->Channel());
  auto bootstrap = [&](const std::string& env) {
    auto t = tokens_->CreateBootstrap("boot", env, "", absl::Hours(1), "t",
                                      absl::Now());
    EXPECT_TRUE(t.ok());
    return t->token;
  };
  auto enroll = [&](const std::string& bearer, const std::string& id,
                    const std::string& key, warden::v1::EnrollResponse* out) {
    warden::v1::EnrollRequest r;
    r.set_csr_pem(*x509::MakeRequest(key, "x"));
    r.set_proxy_id(id);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + bearer);
    return stub->Enroll(&ctx, r, out);
  };
  auto key = x509::GenerateKey();
  warden::v1::EnrollResponse first;
  ASSERT_TRUE(enroll(bootstrap("prod"), "edge-1", *key, &first).ok());

  // Another token asking for the same id is refused, and not spent.
  const std::string second_token = bootstrap("prod");
  warden::v1::EnrollResponse stolen;
  const grpc::Status taken = enroll(second_token, "edge-1", *key, &stolen);
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(taken.error_message(), HasSubstr("already enrolled"));
  EXPECT_TRUE(stolen.certificate_pem().empty());
  warden::v1::EnrollResponse other;
  EXPECT_TRUE(enroll(second_token, "edge-2", *key, &other).ok());

  // An id in use before enrollments were recorded (it has audit events).
  warden::v1::AppendAuditRequest events;
  auto* e = events.add_events();
  e->set_proxy_id("legacy-1");
  e->set_environment("prod");
  e->set_sequence(1);
  warden::v1::AppendAuditResponse appended;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"legacy-1", "prod"}, events, absl::Now(),
                               &appended)
                  .ok());
  EXPECT_EQ(enroll(bootstrap("prod"), "legacy-1", *key, &stolen).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  // Renewal moves the binding: the certificate before the last one is
  // refused everywhere, the last two are accepted.
  auto renew = [&](const std::string& with, const std::string& cert, int n,
                   const std::string& next, warden::v1::EnrollResponse* out) {
    warden::v1::RenewRequest r;
    r.set_csr_pem(*x509::MakeRequest(next, "x"));
    grpc::ClientContext ctx;
    return warden::v1::ProxyEnrollment::NewStub(cp_->ChannelWith(with, cert, n))
        ->Renew(&ctx, r, out);
  };
  auto key2 = x509::GenerateKey();
  auto key3 = x509::GenerateKey();
  warden::v1::EnrollResponse second, third;
  ASSERT_TRUE(renew(*key, first.certificate_pem(), 101, *key2, &second).ok());
  ASSERT_TRUE(renew(*key2, second.certificate_pem(), 102, *key3, &third).ok());
  const absl::Status old_cert =
      cp_->authority()->AuthenticateProxy(first.certificate_pem(), absl::Now())
          .status();
  EXPECT_EQ(old_cert.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(old_cert.message()), HasSubstr("no longer speaks"));
  EXPECT_TRUE(cp_->authority()
                  ->AuthenticateProxy(second.certificate_pem(), absl::Now())
                  .ok());
  EXPECT_TRUE(cp_->authority()
                  ->AuthenticateProxy(third.certificate_pem(), absl::Now())
                  .ok());
  // Only the current certificate renews (red team pass 5: the previous
  // one, from a stale copy of the state directory, renewed again, took the
  // id over and locked the live proxy out). Right after a renewal the
  // previous one may retry once (the proxy crashed before storing the
  // answer); later it is refused, and nothing moves.
  {
    auto serial_of = [](const std::string& pem) {
      return x509::Parse(pem)->serial_hex;
    };
    ca::ProxyIdentity stale{"edge-1", "prod"};
    stale.certificate_serial = serial_of(second.certificate_pem());
    const absl::Time later =
        absl::Now() + proxies::Registry::kRenewRetryWindow + absl::Minutes(1);
    const absl::Status forked =
        cp_->proxy_registry()->Renewed(stale, "AB12", later);
    EXPECT_EQ(forked.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(forked.message()),
                HasSubstr("only the current certificate renews"));
    EXPECT_TRUE(cp_->authority()
                    ->AuthenticateProxy(third.certificate_pem(), absl::Now())
                    .ok());
    // Within the window too, once the new certificate has been used (as
    // just above): the proxy has it, so the retry is a copy's (red team
    // pass 7: it took the id over within the window).
    const absl::Status copied =
        cp_->proxy_registry()->Renewed(stale, "AB13", absl::Now());
    EXPECT_EQ(copied.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(copied.message()),
                HasSubstr("which the proxy has used since"));
    EXPECT_TRUE(cp_->authority()
                    ->AuthenticateProxy(third.certificate_pem(), absl::Now())
                    .ok());
    // While the new certificate has not been used, the one it replaced
    // may retry (the answer was lost): once, then the next is unused too.
    ca::ProxyIdentity current{"edge-1", "prod"};
    current.certificate_serial = serial_of(third.certificate_pem());
    ASSERT_TRUE(
        cp_->proxy_registry()->Renewed(current, "CC01", absl::Now()).ok());
    EXPECT_TRUE(
        cp_->proxy_registry()->Renewed(current, "CC02", absl::Now()).ok());
    auto record = cp_->proxy_registry()->Get("prod", "edge-1");
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(record->certificate_serial(), "CC02");
    EXPECT_FALSE(record->current_used());
    // Every renewal, refused or not, is in the audit trail: the first
    // certificate (two renewals back) is refused before it is bound to an
    // identity, and that is recorded too.
    warden::v1::EnrollResponse refused;
    EXPECT_EQ(renew(*key, first.certificate_pem(), 105, *key2, &refused)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    std::vector<std::string> renewals;
    auto all = cp_->ledger()->Entries(0, cp_->ledger()->Tree()->size(), 100000);
    ASSERT_TRUE(all.ok());
    for (const auto& entry : *all) {
      warden::v1::AuditLeaf leaf;
      ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(entry.leaf())->second));
      if (leaf.event().admin().action() == "proxy.renew") {
        renewals.push_back(leaf.event().admin().detail());
      }
    }
    ASSERT_EQ(renewals.size(), 3u);
    EXPECT_THAT(renewals[1],
                HasSubstr("certificate " + serial_of(second.certificate_pem()) +
                          " renewed to " + serial_of(third.certificate_pem())));
    EXPECT_THAT(renewals[2], HasSubstr("no longer speaks for"));
  }
  // ... and the refused certificate cannot append audit events either.
  {
    warden::v1::AppendAuditRequest r;
    warden::v1::AppendAuditResponse out;
    grpc::ClientContext ctx;
    EXPECT_EQ(warden::v1::AuditIngest::NewStub(
                  cp_->ChannelWith(*key, first.certificate_pem(), 103))
                  ->Append(&ctx, r, &out)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }

  // Listed; revoked by an admin with a reason; refused from then on; and
  // the id can be enrolled again.
  const std::string admin = Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin);
    warden::v1::ListProxiesResponse list;
    ASSERT_TRUE(stub->ListProxies(&ctx, {}, &list).ok());
    std::set<std::string> ids;
    for (const auto& p : list.proxies()) ids.insert(p.proxy_id());
    EXPECT_EQ(ids, (std::set<std::string>{"edge-1", "edge-2"}));
  }
  {
    warden::v1::RevokeProxyRequest r;
    r.set_environment("prod");
    r.set_proxy_id("edge-1");
    warden::v1::RevokeProxyResponse out;
    grpc::ClientContext no_reason;
    no_reason.AddMetadata("authorization", "Bearer " + admin);
    EXPECT_EQ(stub->RevokeProxy(&no_reason, r, &out).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    r.set_reason("host decommissioned");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin);
    ASSERT_TRUE(stub->RevokeProxy(&ctx, r, &out).ok());
    EXPECT_TRUE(out.proxy().revoked());
  }
  const absl::Status revoked =
      cp_->authority()->AuthenticateProxy(third.certificate_pem(), absl::Now())
          .status();
  EXPECT_EQ(revoked.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(revoked.message()), HasSubstr("host decommissioned"));
  warden::v1::EnrollResponse renewed_after;
  EXPECT_EQ(renew(*key3, third.certificate_pem(), 104, *key, &renewed_after)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  warden::v1::EnrollResponse again;
  ASSERT_TRUE(enroll(bootstrap("prod"), "edge-1", *key, &again).ok());
  EXPECT_TRUE(cp_->authority()
                  ->AuthenticateProxy(again.certificate_pem(), absl::Now())
                  .ok());
}

// Enrollment end to end: a bootstrap token buys one certificate naming the
// token's environment (and id, when it fixes one); Renew keeps the identity.
TEST_F(ServicesTest, EnrollOnceThenRenewWithTheCertificate) {
  auto token = tokens_->CreateBootstrap("boot-a", "prod", "", absl::Hours(1),
                                        "t", absl::Now());
  ASSERT_TRUE(token.ok());
  auto key = x509::GenerateKey();
  auto enroll = [&](const std::string& bearer, const std::string& id,
                    warden::v1::EnrollResponse* out) {
    warden::v1::EnrollRequest r;
    r.set_csr_pem(*x509::MakeRequest(*key, "whatever"));
    r.set_proxy_id(id);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + bearer);
    return warden::v1::ProxyEnrollment::NewStub(cp_->Channel())
        ->Enroll(&ctx, r, out);
  };
  warden::v1::EnrollResponse got;
  // Bad requests do not spend the token.
  EXPECT_EQ(enroll(token->token, "bad/id", &got).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  {
    warden::v1::EnrollRequest r;
    r.set_csr_pem("not a csr");
    r.set_proxy_id("edge-1");
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token->token);
    EXPECT_EQ(warden::v1::ProxyEnrollment::NewStub(cp_->Channel())
                  ->Enroll(&ctx, r, &got)
                  .error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  const grpc::Status ok = enroll(token->token, "edge-1", &got);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(got.proxy_id(), "edge-1");
  EXPECT_EQ(got.environment(), "prod");
  EXPECT_EQ(got.ca_certificate_pem(), cp_->authority()->certificate_pem());
  auto identity =
      cp_->authority()->AuthenticateProxy(got.certificate_pem(), absl::Now());
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->proxy_id, "edge-1");
  EXPECT_EQ(identity->environment, "prod");
  EXPECT_TRUE(x509::KeyMatchesCertificate(*key, got.certificate_pem()));
  // Once only.
  warden::v1::EnrollResponse again;
  const grpc::Status second = enroll(token->token, "edge-2", &again);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(second.error_message().find("used already"), std::string::npos);

  // A token that names the proxy decides the id.
  auto fixed = tokens_->CreateBootstrap("boot-b", "dev", "edge-9",
                                        absl::Hours(1), "t", absl::Now());
  ASSERT_TRUE(fixed.ok());
  warden::v1::EnrollResponse pinned;
  ASSERT_TRUE(enroll(fixed->token, "something-else", &pinned).ok());
  EXPECT_EQ(pinned.proxy_id(), "edge-9");
  EXPECT_EQ(pinned.environment(), "dev");

  // Renew with the certificate: same identity, new key.
  auto new_key = x509::GenerateKey();
  warden::v1::RenewRequest renew;
  renew.set_csr_pem(*x509::MakeRequest(*new_key, "x"));
  warden::v1::EnrollResponse renewed;
  grpc::ClientContext ctx;
  const grpc::Status r =
      warden::v1::ProxyEnrollment::NewStub(
          cp_->ChannelWith(*key, got.certificate_pem(), 77))
          ->Renew(&ctx, renew, &renewed);
  ASSERT_TRUE(r.ok()) << r.error_message();
  EXPECT_EQ(renewed.proxy_id(), "edge-1");
  EXPECT_EQ(renewed.environment(), "prod");
  EXPECT_TRUE(x509::KeyMatchesCertificate(*new_key, renewed.certificate_pem()));
  EXPECT_NE(x509::Parse(renewed.certificate_pem())->serial_hex,
            x509::Parse(got.certificate_pem())->serial_hex);

  // Bootstrap tokens are created only with an environment and alone.
  warden::v1::CreateTokenRequest bad;
  bad.set_name("b");
  bad.add_scopes(warden::v1::TOKEN_SCOPE_PROXY_ENROLL);
  bad.add_scopes(warden::v1::TOKEN_SCOPE_POLICY_READ);
  bad.set_environment("prod");
  warden::v1::CreateTokenResponse created;
  grpc::ClientContext cctx;
  cctx.AddMetadata("authorization",
                   "Bearer " + Mint({warden::v1::TOKEN_SCOPE_ADMIN}));
  EXPECT_EQ(token_rpc_->CreateToken(&cctx, bad, &created).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  bad.clear_scopes();
  bad.add_scopes(warden::v1::TOKEN_SCOPE_PROXY_ENROLL);
  bad.clear_environment();
  grpc::ClientContext cctx2;
  cctx2.AddMetadata("authorization",
                    "Bearer " + Mint({warden::v1::TOKEN_SCOPE_ADMIN}));
  EXPECT_EQ(token_rpc_->CreateToken(&cctx2, bad, &created).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  bad.set_environment("prod");
  grpc::ClientContext cctx3;
  cctx3.AddMetadata("authorization",
                    "Bearer " + Mint({warden::v1::TOKEN_SCOPE_ADMIN}));
  ASSERT_TRUE(token_rpc_->CreateToken(&cctx3, bad, &created).ok());
  EXPECT_TRUE(created.info().single_use());
  EXPECT_TRUE(created.info().has_expires_at());  // 24 h by default.
}

// The folder's PolicyTest cases gate the push (issue 13 item 11): a
// failing case rejects it (dry runs too) with a diagnostic naming the
// case; --skip-tests pushes anyway, and the audit record says so.
TEST_F(ServicesTest, APushRunsThePolicyTestsOfItsFolder) {
  constexpr char kTests[] = R"(apiVersion: warden/v1
kind: PolicyTest
metadata: { name: guard-tests }
spec:
  defaults: { environment: prod, database: shop, user: alice }
  cases:
    - name: drop-denied
      sql: DROP TABLE orders
      expect: { action: deny, rule: no-drop }
    - name: truncate-denied
      sql: TRUNCATE orders
      expect: { action: deny }
)";
  const std::string writer =
      "Bearer " + Mint({warden::v1::TOKEN_SCOPE_POLICY_WRITE});
  warden::v1::PushPolicyRequest push;
  auto* policy = push.add_sources();
  policy->set_name("guard.yaml");
  policy->set_text(kPolicy);
  auto* tests = push.add_sources();
  tests->set_name("guard_test.yaml");
  tests->set_text(kTests);
  auto send = [&](const warden::v1::PushPolicyRequest& r) {
    warden::v1::PushPolicyResponse out;
    grpc::ClientContext ctx;
    Auth(&ctx, writer);
    EXPECT_TRUE(policy_->PushPolicy(&ctx, r, &out).ok());
    return out;
  };
  for (bool dry_run : {true, false}) {
    push.set_dry_run(dry_run);
    const auto refused = send(push);
    EXPECT_EQ(refused.revision(), 0u);
    ASSERT_EQ(refused.diagnostics_size(), 1);
    EXPECT_EQ(refused.diagnostics(0).file(), "guard_test.yaml");
    EXPECT_GT(refused.diagnostics(0).line(), 0);
    EXPECT_THAT(refused.diagnostics(0).message(),
                HasSubstr("case \"truncate-denied\" fails"));
  }
  push.set_dry_run(false);
  push.set_skip_tests(true);
  const auto skipped = send(push);
  EXPECT_TRUE(skipped.diagnostics().empty());
  EXPECT_GT(skipped.revision(), 0u);
  // The push's audit record says the tests were skipped, and how many failed.
  auto tree = cp_->ledger()->Tree();
  ASSERT_TRUE(tree.ok());
  auto entries = cp_->ledger()->Entries(0, tree->size(), 1000);
  ASSERT_TRUE(entries.ok());
  std::string detail;
  for (const auto& e : *entries) {
    warden::v1::AuditLeaf leaf;
    ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(e.leaf())->second));
    if (leaf.event().admin().action() == "policy.push") {
      detail = leaf.event().admin().detail();
    }
  }
  EXPECT_THAT(detail, HasSubstr("policy tests skipped: 1 of 2 failing"));
  // Fixed tests pass, and say so.
  push.set_skip_tests(false);
  push.mutable_sources(1)->set_text(absl::StrReplaceAll(
      kTests, {{"sql: TRUNCATE orders\n      expect: { action: deny }",
                "sql: TRUNCATE orders\n      expect: { action: allow }"}}));
  const auto passed = send(push);
  EXPECT_TRUE(passed.diagnostics().empty()) << passed.diagnostics(0).message();
  // (Tests are not part of the bundle: the same policies, no new revision.)
  EXPECT_TRUE(passed.unchanged());
  EXPECT_EQ(passed.revision(), skipped.revision());
}

// Renewal is bounded (issue 14): past --proxy-max-age after enrollment
// the certificate is not renewed (refused, audited), so a stolen one
// cannot be kept alive forever; enrolled again, it renews.
TEST_F(ServicesTest, RenewalEndsAtTheMaximumAgeAfterEnrollment) {
  auto token = tokens_->CreateBootstrap("boot-age", "prod", "old-1",
                                        absl::Hours(1), "t", absl::Now());
  ASSERT_TRUE(token.ok());
  auto key = x509::GenerateKey();
  warden::v1::EnrollRequest enroll;
  enroll.set_csr_pem(*x509::MakeRequest(*key, "x"));
  warden::v1::EnrollResponse enrolled;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token->token);
    ASSERT_TRUE(warden::v1::ProxyEnrollment::NewStub(cp_->Channel())
                    ->Enroll(&ctx, enroll, &enrolled)
                    .ok());
  }
  auto renew = [&](int n) {
    warden::v1::RenewRequest r;
    r.set_csr_pem(*x509::MakeRequest(*key, "x"));
    warden::v1::EnrollResponse out;
    grpc::ClientContext ctx;
    return warden::v1::ProxyEnrollment::NewStub(
               cp_->ChannelWith(*key, enrolled.certificate_pem(), n))
        ->Renew(&ctx, r, &out);
  };
  cp_->enrollment()->set_max_age(absl::Hours(1));
  EXPECT_TRUE(renew(201).ok());
  cp_->enrollment()->set_max_age(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(20));
  const grpc::Status refused = renew(202);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("enroll it again"));
  cp_->enrollment()->set_max_age(absl::ZeroDuration());
}

// A proxy whose listeners serve several environments (issue 14.8): the
// bootstrap token names them, the certificate carries them through every
// renewal, and nothing else can add one.
TEST_F(ServicesTest, AProxyCertificateNamesTheEnvironmentsItServes) {
  const std::string admin = Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  warden::v1::CreateTokenRequest create;
  create.set_name("boot-multi");
  create.add_scopes(warden::v1::TOKEN_SCOPE_PROXY_ENROLL);
  create.set_environment("prod");
  create.add_environments("dev");
  create.add_environments("prod");  // its own: not repeated
  create.add_environments("control");
  warden::v1::CreateTokenResponse created;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin);
    const grpc::Status reserved =
        token_rpc_->CreateToken(&ctx, create, &created);
    EXPECT_EQ(reserved.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(reserved.error_message(), HasSubstr("reserved"));
  }
  create.mutable_environments()->RemoveLast();
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin);
    ASSERT_TRUE(token_rpc_->CreateToken(&ctx, create, &created).ok());
  }
  EXPECT_EQ(std::vector<std::string>(created.info().environments().begin(),
                                     created.info().environments().end()),
            std::vector<std::string>{"dev"});
  auto key = x509::GenerateKey();
  warden::v1::EnrollRequest request;
  request.set_csr_pem(*x509::MakeRequest(*key, "x"));
  request.set_proxy_id("edge-m");
  warden::v1::EnrollResponse enrolled;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + created.token());
    ASSERT_TRUE(warden::v1::ProxyEnrollment::NewStub(cp_->Channel())
                    ->Enroll(&ctx, request, &enrolled)
                    .ok());
  }
  auto identity = cp_->authority()->AuthenticateProxy(
      enrolled.certificate_pem(), absl::Now());
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->environment, "prod");
  EXPECT_TRUE(identity->Serves("prod"));
  EXPECT_TRUE(identity->Serves("dev"));
  EXPECT_FALSE(identity->Serves("staging"));
  EXPECT_FALSE(identity->Serves("control"));
  // Renewal keeps them.
  auto next = x509::GenerateKey();
  warden::v1::RenewRequest renew;
  renew.set_csr_pem(*x509::MakeRequest(*next, "x"));
  warden::v1::EnrollResponse renewed;
  grpc::ClientContext ctx;
  ASSERT_TRUE(warden::v1::ProxyEnrollment::NewStub(
                  cp_->ChannelWith(*key, enrolled.certificate_pem(), 91))
                  ->Renew(&ctx, renew, &renewed)
                  .ok());
  auto again = cp_->authority()->AuthenticateProxy(renewed.certificate_pem(),
                                                   absl::Now());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->also_serves, std::vector<std::string>{"dev"});
  // A URI that only looks like one is not taken.
  auto parsed = ProxyIdentityFromUris(
      {"spiffe://warden/proxy-serves/../x", "spiffe://warden/proxy/prod/p9",
       "spiffe://warden/proxy-serves/dev"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->also_serves, std::vector<std::string>{"dev"});
}

// Two writers of admin events under one name (two replicas given one
// --replica-name, red team): their sequences collide. Every event is
// recorded all the same, each writer moving past what the other took.
TEST_F(ServicesTest, AdminEventsOfTwoWritersOfOneNameAreAllRecorded) {
  server::AdminAudit first(cp_->audit_ingest(), "warden-control-same");
  server::AdminAudit second(cp_->audit_ingest(), "warden-control-same");
  for (int i = 0; i < 6; ++i) {
    server::AdminAudit& writer = i % 2 == 0 ? first : second;
    ASSERT_TRUE(writer.Record("admin", "token.create", "t" + std::to_string(i),
                              "", true)
                    .ok())
        << i;
  }
  auto acked = cp_->ledger()->Acknowledged("control/warden-control-same");
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 6u);
}

}  // namespace
}  // namespace warden::controlplane
