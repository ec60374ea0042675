#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/log/rocksdb_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace warden::controlplane::log {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

MATCHER_P2(IsEntry, index, data, "") {
  return arg.index == static_cast<uint64_t>(index) && arg.data == data;
}

std::string FreshPath() {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::string path = ::testing::TempDir() + "/log_" + info->test_suite_name() +
                     "_" + info->name();
  std::filesystem::remove_all(path);
  return path;
}

std::unique_ptr<RocksDbLog> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<RocksDbLog>> log = RocksDbLog::Open(path);
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? std::move(*log) : nullptr;
}

// The log's key encoding (8-byte big-endian index), for writing bad logs.
std::string Key(uint64_t index) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, index >>= 8) out[i] = char(index & 0xff);
  return out;
}

void WriteRaw(const std::string& path, const std::vector<uint64_t>& indexes) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, &db).ok());
  for (uint64_t i : indexes) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), Key(i), "x").ok());
  }
  delete db;
}

TEST(RocksDbLogTest, EmptyLog) {
  std::unique_ptr<RocksDbLog> log = OpenOrDie(FreshPath());
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->LastIndex(), 0u);
  absl::StatusOr<std::vector<Entry>> entries = log->Read(1, 10);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, IsEmpty());
  EXPECT_EQ(log->Read(0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Read(2, 10).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(RocksDbLogTest, AppendGivesGapFreeIndexesFromOneAndReadsInOrder) {
  std::unique_ptr<RocksDbLog> log = OpenOrDie(FreshPath());
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(*log->Append("a"), 1u);
  EXPECT_EQ(*log->Append(""), 2u);  // empty entries are entries too.
  EXPECT_EQ(*log->Append(std::string("b\0c", 3)), 3u);
  EXPECT_EQ(*log->Append("d"), 4u);
  EXPECT_EQ(log->LastIndex(), 4u);

  EXPECT_THAT(*log->Read(1, 100),
              ElementsAre(IsEntry(1, "a"), IsEntry(2, ""),
                          IsEntry(3, std::string("b\0c", 3)), IsEntry(4, "d")));
  EXPECT_THAT(*log->Read(2, 2),
              ElementsAre(IsEntry(2, ""), IsEntry(3, std::string("b\0c", 3))));
  EXPECT_THAT(*log->Read(4, 1), ElementsAre(IsEntry(4, "d")));
  EXPECT_THAT(*log->Read(5, 10), IsEmpty());
  EXPECT_THAT(*log->Read(1, 0), IsEmpty());
  EXPECT_EQ(log->Read(6, 10).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(RocksDbLogTest, EntriesSurviveReopenAndAppendingContinues) {
  std::string path = FreshPath();
  {
    std::unique_ptr<RocksDbLog> log = OpenOrDie(path);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append("one").ok());
    ASSERT_TRUE(log->Append("two").ok());
  }
  std::unique_ptr<RocksDbLog> log = OpenOrDie(path);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->LastIndex(), 2u);
  EXPECT_EQ(*log->Append("three"), 3u);
  EXPECT_THAT(
      *log->Read(1, 10),
      ElementsAre(IsEntry(1, "one"), IsEntry(2, "two"), IsEntry(3, "three")));
}

TEST(RocksDbLogTest, ConcurrentAppendsGetDistinctConsecutiveIndexes) {
  std::unique_ptr<RocksDbLog> log = OpenOrDie(FreshPath());
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  absl::Mutex mu;
  std::map<uint64_t, std::string> appended;  // index -> data
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string data = absl::StrCat("t", t, "-", i);
        absl::StatusOr<uint64_t> index = log->Append(data);
        ASSERT_TRUE(index.ok()) << index.status();
        absl::MutexLock lock(&mu);
        EXPECT_TRUE(appended.emplace(*index, data).second)
            << "index " << *index << " given twice";
      }
    });
  }
  // A reader racing the writers only ever sees gap-free prefixes.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::vector<Entry>> seen = log->Read(1, 1000);
    ASSERT_TRUE(seen.ok()) << seen.status();
    for (size_t j = 0; j < seen->size(); ++j) {
      EXPECT_EQ((*seen)[j].index, j + 1);
    }
  }
  for (std::thread& thread : threads) thread.join();

  constexpr uint64_t kTotal = kThreads * kPerThread;
  ASSERT_EQ(appended.size(), kTotal);
  EXPECT_EQ(appended.begin()->first, 1u);
  EXPECT_EQ(appended.rbegin()->first, kTotal);
  EXPECT_EQ(log->LastIndex(), kTotal);
  std::vector<Entry> entries = *log->Read(1, kTotal);
  ASSERT_EQ(entries.size(), kTotal);
  for (const Entry& entry : entries) {
    EXPECT_EQ(entry.data, appended[entry.index]) << entry.index;
  }
}

TEST(RocksDbLogTest, AppendBatchStoresConsecutiveEntriesAndSurvivesReopen) {
  std::string path = FreshPath();
  {
    std::unique_ptr<RocksDbLog> log = OpenOrDie(path);
    ASSERT_NE(log, nullptr);
    ASSERT_EQ(*log->Append("one"), 1u);
    absl::StatusOr<uint64_t> first = log->AppendBatch({"two", "three", "four"});
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(*first, 2u);
    EXPECT_EQ(log->LastIndex(), 4u);
    EXPECT_EQ(*log->AppendBatch({"five"}), 5u);
    // Nothing to append is a caller's mistake, and changes nothing.
    EXPECT_EQ(log->AppendBatch({}).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(log->LastIndex(), 5u);
  }
  std::unique_ptr<RocksDbLog> log = OpenOrDie(path);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->LastIndex(), 5u);
  EXPECT_EQ(*log->Append("six"), 6u);
  EXPECT_THAT(*log->Read(1, 10),
              ElementsAre(IsEntry(1, "one"), IsEntry(2, "two"),
                          IsEntry(3, "three"), IsEntry(4, "four"),
                          IsEntry(5, "five"), IsEntry(6, "six")));
}

TEST(RocksDbLogTest, ConcurrentBatchesKeepTheirEntriesTogether) {
  std::unique_ptr<RocksDbLog> log = OpenOrDie(FreshPath());
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 4;
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 3;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<std::string> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          batch.push_back(absl::StrCat("t", t, "-b", b, "-", i));
        }
        ASSERT_TRUE(log->AppendBatch(std::move(batch)).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  constexpr uint64_t kTotal = kThreads * kBatches * kPerBatch;
  std::vector<Entry> entries = *log->Read(1, kTotal);
  ASSERT_EQ(entries.size(), kTotal);
  // Each batch's entries are consecutive and in their order.
  for (size_t i = 0; i < entries.size(); i += kPerBatch) {
    const std::string prefix =
        entries[i].data.substr(0, entries[i].data.rfind('-') + 1);
    for (int k = 0; k < kPerBatch; ++k) {
      EXPECT_EQ(entries[i + k].index, i + k + 1);
      EXPECT_EQ(entries[i + k].data, absl::StrCat(prefix, k));
    }
  }
}

TEST(RocksDbLogTest, OpeningARegularFileIsAClearError) {
  std::string path = FreshPath();
  std::ofstream(path) << "not a log";
  absl::StatusOr<std::unique_ptr<RocksDbLog>> log = RocksDbLog::Open(path);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr(path));
}

TEST(RocksDbLogTest, OpeningBelowARegularFileFailsNamingThePath) {
  std::string file = FreshPath();
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<RocksDbLog>> log =
      RocksDbLog::Open(file + "/log");
  EXPECT_FALSE(log.ok());
  EXPECT_THAT(log.status().message(), HasSubstr(file + "/log"));
}

TEST(RocksDbLogTest, LogNotStartingAtOneIsDataLoss) {
  std::string path = FreshPath();
  WriteRaw(path, {2, 3});
  absl::StatusOr<std::unique_ptr<RocksDbLog>> log = RocksDbLog::Open(path);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(log.status().message(), HasSubstr("starts at index 2"));
}

TEST(RocksDbLogTest, MissingEntryIsDataLossOnRead) {
  std::string path = FreshPath();
  WriteRaw(path, {1, 2, 4});
  std::unique_ptr<RocksDbLog> log = OpenOrDie(path);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->LastIndex(), 4u);
  EXPECT_THAT(*log->Read(1, 2), ElementsAre(IsEntry(1, "x"), IsEntry(2, "x")));
  absl::StatusOr<std::vector<Entry>> entries = log->Read(1, 10);
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(entries.status().message(), HasSubstr("missing index 3"));
}

}  // namespace
}  // namespace warden::controlplane::log
