// The state machine's group commit: concurrent commits share log appends
// and store batches, yet each gets its own index, log order is apply
// order, and a replay of the log rebuilds the same state.
#include "controlplane/state/state_machine.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/store/store.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/state.pb.h"
#include "tests/unit/controlplane/state/entries.h"

namespace warden::controlplane::state {
namespace {

std::string FreshPath(const std::string& what) {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::string path =
      ::testing::TempDir() + "/state_" + info->name() + "_" + what;
  std::filesystem::remove_all(path);
  return path;
}

// A log that counts how many entries each append carried, and can hold
// the first append until released (so that commits queue behind it).
class RecordingLog final : public log::Log {
 public:
  explicit RecordingLog(std::unique_ptr<log::RocksDbLog> log)
      : log_(std::move(log)) {}

  absl::StatusOr<uint64_t> Append(std::string entry) override {
    Record(1);
    return log_->Append(std::move(entry));
  }
  absl::StatusOr<uint64_t> AppendBatch(
      std::vector<std::string> entries) override {
    Record(entries.size());
    return log_->AppendBatch(std::move(entries));
  }
  absl::StatusOr<std::vector<log::Entry>> Read(uint64_t from,
                                               size_t max) override {
    return log_->Read(from, max);
  }
  uint64_t LastIndex() const override { return log_->LastIndex(); }

  void HoldFirstAppend() { hold_ = true; }
  void WaitUntilHeld() { held_.WaitForNotification(); }
  void Release() { release_.Notify(); }
  std::vector<size_t> sizes() {
    absl::MutexLock lock(&mu_);
    return sizes_;
  }

 private:
  void Record(size_t n) {
    {
      absl::MutexLock lock(&mu_);
      sizes_.push_back(n);
    }
    if (hold_.exchange(false)) {
      held_.Notify();
      release_.WaitForNotification();
    }
  }

  std::unique_ptr<log::RocksDbLog> log_;
  std::atomic<bool> hold_{false};
  absl::Notification held_, release_;
  absl::Mutex mu_;
  std::vector<size_t> sizes_ ABSL_GUARDED_BY(mu_);
};

using ::warden::controlplane::state::testing::AuditEntry;
using ::warden::controlplane::state::testing::TokenEntry;

class StateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = log::RocksDbLog::Open(FreshPath("log"));
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::make_unique<RecordingLog>(*std::move(log));
    auto store = store::Store::Open(FreshPath("store"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    sm_ = std::make_unique<StateMachine>(log_.get(), store_.get());
  }

  // Everything in the audit and tokens columns.
  static std::map<std::string, std::string> Contents(const store::Store& s) {
    std::map<std::string, std::string> out;
    for (auto column :
         {store::Column::kAudit, store::Column::kAuditLeaves,
          store::Column::kAuditHashes, store::Column::kAuditDigests,
          store::Column::kTokens}) {
      auto all = s.Scan(column, "");
      EXPECT_TRUE(all.ok());
      for (const auto& kv : *all) {
        out[absl::StrCat(store::ColumnName(column), ":", kv.key)] = kv.value;
      }
    }
    return out;
  }

  // A fresh store caught up from the same log.
  std::unique_ptr<store::Store> Replay() {
    auto store = store::Store::Open(FreshPath("replay"));
    EXPECT_TRUE(store.ok());
    StateMachine replay(log_.get(), store->get());
    EXPECT_TRUE(replay.CatchUp().ok());
    return *std::move(store);
  }

  std::unique_ptr<RecordingLog> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StateMachine> sm_;
};

TEST_F(StateMachineTest, CommitsQueuedBehindAWriteAreWrittenTogether) {
  log_->HoldFirstAppend();
  std::thread first([&] { ASSERT_TRUE(sm_->Commit(TokenEntry("t0")).ok()); });
  log_->WaitUntilHeld();
  // While the first commit's append is held, five more arrive.
  std::vector<std::thread> others;
  std::vector<absl::StatusOr<uint64_t>> results(5, absl::UnknownError(""));
  for (int i = 0; i < 5; ++i) {
    others.emplace_back([&, i] {
      results[i] = sm_->Commit(AuditEntry(absl::StrCat("prod/p", i), 1, 3));
    });
  }
  // Let them queue (they wait for the group being written).
  absl::SleepFor(absl::Milliseconds(200));
  log_->Release();
  first.join();
  for (auto& t : others) t.join();
  const std::vector<size_t> sizes = log_->sizes();
  ASSERT_EQ(sizes.size(), 2u) << "one append for the first, one for the rest";
  EXPECT_EQ(sizes[0], 1u);
  EXPECT_EQ(sizes[1], 5u);
  // Each commit has its own index, and its own entry at it.
  std::map<uint64_t, int> by_index;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_TRUE(by_index.emplace(*results[i], i).second);
  }
  EXPECT_EQ(by_index.begin()->first, 2u);
  EXPECT_EQ(by_index.rbegin()->first, 6u);
  auto entries = log_->Read(2, 5);
  ASSERT_TRUE(entries.ok());
  for (const auto& e : *entries) {
    warden::v1::LogEntry parsed;
    ASSERT_TRUE(parsed.ParseFromString(e.data));
    EXPECT_EQ(parsed.append_audit().source(),
              absl::StrCat("prod/p", by_index[e.index]));
  }
  // Applied, in log order: the store is at the last index, every source
  // has its three events, and the leaves follow the log's order.
  EXPECT_EQ(store_->applied_index(), 6u);
  audit::Ledger ledger(store_.get());
  EXPECT_EQ(ledger.Tree()->size(), 15u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(*ledger.Acknowledged(absl::StrCat("prod/p", i)), 3u);
  }
  auto leaves = ledger.Entries(0, 15, 100);
  ASSERT_TRUE(leaves.ok());
  for (size_t k = 0; k < 15; ++k) {
    const int source = by_index[2 + k / 3];
    EXPECT_NE((*leaves)[k].leaf().find(absl::StrCat(
                  "leaf of prod/p", source, " #", k % 3 + 1)),
              std::string::npos)
        << k;
  }
  EXPECT_EQ(Contents(*Replay()), Contents(*store_));
}

TEST_F(StateMachineTest, ConcurrentCommitsOfEveryKindMatchAReplay) {
  constexpr int kThreads = 6;
  constexpr int kCommits = 30;
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::map<uint64_t, std::string> committed;  // index -> what
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string source = absl::StrCat("prod/p", t);
      uint64_t next = 1;
      for (int c = 0; c < kCommits; ++c) {
        // Audit appends (some resending what is already there), and now
        // and then a token, which is applied in its own batch.
        warden::v1::LogEntry entry;
        std::string what;
        if (t == 0 && c % 5 == 0) {
          what = absl::StrCat("token t", c);
          entry = TokenEntry(absl::StrCat("t", c));
        } else {
          const uint64_t from = c % 4 == 3 && next > 2 ? next - 2 : next;
          entry = AuditEntry(source, from, next + 2);
          next += 3;
          what = absl::StrCat(source, " to ", next - 1);
        }
        auto index = sm_->Commit(entry);
        ASSERT_TRUE(index.ok()) << index.status();
        absl::MutexLock lock(&mu);
        EXPECT_TRUE(committed.emplace(*index, what).second);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(committed.size(), kThreads * kCommits);
  EXPECT_EQ(committed.begin()->first, 1u);
  EXPECT_EQ(committed.rbegin()->first, kThreads * kCommits);
  EXPECT_EQ(store_->applied_index(), kThreads * kCommits);
  audit::Ledger ledger(store_.get());
  // Thread 0 committed 6 tokens and 24 appends; the others 30 appends;
  // 3 new events each.
  EXPECT_EQ(ledger.Tree()->size(), (24 + 5 * 30) * 3u);
  EXPECT_EQ(*ledger.Acknowledged("prod/p0"), 24 * 3u);
  EXPECT_EQ(*ledger.Acknowledged("prod/p5"), 30 * 3u);
  EXPECT_TRUE(store_->Get(store::Column::kTokens, "tok/t25").ok());
  // Some commits shared an append (six threads, one writer at a time).
  size_t appends = log_->sizes().size();
  EXPECT_LT(appends, kThreads * kCommits);
  // The chain links every leaf to the one before, across batches.
  auto leaves = ledger.Entries(0, ledger.Tree()->size(), 100000);
  ASSERT_TRUE(leaves.ok());
  std::string previous(audit::kHashSize, '\0');
  for (const auto& e : *leaves) {
    ASSERT_EQ(e.leaf().substr(0, audit::kHashSize), previous) << e.index();
    previous = audit::LeafHash(e.leaf());
  }
  EXPECT_EQ(Contents(*Replay()), Contents(*store_));
}

TEST_F(StateMachineTest, AFailedApplyFailsTheRestOfItsGroup) {
  ASSERT_TRUE(sm_->Commit(AuditEntry("prod/a", 1, 2)).ok());
  // A token without an id is refused when applied: it is in the log,
  // but neither it nor what follows it in its group is applied.
  log_->HoldFirstAppend();
  std::thread first([&] { ASSERT_TRUE(sm_->Commit(TokenEntry("ok")).ok()); });
  log_->WaitUntilHeld();
  absl::StatusOr<uint64_t> bad = absl::UnknownError(""), after = bad;
  std::thread t1([&] { bad = sm_->Commit(TokenEntry("")); });
  absl::SleepFor(absl::Milliseconds(100));
  std::thread t2([&] { after = sm_->Commit(AuditEntry("prod/b", 1, 2)); });
  absl::SleepFor(absl::Milliseconds(100));
  log_->Release();
  first.join();
  t1.join();
  t2.join();
  ASSERT_EQ(log_->sizes().back(), 2u);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(after.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->applied_index(), 2u);
  EXPECT_EQ(log_->LastIndex(), 4u);
  // Nothing of the failed part reached the store.
  audit::Ledger ledger(store_.get());
  EXPECT_EQ(ledger.Tree()->size(), 2u);
  EXPECT_EQ(*ledger.Acknowledged("prod/b"), 0u);
}

TEST_F(StateMachineTest, CatchUpAppliesRunsOfAppendsAsTheyWereCommitted) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(sm_->Commit(AuditEntry(absl::StrCat("prod/p", i % 3),
                                       1 + (i / 3) * 2, 2 + (i / 3) * 2))
                    .ok());
    if (i % 7 == 0) ASSERT_TRUE(sm_->Commit(TokenEntry(absl::StrCat("t", i))).ok());
  }
  auto replayed = Replay();
  EXPECT_EQ(replayed->applied_index(), store_->applied_index());
  EXPECT_EQ(Contents(*replayed), Contents(*store_));
  audit::Ledger a(store_.get()), b(replayed.get());
  EXPECT_EQ(a.Tree()->Root(), b.Tree()->Root());
  EXPECT_EQ(a.Tree()->size(), 40u);
}

// The store's applies are not synced, nor in RocksDB's write-ahead log: a
// process that dies after its commits returned leaves them in the log
// only, and CatchUp makes the store whole again.
TEST(StateMachineCrashTest, CommittedEntriesSurviveAProcessDeathThroughTheLog) {
  const std::string log_path = FreshPath("log");
  const std::string store_path = FreshPath("store");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto log = log::RocksDbLog::Open(log_path);
    auto store = store::Store::Open(store_path);
    if (!log.ok() || !store.ok()) _exit(2);
    StateMachine sm(log->get(), store->get());
    for (int i = 0; i < 30; ++i) {
      if (!sm.Commit(AuditEntry(absl::StrCat("prod/p", i % 3), 1 + (i / 3) * 4,
                                4 + (i / 3) * 4))
               .ok()) {
        _exit(3);
      }
      if (i % 10 == 0 && !sm.Commit(TokenEntry(absl::StrCat("t", i))).ok()) {
        _exit(4);
      }
    }
    _exit(0);  // committed, acknowledged, never closed
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto log = log::RocksDbLog::Open(log_path);
  auto store = store::Store::Open(store_path);
  ASSERT_TRUE(log.ok() && store.ok());
  EXPECT_EQ((*log)->LastIndex(), 33u);
  EXPECT_LT((*store)->applied_index(), 33u) << "nothing was flushed";
  StateMachine sm(log->get(), store->get());
  ASSERT_TRUE(sm.CatchUp().ok());
  EXPECT_EQ((*store)->applied_index(), 33u);
  audit::Ledger ledger(store->get());
  EXPECT_EQ(ledger.Tree()->size(), 120u);
  for (int p = 0; p < 3; ++p) {
    EXPECT_EQ(*ledger.Acknowledged(absl::StrCat("prod/p", p)), 40u);
  }
  EXPECT_TRUE((*store)->Get(store::Column::kTokens, "tok/t20").ok());
  // The same tree as a replay into a fresh store, and the next commit
  // goes on from it.
  auto fresh = store::Store::Open(FreshPath("fresh"));
  ASSERT_TRUE(fresh.ok());
  StateMachine replay(log->get(), fresh->get());
  ASSERT_TRUE(replay.CatchUp().ok());
  EXPECT_EQ(audit::Ledger(fresh->get()).Tree()->Root(), ledger.Tree()->Root());
  ASSERT_TRUE(sm.Commit(AuditEntry("prod/p0", 41, 41)).ok());
  EXPECT_EQ(ledger.Tree()->size(), 121u);
}

}  // namespace
}  // namespace warden::controlplane::state
