// Replicas of the control plane's state machine sharing one ordered log in a
// real etcd (started by the test, TLS with client certificates): whichever
// replica takes a write, every replica applies the same entries in the same
// order and ends with the same state and the same audit tree.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/log/etcd_log.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/state.pb.h"
#include "tests/unit/controlplane/state/entries.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"
#include "third_party/etcd/rpc.grpc.pb.h"

namespace warden::controlplane::state {
namespace {

using ::warden::testing::EtcdCluster;

using ::warden::controlplane::state::testing::AuditEntry;
using ::warden::controlplane::state::testing::TokenEntry;

struct Replica {
  std::unique_ptr<log::EtcdLog> log;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<StateMachine> state;
};

class ReplicatedStateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new EtcdCluster(::testing::TempDir() + "/state_etcd", 1);
    std::string why;
    ASSERT_TRUE(cluster_->Start(&why)) << why;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  Replica Start(const std::string& name) {
    const std::string test =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    Replica r;
    auto log = log::EtcdLog::Open(
        cluster_->Options(absl::StrCat("/warden/", test, "/log/")));
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return r;
    r.log = *std::move(log);
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/", test, "_", name);
    std::filesystem::remove_all(path);
    auto store = store::Store::Open(path);
    EXPECT_TRUE(store.ok()) << store.status();
    r.store = *std::move(store);
    r.state = std::make_unique<StateMachine>(r.log.get(), r.store.get());
    EXPECT_TRUE(r.state->CatchUp().ok());
    return r;
  }

  // Waits until `r` applied through `index`.
  static bool AppliedThrough(const Replica& r, uint64_t index) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (r.store->applied_index() >= index) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  static EtcdCluster* cluster_;
};

EtcdCluster* ReplicatedStateTest::cluster_ = nullptr;

TEST_F(ReplicatedStateTest, ConcurrentWritesOnTwoReplicasConverge) {
  Replica a = Start("a");
  Replica b = Start("b");
  ASSERT_NE(a.state, nullptr);
  ASSERT_NE(b.state, nullptr);
  std::atomic<uint64_t> a_applied{0}, b_applied{0};
  a.state->StartFollowing([&](uint64_t i) { a_applied = i; });
  b.state->StartFollowing([&](uint64_t i) { b_applied = i; });

  // Each replica takes one proxy's audit stream (batches of 5) and some
  // tokens, from several threads at once, so that group commits on both
  // replicas race for the same indexes.
  constexpr uint64_t kBatches = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (Replica* r : {&a, &b}) {
    const std::string source = r == &a ? "proxy-a" : "proxy-b";
    writers.emplace_back([r, source, &failures] {
      for (uint64_t i = 0; i < kBatches; ++i) {
        if (!r->state->Commit(AuditEntry(source, i * 5 + 1, i * 5 + 5)).ok()) {
          ++failures;
        }
      }
    });
    for (int t = 0; t < 2; ++t) {
      writers.emplace_back([r, source, t, &failures] {
        for (int i = 0; i < 10; ++i) {
          if (!r->state->Commit(TokenEntry(absl::StrCat(source, "-", t, "-", i)))
                   .ok()) {
            ++failures;
          }
        }
      });
    }
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);

  auto end = a.log->Refresh();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, 2 * kBatches + 2 * 2 * 10);  // every commit, once
  ASSERT_TRUE(AppliedThrough(a, *end));
  ASSERT_TRUE(AppliedThrough(b, *end));
  EXPECT_EQ(a_applied.load() > 0 || b_applied.load() > 0, true);

  // The same audit tree on both: same size, same root.
  audit::Ledger ledger_a(a.store.get()), ledger_b(b.store.get());
  auto tree_a = ledger_a.Tree();
  auto tree_b = ledger_b.Tree();
  ASSERT_TRUE(tree_a.ok() && tree_b.ok());
  EXPECT_EQ(tree_a->size(), 2 * kBatches * 5);
  EXPECT_EQ(tree_a->size(), tree_b->size());
  EXPECT_EQ(tree_a->Root(), tree_b->Root());
  for (const char* source : {"proxy-a", "proxy-b"}) {
    EXPECT_EQ(*ledger_a.Acknowledged(source), kBatches * 5);
    EXPECT_EQ(*ledger_b.Acknowledged(source), kBatches * 5);
  }
  // Every token on both, whichever replica took it.
  for (const char* source : {"proxy-a", "proxy-b"}) {
    for (int t = 0; t < 2; ++t) {
      for (int i = 0; i < 10; ++i) {
        const std::string key =
            absl::StrCat(kTokenPrefix, source, "-", t, "-", i);
        EXPECT_TRUE(a.store->Get(store::Column::kTokens, key).ok()) << key;
        EXPECT_TRUE(b.store->Get(store::Column::kTokens, key).ok()) << key;
      }
    }
  }

  // A replica started afterwards (an empty store) catches up to the same.
  Replica c = Start("c");
  ASSERT_NE(c.state, nullptr);
  audit::Ledger ledger_c(c.store.get());
  EXPECT_EQ(c.store->applied_index(), *end);
  EXPECT_EQ(ledger_c.Tree()->Root(), tree_a->Root());
}

// Sync (a read made current) while the replica's follower applies what
// another replica writes: the follower may get past where Sync asked the
// log to end before Sync takes the lock. That is not data loss (it was
// reported as such, and every token was refused for that request).
TEST_F(ReplicatedStateTest, SyncRacingTheFollowerIsNotDataLoss) {
  Replica a = Start("a");
  Replica b = Start("b");
  ASSERT_NE(a.state, nullptr);
  ASSERT_NE(b.state, nullptr);
  b.state->StartFollowing(nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> syncs{0};
  absl::Status first_error;
  std::thread reader([&] {
    while (!done) {
      const absl::Status s = b.state->Sync();
      ++syncs;
      if (!s.ok() && first_error.ok()) first_error = s;
    }
  });
  for (uint64_t i = 1; i <= 300; ++i) {
    ASSERT_TRUE(a.state->Commit(AuditEntry("proxy-a", i, i)).ok());
  }
  done = true;
  reader.join();
  EXPECT_TRUE(first_error.ok()) << first_error << " after " << syncs << " syncs";
  EXPECT_GT(syncs.load(), 10);
  b.state->StopFollowing();
}

// Red team: with every replica stopped, the log's last batches deleted and
// other batches written in their place, a replica that had applied the
// deleted ones started again without complaint, its state forked from the
// others'. It now checks that its last applied entry is still the one it
// applied.
TEST_F(ReplicatedStateTest, ALogRewrittenUnderAStoppedReplicaIsDataLoss) {
  const std::string test =
      ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const std::string prefix = absl::StrCat("/warden/", test, "/log/");
  const std::string path = absl::StrCat(::testing::TempDir(), "/", test, "_a");
  std::filesystem::remove_all(path);
  {
    auto log = log::EtcdLog::Open(cluster_->Options(prefix));
    ASSERT_TRUE(log.ok()) << log.status();
    auto store = store::Store::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    StateMachine state(log->get(), store->get());
    ASSERT_TRUE(state.CatchUp().ok());
    for (const char* id : {"t1", "t2-revoked", "t3"}) {
      ASSERT_TRUE(state.Commit(TokenEntry(id)).ok());
    }
  }
  // Behind Warden's back: the last two batches go.
  auto kv = cluster_->RawKv();
  const std::vector<std::string> keys = cluster_->KeysOf(prefix);
  ASSERT_EQ(keys.size(), 3u);
  for (int i = 1; i < 3; ++i) {
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(keys[i]);
    etcdserverpb::DeleteRangeResponse done;
    grpc::ClientContext c;
    ASSERT_TRUE(kv->DeleteRange(&c, del, &done).ok());
  }
  // Another replica, started on what is left, writes the log long again.
  Replica c = Start("c");
  ASSERT_NE(c.state, nullptr);
  ASSERT_TRUE(c.state->Commit(TokenEntry("on-c-1")).ok());
  ASSERT_TRUE(c.state->Commit(TokenEntry("on-c-2")).ok());
  // The first replica starts again on its store.
  auto log = log::EtcdLog::Open(cluster_->Options(prefix));
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ((*log)->LastIndex(), 3u);
  auto store = store::Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  StateMachine state(log->get(), store->get());
  const absl::Status started = state.CatchUp();
  EXPECT_EQ(started.code(), absl::StatusCode::kDataLoss) << started;
  EXPECT_NE(started.message().find("rewritten"), std::string::npos) << started;
}

TEST_F(ReplicatedStateTest, IndexBoundEntriesAreRebuiltWhenAnotherReplicaWins) {
  // A policy revision is its log index and is signed into the bundle: when
  // two replicas race, the loser must rebuild for the next index, never
  // store a bundle whose revision is not its index.
  Replica a = Start("a");
  Replica b = Start("b");
  ASSERT_NE(a.state, nullptr);
  ASSERT_NE(b.state, nullptr);
  std::atomic<int> builds{0};
  auto commit = [&builds](StateMachine* state) {
    return state->CommitAt(
        [&builds](uint64_t index) -> absl::StatusOr<warden::v1::LogEntry> {
          ++builds;
          warden::v1::LogEntry entry;
          entry.mutable_put_bundle()->mutable_signed_bundle()->set_revision(
              index);
          return entry;
        });
  };
  std::vector<absl::StatusOr<uint64_t>> got_a, got_b;
  std::thread ta([&] {
    for (int i = 0; i < 15; ++i) got_a.push_back(commit(a.state.get()));
  });
  std::thread tb([&] {
    for (int i = 0; i < 15; ++i) got_b.push_back(commit(b.state.get()));
  });
  ta.join();
  tb.join();
  std::vector<bool> seen(31, false);
  for (const auto* got : {&got_a, &got_b}) {
    for (const auto& r : *got) {
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_GE(*r, 1u);
      ASSERT_LE(*r, 30u);
      EXPECT_FALSE(seen[*r]) << "index " << *r << " given twice";
      seen[*r] = true;
    }
  }
  EXPECT_GE(builds.load(), 30);
  ASSERT_TRUE(a.state->CatchUp().ok());
  ASSERT_TRUE(b.state->CatchUp().ok());
  // Each replica holds revision i at index i for all 30, and the same head.
  for (Replica* r : {&a, &b}) {
    EXPECT_EQ(*r->store->Get(store::Column::kBundles, kHeadKey), "30");
    for (uint64_t i = 1; i <= 30; ++i) {
      auto record = r->store->Get(store::Column::kBundles, RevisionKey(i));
      ASSERT_TRUE(record.ok()) << i;
      warden::v1::BundleRecord parsed;
      ASSERT_TRUE(parsed.ParseFromString(*record));
      EXPECT_EQ(parsed.signed_bundle().revision(), i);
    }
  }
}

}  // namespace
}  // namespace warden::controlplane::state
