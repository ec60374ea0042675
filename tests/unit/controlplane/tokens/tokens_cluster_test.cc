// Tokens on two replicas of the control plane sharing one ordered log in a
// real etcd (started by the test): a read-modify-write of a token decided
// on one replica's stale view would let a one-time bootstrap token enroll
// twice, or undo a revocation. Each test gives the second replica a stale
// view on purpose (it does not follow the log between the steps).
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"
#include "tests/unit/controlplane/state/etcd_replica.h"
#include "third_party/etcd/rpc.grpc.pb.h"

namespace warden::controlplane {
namespace {


const absl::Time kNow = absl::FromUnixSeconds(1790000000);

struct Replica {
  std::unique_ptr<testing::EtcdReplica> replica;
  std::unique_ptr<tokens::Tokens> tokens;
  store::Store* store = nullptr;
};

class TokensClusterTest : public testing::EtcdSuite {
 protected:
  static std::unique_ptr<Replica> Start(const std::string& name) {
    auto r = std::make_unique<Replica>();
    r->replica = testing::EtcdReplica::Start(cluster(), name);
    if (r->replica == nullptr) return nullptr;
    r->store = r->replica->store.get();
    r->tokens = std::make_unique<tokens::Tokens>(r->replica->state.get(),
                                                 r->store);
    return r;
  }

  static void CatchUp(Replica& r) { r.replica->CatchUp(); }

};

TEST_F(TokensClusterTest, ABootstrapTokenSpentOnOneReplicaIsRefusedOnTheOther) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto token = a->tokens->CreateBootstrap("edge", "prod", "", absl::Hours(1),
                                          "admin", kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  CatchUp(*b);
  // B's view: the token exists and is unused. Then A spends it.
  ASSERT_TRUE(b->tokens->Authenticate(token->token, kNow).ok());
  ASSERT_TRUE(a->tokens->Consume(token->info.id(), kNow).ok());
  // B has not applied A's entry; it must still refuse.
  const absl::Status second = b->tokens->Consume(token->info.id(), kNow);
  EXPECT_TRUE(absl::IsUnauthenticated(second)) << second;
  EXPECT_NE(second.message().find("used already"), std::string::npos)
      << second;
  // And the log holds exactly one consumption: every replica agrees.
  CatchUp(*a);
  CatchUp(*b);
  EXPECT_EQ(a->store->applied_index(), b->store->applied_index());
  EXPECT_EQ(a->store->applied_index(), 2u);  // create, consume
  EXPECT_FALSE(a->tokens->Authenticate(token->token, kNow).ok());
  EXPECT_FALSE(b->tokens->Authenticate(token->token, kNow).ok());
}

TEST_F(TokensClusterTest, ConcurrentSpendsOnTwoReplicasSucceedExactlyOnce) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int round = 0; round < 10; ++round) {
    auto token = a->tokens->CreateBootstrap(absl::StrCat("edge", round),
                                            "prod", "", absl::Hours(1),
                                            "admin", kNow);
    ASSERT_TRUE(token.ok()) << token.status();
    CatchUp(*b);
    absl::Status on_a, on_b;
    std::thread ta([&] { on_a = a->tokens->Consume(token->info.id(), kNow); });
    std::thread tb([&] { on_b = b->tokens->Consume(token->info.id(), kNow); });
    ta.join();
    tb.join();
    EXPECT_NE(on_a.ok(), on_b.ok())
        << "round " << round << ": " << on_a << " / " << on_b;
    CatchUp(*a);
  }
}

TEST_F(TokensClusterTest, ARevocationIsNotUndoneByASpendOnAStaleReplica) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto token = a->tokens->CreateBootstrap("edge", "prod", "", absl::Hours(1),
                                          "admin", kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  CatchUp(*b);
  auto revoked = a->tokens->Revoke(token->info.id(), kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->has_revoked_at());
  // B still sees it live; spending it there must not write a record
  // without the revocation.
  const absl::Status spent = b->tokens->Consume(token->info.id(), kNow);
  EXPECT_TRUE(absl::IsUnauthenticated(spent)) << spent;
  EXPECT_NE(spent.message().find("revoked"), std::string::npos) << spent;
  CatchUp(*a);
  auto listed = a->tokens->List(/*include_inactive=*/true, kNow);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].has_revoked_at());
  // Revoking again (on the stale side too) is idempotent and writes nothing.
  const uint64_t before = a->store->applied_index();
  auto again = b->tokens->Revoke(token->info.id(), kNow + absl::Minutes(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->revoked_at().seconds(), absl::ToUnixSeconds(kNow));
  CatchUp(*a);
  EXPECT_EQ(a->store->applied_index(), before);
}

TEST_F(TokensClusterTest, ATokenRevokedOnOneReplicaIsRefusedAtOnceOnTheOther) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto token = a->tokens->Create("ci", {warden::v1::TOKEN_SCOPE_ADMIN},
                                 absl::Hours(1), "admin", kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  // B never follows the log here: what it knows, it learns in Authenticate.
  ASSERT_TRUE(b->tokens->Authenticate(token->token, kNow).ok());
  ASSERT_TRUE(a->tokens->Revoke(token->info.id(), kNow).ok());
  auto after = b->tokens->Authenticate(token->token, kNow);
  EXPECT_TRUE(absl::IsUnauthenticated(after.status())) << after.status();
  EXPECT_NE(after.status().message().find("revoked"), std::string::npos)
      << after.status();
}

TEST_F(TokensClusterTest, NoTokenIsAcceptedWhenTheClusterCannotBeRead) {
  auto a = Start("a");
  ASSERT_NE(a, nullptr);
  auto token = a->tokens->Create("ci", {warden::v1::TOKEN_SCOPE_ADMIN},
                                 absl::Hours(1), "admin", kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(a->tokens->Authenticate(token->token, kNow).ok());
  // Someone edits the log behind Warden's back: the replica cannot say
  // what is current any more, so it accepts nothing.
  auto kv = cluster().RawKv();
  etcdserverpb::PutRequest put;
  put.set_key(absl::StrCat("/warden/",
                           ::testing::UnitTest::GetInstance()
                               ->current_test_info()
                               ->name(),
                           "/log/not-a-batch"));
  put.set_value("x");
  etcdserverpb::PutResponse done;
  grpc::ClientContext context;
  ASSERT_TRUE(kv->Put(&context, put, &done).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::Status refused;
  while (absl::Now() < deadline) {
    refused = a->tokens->Authenticate(token->token, kNow).status();
    if (!refused.ok()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
}

}  // namespace
}  // namespace warden::controlplane
