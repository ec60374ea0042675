// A replica of the control plane's state for tests: its own store and state
// machine on a shared etcd log (tests/unit/controlplane/log/etcd_cluster.h).
// Tests that give one replica a stale view on purpose do not start its
// follower; CatchUp brings it to the log's end when they choose.
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ETCD_REPLICA_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ETCD_REPLICA_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "controlplane/log/etcd_log.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "gtest/gtest.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"

namespace warden::testing {

struct EtcdReplica {
  std::unique_ptr<controlplane::log::EtcdLog> log;
  std::unique_ptr<controlplane::store::Store> store;
  std::unique_ptr<controlplane::state::StateMachine> state;

  // A replica named `name` on the log under /warden/<test name>/log/, its
  // store in a fresh folder; nullptr (with a test failure) if it cannot.
  static std::unique_ptr<EtcdReplica> Start(const EtcdCluster& cluster,
                                            const std::string& name) {
    const std::string test =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto r = std::make_unique<EtcdReplica>();
    auto log = controlplane::log::EtcdLog::Open(
        cluster.Options(absl::StrCat("/warden/", test, "/log/")));
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return nullptr;
    r->log = *std::move(log);
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/", test, "_", name);
    std::filesystem::remove_all(path);
    auto store = controlplane::store::Store::Open(path);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    r->store = *std::move(store);
    r->state = std::make_unique<controlplane::state::StateMachine>(
        r->log.get(), r->store.get());
    const absl::Status caught_up = r->state->CatchUp();
    EXPECT_TRUE(caught_up.ok()) << caught_up;
    if (!caught_up.ok()) return nullptr;
    return r;
  }

  // Brings this replica to the log's end as etcd knows it.
  void CatchUp() {
    const absl::Status synced = state->Sync();
    ASSERT_TRUE(synced.ok()) << synced;
  }
};

// A test suite whose tests share one etcd (one member, started once for
// the suite in the test's temporary folder): derive from it and call
// EtcdReplica::Start(cluster(), name); each test gets a log of its own
// (under its name).
class EtcdSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new EtcdCluster(::testing::TempDir() + "/suite_etcd", 1);
    std::string why;
    ASSERT_TRUE(cluster_->Start(&why)) << why;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static const EtcdCluster& cluster() { return *cluster_; }

 private:
  static inline EtcdCluster* cluster_ = nullptr;
};

}  // namespace warden::testing

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ETCD_REPLICA_H_
