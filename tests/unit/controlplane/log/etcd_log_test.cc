// EtcdLog against a real etcd (Debian's etcd-server), started by the test on
// 127.0.0.1 with TLS and client-certificate authentication.
#include "controlplane/log/etcd_log.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controlplane/log/etcd_batch.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"
#include "third_party/etcd/rpc.grpc.pb.h"

namespace warden::controlplane::log {
namespace {

using ::warden::testing::EtcdCluster;

std::string TestDir(const std::string& what) {
  return ::testing::TempDir() + "/etcd_" + what;
}

class EtcdLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new EtcdCluster(TestDir("one"), 1);
    std::string why;
    ASSERT_TRUE(cluster_->Start(&why)) << why;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  // A fresh prefix per test: the tests share one etcd.
  std::string Prefix() const {
    return absl::StrCat(
        "/warden/test/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  std::unique_ptr<EtcdLog> OpenLog() {
    auto log = EtcdLog::Open(cluster_->Options(Prefix()));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }

  static EtcdCluster* cluster_;
};

EtcdCluster* EtcdLogTest::cluster_ = nullptr;

TEST_F(EtcdLogTest, AppendsAndReadsInOrder) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->LastIndex(), 0u);
  EXPECT_EQ(*log->Append("one"), 1u);
  EXPECT_EQ(*log->AppendBatch({"two", "three"}), 2u);
  EXPECT_EQ(log->LastIndex(), 3u);

  auto all = log->Read(1, 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].index, 1u);
  EXPECT_EQ((*all)[0].data, "one");
  EXPECT_EQ((*all)[2].index, 3u);
  EXPECT_EQ((*all)[2].data, "three");

  auto middle = log->Read(2, 1);
  ASSERT_TRUE(middle.ok());
  ASSERT_EQ(middle->size(), 1u);
  EXPECT_EQ((*middle)[0].data, "two");

  EXPECT_TRUE(log->Read(4, 5)->empty());  // the end: nothing yet
  EXPECT_EQ(log->Read(5, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log->Read(0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->AppendBatch({}).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A second client (another replica) finds the same end and entries.
  auto other = OpenLog();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->LastIndex(), 3u);
  EXPECT_EQ((*other->Read(1, 3))[1].data, "two");
}

TEST_F(EtcdLogTest, ATakenIndexIsNeverOverwritten) {
  auto first = OpenLog();
  auto second = OpenLog();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_EQ(*first->AppendBatchAt(1, {"first's"}), 1u);
  // The second replica, unaware, tries the same index.
  auto lost = second->AppendBatchAt(1, {"second's", "and more"});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted) << lost.status();
  EXPECT_GE(second->LastIndex(), 1u);  // it learned where the log ends
  // Nor is a taken index skipped over or overwritten by a batch that
  // starts lower.
  ASSERT_EQ(*first->AppendBatchAt(2, {"two"}), 2u);
  EXPECT_EQ(second->AppendBatchAt(2, {"x", "y"}).status().code(),
            absl::StatusCode::kAborted);
  auto entries = first->Read(1, 10);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].data, "first's");
  EXPECT_EQ((*entries)[1].data, "two");
  // An append at the true end succeeds.
  EXPECT_EQ(*second->AppendBatchAt(3, {"three"}), 3u);
}

TEST_F(EtcdLogTest, RacingWritersGetGapFreeDistinctIndexes) {
  constexpr int kWriters = 3;
  constexpr int kAppends = 60;
  std::vector<std::unique_ptr<EtcdLog>> logs;
  for (int i = 0; i < kWriters; ++i) {
    logs.push_back(OpenLog());
    ASSERT_NE(logs.back(), nullptr);
  }
  std::vector<std::map<uint64_t, std::string>> got(kWriters);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kAppends; ++i) {
        std::vector<std::string> batch;
        for (int k = 0; k <= i % 3; ++k) {
          batch.push_back(absl::StrCat("w", w, "-", i, "-", k));
        }
        auto first = logs[w]->AppendBatch(batch);
        if (!first.ok()) {
          ++failures;
          continue;
        }
        for (size_t k = 0; k < batch.size(); ++k) {
          got[w][*first + k] = batch[k];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  size_t total = 0;
  for (const auto& g : got) total += g.size();
  // Read pages (a call returns what fits in one etcd request).
  std::vector<Entry> all;
  while (true) {
    auto page = logs[0]->Read(all.size() + 1, total + 10);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    all.insert(all.end(), page->begin(), page->end());
  }
  const std::vector<Entry>* entries = &all;
  ASSERT_EQ(entries->size(), total);  // nothing lost, nothing extra
  for (size_t i = 0; i < entries->size(); ++i) {
    const Entry& e = (*entries)[i];
    EXPECT_EQ(e.index, i + 1);
    // Each index holds what exactly one writer was told it appended there.
    int owners = 0;
    for (const auto& g : got) {
      auto it = g.find(e.index);
      if (it != g.end()) {
        ++owners;
        EXPECT_EQ(it->second, e.data) << "index " << e.index;
      }
    }
    EXPECT_EQ(owners, 1) << "index " << e.index;
  }
  // A writer's batch is contiguous: w0-5-0..2 sit at consecutive indexes.
  for (const auto& g : got) {
    for (auto it = g.begin(); it != g.end(); ++it) {
      const std::string& v = it->second;
      if (v.back() == '1') {
        auto prev = g.find(it->first - 1);
        ASSERT_NE(prev, g.end());
        EXPECT_EQ(prev->second.substr(0, prev->second.size() - 1),
                  v.substr(0, v.size() - 1));
      }
    }
  }
}

TEST_F(EtcdLogTest, AReplicaLearnsOfOtherWritersWithoutAsking) {
  auto writer = OpenLog();
  auto follower = OpenLog();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(follower, nullptr);
  const absl::Time start = absl::Now();
  EXPECT_EQ(follower->WaitBeyond(0, start + absl::Milliseconds(200)), 0u);
  ASSERT_TRUE(writer->AppendBatch({"a", "b"}).ok());
  // The watch reports it; no Refresh or Read by the follower.
  EXPECT_EQ(follower->WaitBeyond(1, absl::Now() + absl::Seconds(10)), 2u);
}

TEST_F(EtcdLogTest, BatchesOverATransactionsLimitAreRefusedWhole) {
  EtcdOptions options = cluster_->Options(Prefix());
  options.max_batch_entries = 4;
  options.max_batch_bytes = 100;
  auto log = EtcdLog::Open(options);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->AppendBatch({"1", "2", "3", "4", "5"}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*log)->Append(std::string(101, 'x')).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*log)->LastIndex(), 0u);
  EXPECT_TRUE((*log)->Read(1, 10)->empty());  // nothing of them was written
  EXPECT_EQ(*(*log)->AppendBatch({"1", "2", "3", "4"}), 1u);
}

TEST_F(EtcdLogTest, EtcdRefusesClientsWithoutTheClusterCertificate) {
  // A certificate from another CA.
  EtcdOptions stranger = cluster_->Options(Prefix());
  stranger.cert_file = cluster_->dir() + "/stranger.pem";
  stranger.key_file = cluster_->dir() + "/stranger.key";
  stranger.call_timeout = absl::Seconds(2);
  auto refused = EtcdLog::Open(stranger);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable)
      << refused.status();
  EXPECT_NE(refused.status().message().find("etcd at 127.0.0.1:"),
            std::string::npos)
      << refused.status();

  // Plaintext to a TLS etcd.
  EtcdOptions plain = cluster_->Options(Prefix());
  plain.plaintext = true;
  plain.call_timeout = absl::Seconds(2);
  EXPECT_FALSE(EtcdLog::Open(plain).ok());

  // TLS without a client certificate is refused before any connection.
  EtcdOptions partial = cluster_->Options(Prefix());
  partial.key_file.clear();
  auto missing = EtcdLog::Open(partial);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);

  EtcdOptions unreadable = cluster_->Options(Prefix());
  unreadable.ca_file = cluster_->dir() + "/no-such-ca.pem";
  auto unread = EtcdLog::Open(unreadable);
  EXPECT_EQ(unread.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unread.status().message().find("no-such-ca.pem"),
            std::string::npos);

  EtcdOptions no_key = cluster_->Options(Prefix());
  no_key.mac_key.clear();
  EXPECT_EQ(EtcdLog::Open(no_key).status().code(),
            absl::StatusCode::kInvalidArgument);

  EtcdOptions bad_prefix = cluster_->Options("/warden/no-slash");
  EXPECT_EQ(EtcdLog::Open(bad_prefix).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Waits until `log` refuses appends with DATA_LOSS (its watch saw the edit).
absl::Status AppendUntilDataLoss(EtcdLog* log) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::Status appended;
  while (absl::Now() < deadline) {
    appended = log->Append("after the edit").status();
    if (absl::IsDataLoss(appended)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return appended;
}

TEST_F(EtcdLogTest, ADeletedBatchIsDataLossNotAShorterLog) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendBatch({"one", "two"}).ok());
  ASSERT_TRUE(log->Append("three").ok());
  auto kv = cluster_->RawKv();
  const std::vector<std::string> keys = cluster_->KeysOf(Prefix());
  ASSERT_EQ(keys.size(), 2u);
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(keys[0]);
  etcdserverpb::DeleteRangeResponse deleted;
  grpc::ClientContext context;
  ASSERT_TRUE(kv->DeleteRange(&context, del, &deleted).ok());
  ASSERT_EQ(deleted.deleted(), 1);

  // The running replica's watch saw it: it stops, never renumbers.
  absl::Status appended = AppendUntilDataLoss(log.get());
  EXPECT_EQ(appended.code(), absl::StatusCode::kDataLoss) << appended;
  EXPECT_NE(appended.message().find("deleted behind Warden's back"),
            std::string::npos)
      << appended;
  auto read = log->Read(1, 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(EtcdLogTest, AChangedBatchIsDataLoss) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("the token as written").ok());
  auto kv = cluster_->RawKv();
  const std::vector<std::string> keys = cluster_->KeysOf(Prefix());
  ASSERT_EQ(keys.size(), 1u);
  // The same key, other content (an applied batch rewritten).
  etcdserverpb::PutRequest put;
  put.set_key(keys[0]);
  put.set_value("\x0a\x05forge");
  etcdserverpb::PutResponse done;
  grpc::ClientContext context;
  ASSERT_TRUE(kv->Put(&context, put, &done).ok());
  absl::Status appended = AppendUntilDataLoss(log.get());
  EXPECT_EQ(appended.code(), absl::StatusCode::kDataLoss) << appended;
  EXPECT_NE(appended.message().find("changed behind Warden's back"),
            std::string::npos)
      << appended;
}

TEST_F(EtcdLogTest, AKeyThatIsNotABatchIsDataLoss) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("one").ok());
  auto kv = cluster_->RawKv();
  etcdserverpb::PutRequest put;
  put.set_key(Prefix() + "not-a-batch");
  put.set_value("x");
  etcdserverpb::PutResponse done;
  grpc::ClientContext context;
  ASSERT_TRUE(kv->Put(&context, put, &done).ok());
  // Refused at start, and by the running client's watch.
  auto refused = EtcdLog::Open(cluster_->Options(Prefix()));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss)
      << refused.status();
  absl::Status appended = AppendUntilDataLoss(log.get());
  EXPECT_EQ(appended.code(), absl::StatusCode::kDataLoss) << appended;
}

TEST_F(EtcdLogTest, ABatchWrittenBehindWardensBackIsRefusedNotApplied) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("genuine").ok());
  auto kv = cluster_->RawKv();
  const std::vector<std::string> keys = cluster_->KeysOf(Prefix());
  ASSERT_EQ(keys.size(), 1u);
  std::string genuine_value;
  {
    etcdserverpb::RangeRequest get;
    get.set_key(keys[0]);
    etcdserverpb::RangeResponse got;
    grpc::ClientContext context;
    ASSERT_TRUE(kv->Range(&context, get, &got).ok());
    genuine_value = got.kvs(0).value();
  }
  auto put = [&](const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    etcdserverpb::PutResponse done;
    grpc::ClientContext context;
    ASSERT_TRUE(kv->Put(&context, request, &done).ok());
  };
  // A well-formed batch under a well-formed key, as someone with write
  // access to etcd (but not the replicas' shared key) could add.
  warden::log::EtcdBatch forged;
  forged.add_entries("an admin token, say");
  put(Prefix() + "ffffffffffffffff/00000000000000000001-1",
      forged.SerializeAsString());
  ASSERT_EQ(log->WaitBeyond(1, absl::Now() + absl::Seconds(10)), 2u);
  auto read = log->Read(2, 1);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("not authenticated"),
            std::string::npos)
      << read.status();
  EXPECT_EQ((*log->Read(1, 1))[0].data, "genuine");  // before it: readable

  // A genuine batch copied under another key (a replay): refused too.
  auto other = EtcdLog::Open(cluster_->Options(absl::StrCat(
      "/warden/test/", "replay-", Prefix().size(), "/")));
  ASSERT_TRUE(other.ok());
  const std::string other_prefix =
      absl::StrCat("/warden/test/", "replay-", Prefix().size(), "/");
  put(other_prefix + keys[0].substr(Prefix().size(), 16) +
          "/00000000000000000009-1",
      genuine_value);
  ASSERT_EQ((*other)->WaitBeyond(0, absl::Now() + absl::Seconds(10)), 1u);
  auto replayed = (*other)->Read(1, 1);
  EXPECT_EQ(replayed.status().code(), absl::StatusCode::kDataLoss)
      << replayed.status();
}

// Red team: a genuine batch deleted and put back unchanged (its MAC still
// valid) lands at the end of the log; a token's creation moved after its
// revocation brought the token back on replicas that started afterwards.
// Each batch names where its writer saw the log end, so a replica reading
// the log from the start refuses it.
TEST_F(EtcdLogTest, AGenuineBatchPutBackOutOfOrderIsRefused) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("create token T").ok());
  ASSERT_TRUE(log->Append("revoke token T").ok());
  ASSERT_TRUE(log->Append("something later").ok());
  auto kv = cluster_->RawKv();
  const std::vector<std::string> keys = cluster_->KeysOf(Prefix());
  ASSERT_EQ(keys.size(), 3u);
  std::string value;
  {
    etcdserverpb::RangeRequest get;
    get.set_key(keys[0]);
    etcdserverpb::RangeResponse got;
    grpc::ClientContext context;
    ASSERT_TRUE(kv->Range(&context, get, &got).ok());
    value = got.kvs(0).value();
  }
  {
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(keys[0]);
    etcdserverpb::DeleteRangeResponse done;
    grpc::ClientContext context;
    ASSERT_TRUE(kv->DeleteRange(&context, del, &done).ok());
  }
  {
    etcdserverpb::PutRequest put;
    put.set_key(keys[0]);
    put.set_value(value);
    etcdserverpb::PutResponse done;
    grpc::ClientContext context;
    ASSERT_TRUE(kv->Put(&context, put, &done).ok());
  }
  // A replica that starts now reads "revoke", "later", "create".
  auto fresh = OpenLog();
  ASSERT_NE(fresh, nullptr);
  ASSERT_EQ(fresh->LastIndex(), 3u);
  auto read = fresh->Read(1, 10);
  ASSERT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  EXPECT_NE(read.status().message().find("out of their order"),
            std::string::npos)
      << read.status();
}

// Three members; the endpoint a replica talks to dies: it moves to the next.
TEST(EtcdLogFailoverTest, AppendsContinueWhenAMemberDies) {
  EtcdCluster cluster(TestDir("three"), 3);
  std::string why;
  ASSERT_TRUE(cluster.Start(&why)) << why;
  auto log = EtcdLog::Open(cluster.Options("/warden/failover/"));
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(*(*log)->Append("before"), 1u);
  cluster.Kill(0);  // the first endpoint, the one in use
  // A call may fail while the client finds out; it never loses an entry.
  uint64_t index = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto appended = (*log)->Append("after");
    if (appended.ok()) {
      index = *appended;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(index, 2u);
  auto entries = (*log)->Read(1, 10);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->front().data, "before");
  EXPECT_EQ(entries->back().data, "after");
}

}  // namespace
}  // namespace warden::controlplane::log
