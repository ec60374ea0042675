// The SCIM directory on two replicas sharing one ordered log in a real etcd
// (started by the test). The look-alike guard (no userName or e-mail that
// reads like another record's) checks an index each replica keeps in
// memory; a user created on another replica must be in it, or an
// identity provider's write sent to B could take a name that looks like
// one A created.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "controlplane/directory/directory.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/state.pb.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"
#include "tests/unit/controlplane/state/etcd_replica.h"

namespace warden::controlplane::directory {
namespace {

using ::warden::testing::EtcdReplica;
using ::warden::testing::EtcdSuite;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);

struct Node {
  std::unique_ptr<EtcdReplica> replica;
  std::unique_ptr<Directory> directory;
};

class DirectoryClusterTest : public EtcdSuite {
 protected:
  static std::unique_ptr<Node> Start(const std::string& name) {
    auto n = std::make_unique<Node>();
    n->replica = EtcdReplica::Start(cluster(), name);
    if (n->replica == nullptr) return nullptr;
    n->directory = std::make_unique<Directory>(n->replica->state.get(),
                                               n->replica->store.get());
    return n;
  }

  static absl::StatusOr<warden::v1::DirectoryUser> Create(
      Node& n, const std::string& user_name) {
    warden::v1::DirectoryUser user;
    user.set_user_name(user_name);
    user.set_active(true);
    return n.directory->PutUser(user, "okta", kNow);
  }

};

TEST_F(DirectoryClusterTest, ANameLikeOneMadeOnAnotherReplicaIsRefused) {
  auto a = Start("a");
  auto b = Start("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // B writes first, so it has built its index before A's user exists.
  ASSERT_TRUE(Create(*b, "bob@example.com").ok());
  a->replica->CatchUp();
  ASSERT_TRUE(Create(*a, "alice@example.com").ok());
  b->replica->CatchUp();  // B applies A's user (as its follower would)
  // "аlice" with a Cyrillic а: reads as alice.
  auto twin = Create(*b, "\xd0\xb0lice@example.com");
  EXPECT_TRUE(absl::IsAlreadyExists(twin.status())) << twin.status();
  // The same name in another case is the same name, refused too.
  auto upper = Create(*b, "ALICE@example.com");
  EXPECT_TRUE(absl::IsAlreadyExists(upper.status())) << upper.status();
  // And B's own next writes still see its own index kept current.
  ASSERT_TRUE(Create(*b, "carol@example.com").ok());
  auto carol_twin = Create(*b, "car\xd0\xbel@example.com");  // Cyrillic о
  EXPECT_TRUE(absl::IsAlreadyExists(carol_twin.status()))
      << carol_twin.status();
}

}  // namespace
}  // namespace warden::controlplane::directory
