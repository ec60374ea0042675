#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "controlplane/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace warden::controlplane::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

MATCHER_P2(KV, key, value, "") { return arg.key == key && arg.value == value; }

// A fresh directory path (not created) unique to the running test.
std::string FreshPath() {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::string path = ::testing::TempDir() + "/store_" +
                     info->test_suite_name() + "_" + info->name();
  std::filesystem::remove_all(path);
  return path;
}

std::unique_ptr<Store> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(StoreTest, NewStoreIsEmpty) {
  std::unique_ptr<Store> store = OpenOrDie(FreshPath());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 0u);
  EXPECT_EQ(store->Get(Column::kBundles, "x").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<KeyValue>> all = store->Scan(Column::kTokens, "");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, IsEmpty());
}

TEST(StoreTest, ColumnsAreIsolated) {
  std::unique_ptr<Store> store = OpenOrDie(FreshPath());
  ASSERT_NE(store, nullptr);
  Batch batch;
  batch.Put(Column::kBundles, "k", "bundle");
  batch.Put(Column::kTokens, "k", "token");
  ASSERT_TRUE(store->Apply(batch, 1).ok());

  EXPECT_EQ(*store->Get(Column::kBundles, "k"), "bundle");
  EXPECT_EQ(*store->Get(Column::kTokens, "k"), "token");
  EXPECT_EQ(store->Get(Column::kFleet, "k").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(*store->Scan(Column::kFleet, ""), IsEmpty());

  Batch remove;
  remove.Delete(Column::kBundles, "k");
  ASSERT_TRUE(store->Apply(remove, 2).ok());
  EXPECT_EQ(store->Get(Column::kBundles, "k").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Get(Column::kTokens, "k"), "token");
}

TEST(StoreTest, ScanReturnsPrefixInKeyOrder) {
  std::unique_ptr<Store> store = OpenOrDie(FreshPath());
  ASSERT_NE(store, nullptr);
  Batch batch;
  batch.Put(Column::kBundles, "rev/2", "b");
  batch.Put(Column::kBundles, "src/1", "s");
  batch.Put(Column::kBundles, "rev/1", "a");
  batch.Put(Column::kBundles, "re", "short");
  batch.Put(Column::kBundles, std::string("rev/\0x", 6), "binary");
  ASSERT_TRUE(store->Apply(batch, 1).ok());

  EXPECT_THAT(*store->Scan(Column::kBundles, "rev/"),
              ElementsAre(KV(std::string("rev/\0x", 6), "binary"),
                          KV("rev/1", "a"), KV("rev/2", "b")));
  EXPECT_THAT(*store->Scan(Column::kBundles, "src/"),
              ElementsAre(KV("src/1", "s")));
  EXPECT_EQ(store->Scan(Column::kBundles, "")->size(), 5u);
  EXPECT_THAT(*store->Scan(Column::kBundles, "zzz"), IsEmpty());
}

TEST(StoreTest, AppliedBatchAndIndexSurviveReopen) {
  std::string path = FreshPath();
  {
    std::unique_ptr<Store> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    Batch batch;
    batch.Put(Column::kBundles, "rev/1", "one");
    batch.Put(Column::kTokens, "tok_a", "hash");
    batch.Put(Column::kFleet, "proxy-1", "rev 1");
    ASSERT_TRUE(store->Apply(batch, 7).ok());
  }
  std::unique_ptr<Store> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 7u);
  EXPECT_EQ(*store->Get(Column::kBundles, "rev/1"), "one");
  EXPECT_EQ(*store->Get(Column::kTokens, "tok_a"), "hash");
  EXPECT_EQ(*store->Get(Column::kFleet, "proxy-1"), "rev 1");
}

TEST(StoreTest, ReplayableAppliesAreReadAtOnceAndSurviveAProcessEnd) {
  std::string path = FreshPath();
  {
    std::unique_ptr<Store> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    Batch batch;
    batch.Put(Column::kAudit, "leaf/1", "one");
    ASSERT_TRUE(store->Apply(batch, 3, Store::Durability::kReplayable).ok());
    EXPECT_EQ(store->applied_index(), 3u);
    EXPECT_EQ(*store->Get(Column::kAudit, "leaf/1"), "one");
    // The same index rules as a synced apply.
    EXPECT_EQ(store->Apply(batch, 3, Store::Durability::kReplayable).code(),
              absl::StatusCode::kFailedPrecondition);
    Batch more;
    more.Put(Column::kAudit, "leaf/2", "two");
    ASSERT_TRUE(store->Apply(more, 4, Store::Durability::kReplayable).ok());
  }
  // Closing flushes what was only in memory.
  std::unique_ptr<Store> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 4u);
  EXPECT_EQ(*store->Get(Column::kAudit, "leaf/1"), "one");
  EXPECT_EQ(*store->Get(Column::kAudit, "leaf/2"), "two");
}

TEST(StoreTest, ACrashLosesReplayableAppliesWholeWithTheirIndex) {
  std::string path = FreshPath();
  // A process that applies and dies without closing the store.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = Store::Open(path);
    if (!store.ok()) _exit(2);
    Batch synced;
    synced.Put(Column::kTokens, "tok/a", "a");
    if (!(*store)->Apply(synced, 1).ok()) _exit(3);
    for (uint64_t index = 2; index <= 50; ++index) {
      Batch batch;
      batch.Put(Column::kAudit, absl::StrCat("leaf/", index), "leaf");
      batch.Put(Column::kTokens, absl::StrCat("tok/", index), "token");
      if (!(*store)->Apply(batch, index, Store::Durability::kReplayable).ok()) {
        _exit(4);
      }
    }
    _exit(0);  // no close, no flush
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::unique_ptr<Store> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  // What was flushed (here only the synced apply) and nothing past it:
  // the applied index says where a replay of the log resumes.
  const uint64_t applied = store->applied_index();
  EXPECT_GE(applied, 1u);
  EXPECT_EQ(*store->Get(Column::kTokens, "tok/a"), "a");
  for (uint64_t index = 2; index <= 50; ++index) {
    const bool have = store->Get(Column::kAudit, absl::StrCat("leaf/", index)).ok();
    EXPECT_EQ(have, index <= applied) << index;
    EXPECT_EQ(store->Get(Column::kTokens, absl::StrCat("tok/", index)).ok(), have)
        << index;
  }
}

TEST(StoreTest, AppliedIndexIsMonotonicAndStaleIndexesWriteNothing) {
  std::string path = FreshPath();
  {
    std::unique_ptr<Store> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    Batch first;
    first.Put(Column::kBundles, "a", "1");
    ASSERT_TRUE(store->Apply(first, 1).ok());
    // Gaps are allowed: not every log entry reaches the store.
    ASSERT_TRUE(store->Apply(Batch(), 5).ok());
    EXPECT_EQ(store->applied_index(), 5u);

    Batch stale;
    stale.Put(Column::kBundles, "a", "stale");
    stale.Put(Column::kBundles, "b", "stale");
    for (uint64_t index : {1, 3, 5}) {
      absl::Status status = store->Apply(stale, index);
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
          << index << ": " << status;
      EXPECT_THAT(status.message(), HasSubstr("applied index 5"));
    }
    EXPECT_EQ(store->Apply(stale, 0).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->applied_index(), 5u);
    EXPECT_EQ(*store->Get(Column::kBundles, "a"), "1");
    EXPECT_EQ(store->Get(Column::kBundles, "b").status().code(),
              absl::StatusCode::kNotFound);
  }
  std::unique_ptr<Store> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 5u);
  EXPECT_EQ(store->Apply(Batch(), 5).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store->Apply(Batch(), 6).ok());
  EXPECT_EQ(store->applied_index(), 6u);
}

TEST(StoreTest, BatchIsAllOrNothing) {
  std::string path = FreshPath();
  {
    std::unique_ptr<Store> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    Batch bad;
    bad.Put(Column::kBundles, "a", "1");
    bad.Put(Column::kTokens, "b", "2");
    bad.Put(static_cast<Column>(42), "c", "3");  // fails after two good puts.
    EXPECT_EQ(store->Apply(bad, 1).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->applied_index(), 0u);
  }
  std::unique_ptr<Store> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 0u);
  EXPECT_EQ(store->Get(Column::kBundles, "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Get(Column::kTokens, "b").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(StoreTest, OpeningARegularFileIsAClearError) {
  std::string path = FreshPath();
  std::ofstream(path) << "not a database";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr("not a directory"));
}

TEST(StoreTest, OpeningBelowARegularFileFailsNamingThePath) {
  std::string file = FreshPath();
  std::ofstream(file) << "x";
  std::string path = file + "/db";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path));
}

TEST(StoreTest, SecondOpenOfTheSameDirectoryFails) {
  std::string path = FreshPath();
  std::unique_ptr<Store> first = OpenOrDie(path);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(path);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(path));
}

TEST(StoreTest, UnknownColumnFamilyIsRefused) {
  std::string path = FreshPath();
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path, &db).ok());
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(),
                                       "from_the_future", &handle)
                    .ok());
    db->DestroyColumnFamilyHandle(handle);
    delete db;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("from_the_future"));
}

}  // namespace
}  // namespace warden::controlplane::store
