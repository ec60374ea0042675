// The proxy registry on two replicas sharing one ordered log in a real
// etcd (started by the test). Every change of a proxy's record is a
// read-modify-write; decided on a replica's stale view it could enroll one
// id twice or let a renewal erase a revocation made on another replica.
// Replica B never follows the log between the steps: its view is stale on
// purpose.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/proxy_identity.h"
#include "controlplane/proxies/registry.h"
#include "gtest/gtest.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"
#include "tests/unit/controlplane/state/etcd_replica.h"

namespace warden::controlplane::proxies {
namespace {

using ::warden::testing::EtcdReplica;
using ::warden::testing::EtcdSuite;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);

struct Node {
  std::unique_ptr<EtcdReplica> replica;
  std::unique_ptr<Registry> registry;
};

class RegistryClusterTest : public EtcdSuite {
 protected:
  static std::unique_ptr<Node> Start(const std::string& name) {
    auto n = std::make_unique<Node>();
    n->replica = EtcdReplica::Start(cluster(), name);
    if (n->replica == nullptr) return nullptr;
    n->registry = std::make_unique<Registry>(
        n->replica->state.get(), n->replica->store.get(), nullptr);
    return n;
  }

  static absl::Status Enroll(Node& n, const std::string& serial) {
    return n.registry->Enroll({"edge-1", "prod"}, "admin", kNow,
                              [&]() -> absl::StatusOr<std::string> {
                                return serial;
                              });
  }

};

TEST_F(RegistryClusterTest, OneIdEnrolledOnTwoReplicasGoesToOneProxy) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Enroll(*a, "aa01").ok());
  // B has not seen A's enrollment; it must refuse all the same.
  const absl::Status second = Enroll(*b, "bb02");
  EXPECT_TRUE(absl::IsAlreadyExists(second)) << second;
  b->replica->CatchUp();
  auto record = b->registry->Get("prod", "edge-1");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->certificate_serial(), "aa01");
  // The proxy B would have certified does not speak for the id.
  EXPECT_TRUE(absl::IsPermissionDenied(
      b->registry->Check({"edge-1", "prod", "bb02"})));
}

TEST_F(RegistryClusterTest, ARenewalOnAStaleReplicaDoesNotUndoARevocation) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Enroll(*a, "aa01").ok());
  b->replica->CatchUp();
  auto revoked = a->registry->Revoke("prod", "edge-1", "admin", "stolen", kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  // The stolen certificate renews on B, which has not seen the revocation.
  const absl::Status renewed =
      b->registry->Renewed({"edge-1", "prod", "aa01"}, "cc03", kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(renewed)) << renewed;
  EXPECT_NE(renewed.message().find("revoked"), std::string::npos) << renewed;
  for (Node* n : {a.get(), b.get()}) {
    n->replica->CatchUp();
    auto record = n->registry->Get("prod", "edge-1");
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_TRUE(record->revoked());
    EXPECT_EQ(record->certificate_serial(), "aa01");
    EXPECT_TRUE(absl::IsPermissionDenied(
        n->registry->Check({"edge-1", "prod", "cc03"})));
  }
}

TEST_F(RegistryClusterTest, ARevocationOnAStaleReplicaKeepsTheRenewal) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Enroll(*a, "aa01").ok());
  b->replica->CatchUp();
  ASSERT_TRUE(a->registry->Renewed({"edge-1", "prod", "aa01"}, "cc03", kNow)
                  .ok());
  // Revoked on B from a view without the renewal: the revocation lands on
  // the renewed record, and neither certificate speaks for the proxy.
  auto revoked = b->registry->Revoke("prod", "edge-1", "admin", "gone", kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->revoked());
  EXPECT_EQ(revoked->certificate_serial(), "cc03");
  a->replica->CatchUp();
  for (const char* serial : {"aa01", "cc03"}) {
    EXPECT_TRUE(absl::IsPermissionDenied(
        a->registry->Check({"edge-1", "prod", serial})))
        << serial;
  }
}

}  // namespace
}  // namespace warden::controlplane::proxies
