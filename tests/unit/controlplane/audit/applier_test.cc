// AuditApplier: appends staged on top of each other and written in one
// store batch give the store exactly what applying them one by one gives.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/store/store.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::audit {
namespace {

std::unique_ptr<store::Store> FreshStore(const std::string& what) {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string path =
      ::testing::TempDir() + "/applier_" + info->name() + "_" + what;
  std::filesystem::remove_all(path);
  auto store = store::Store::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return *std::move(store);
}

warden::v1::AuditAppend Append(const std::string& source, uint64_t from,
                               uint64_t to) {
  warden::v1::AuditAppend append;
  append.set_source(source);
  for (uint64_t s = from; s <= to; ++s) {
    append.add_leaves(absl::StrCat("event ", s, " of ", source));
    append.add_sequences(s);
    append.add_digests(std::string(32, static_cast<char>(s)));
  }
  return append;
}

// Every audit column, keyed "<column>:<key>".
std::map<std::string, std::string> Audit(const store::Store& store) {
  std::map<std::string, std::string> out;
  for (store::Column column :
       {store::Column::kAudit, store::Column::kAuditLeaves,
        store::Column::kAuditHashes, store::Column::kAuditDigests}) {
    auto all = store.Scan(column, "");
    EXPECT_TRUE(all.ok());
    for (const auto& kv : *all) {
      out[absl::StrCat(store::ColumnName(column), ":", kv.key)] = kv.value;
    }
  }
  return out;
}

// Appends, some overlapping (resends) and one with a gap.
std::vector<warden::v1::AuditAppend> Appends() {
  return {Append("prod/a", 1, 3), Append("prod/b", 1, 2),
          Append("prod/a", 2, 5),   // 2 and 3 again
          Append("prod/b", 5, 6),   // a gap: nothing
          Append("prod/b", 3, 4), Append("prod/a", 1, 5)};  // all again
}

TEST(AuditApplierTest, AGroupInOneBatchIsTheSameAsOneBatchEach) {
  auto one_by_one = FreshStore("one");
  uint64_t index = 0;
  for (const auto& append : Appends()) {
    store::Batch batch;
    ASSERT_TRUE(StageAppend(*one_by_one, append, &batch).ok());
    ASSERT_TRUE(one_by_one->Apply(batch, ++index).ok());
  }
  auto grouped = FreshStore("grouped");
  AuditApplier applier(grouped.get());
  for (const auto& append : Appends()) ASSERT_TRUE(applier.Stage(append).ok());
  EXPECT_TRUE(applier.has_staged());
  store::Batch batch;
  applier.TakeStaged(&batch);
  EXPECT_FALSE(applier.has_staged());
  // Nine events: a leaf, a hash and a digest each; each source's
  // sequence and the tree once.
  EXPECT_EQ(batch.size(), 9u * 3 + 2 + 1);
  ASSERT_TRUE(grouped->Apply(batch, index).ok());
  applier.Written(true);
  EXPECT_EQ(Audit(*grouped), Audit(*one_by_one));
  Ledger ledger(grouped.get());
  EXPECT_EQ(ledger.Tree()->size(), 9u);
  EXPECT_EQ(*ledger.Acknowledged("prod/a"), 5u);
  EXPECT_EQ(*ledger.Acknowledged("prod/b"), 4u);

  // And the next batch goes on from what is in memory.
  ASSERT_TRUE(applier.Stage(Append("prod/b", 5, 5)).ok());
  store::Batch next;
  applier.TakeStaged(&next);
  ASSERT_TRUE(grouped->Apply(next, index + 1).ok());
  applier.Written(true);
  store::Batch same;
  ASSERT_TRUE(StageAppend(*one_by_one, Append("prod/b", 5, 5), &same).ok());
  ASSERT_TRUE(one_by_one->Apply(same, index + 1).ok());
  EXPECT_EQ(Audit(*grouped), Audit(*one_by_one));
}

TEST(AuditApplierTest, KeysOfEachKindAreStagedInAscendingOrder) {
  auto store = FreshStore("order");
  AuditApplier applier(store.get());
  // Past 10 and 100: the zero-padded keys sort as numbers.
  ASSERT_TRUE(applier.Stage(Append("prod/a", 1, 120)).ok());
  store::Batch batch;
  applier.TakeStaged(&batch);
  std::string previous;
  std::string previous_kind;
  for (const auto& op : batch.ops()) {
    const std::string kind = op.key.substr(0, op.key.find('/'));
    if (kind == previous_kind) EXPECT_LT(previous, op.key);
    previous_kind = kind;
    previous = op.key;
  }
  // Each kind in its own column.
  for (const auto& op : batch.ops()) {
    const std::string kind = op.key.substr(0, op.key.find('/'));
    const store::Column want = kind == "dig"    ? store::Column::kAuditDigests
                               : kind == "hash" ? store::Column::kAuditHashes
                               : kind == "leaf" ? store::Column::kAuditLeaves
                                                : store::Column::kAudit;
    EXPECT_EQ(store::ColumnName(op.column), store::ColumnName(want)) << op.key;
  }
  EXPECT_EQ(batch.ops().front().key, "dig/prod/a/00000000000000000001");
  EXPECT_EQ(batch.ops()[120].key, "hash/00000000000000000000");
  EXPECT_EQ(batch.ops()[240 + 119].key, "leaf/00000000000000000119");
}

TEST(AuditApplierTest, WhatWasNotWrittenIsForgotten) {
  auto store = FreshStore("forgotten");
  AuditApplier applier(store.get());
  ASSERT_TRUE(applier.Stage(Append("prod/a", 1, 2)).ok());
  store::Batch batch;
  applier.TakeStaged(&batch);
  ASSERT_TRUE(store->Apply(batch, 1).ok());
  applier.Written(true);
  // Staged, then the write failed: the next stage starts from the store.
  ASSERT_TRUE(applier.Stage(Append("prod/a", 3, 4)).ok());
  ASSERT_TRUE(applier.Stage(Append("prod/c", 1, 1)).ok());
  store::Batch lost;
  applier.TakeStaged(&lost);
  applier.Written(false);
  ASSERT_TRUE(applier.Stage(Append("prod/a", 3, 3)).ok());
  store::Batch again;
  applier.TakeStaged(&again);
  ASSERT_TRUE(store->Apply(again, 2).ok());
  applier.Written(true);
  Ledger ledger(store.get());
  EXPECT_EQ(ledger.Tree()->size(), 3u);
  EXPECT_EQ(*ledger.Acknowledged("prod/a"), 3u);
  EXPECT_EQ(*ledger.Acknowledged("prod/c"), 0u);
  // Leaf 2 is chained to leaf 1 as stored.
  auto entries = ledger.Entries(0, 3, 10);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ((*entries)[2].leaf().substr(0, kHashSize),
            LeafHash((*entries)[1].leaf()));
  // A failure while staging is dropped the same way.
  ASSERT_TRUE(applier.Stage(Append("prod/a", 4, 4)).ok());
  applier.Written(false);
  EXPECT_FALSE(applier.has_staged());
  ASSERT_TRUE(applier.Stage(Append("prod/a", 4, 4)).ok());
  store::Batch last;
  applier.TakeStaged(&last);
  ASSERT_TRUE(store->Apply(last, 3).ok());
  applier.Written(true);
  EXPECT_EQ(ledger.Tree()->size(), 4u);
}

TEST(AuditApplierTest, AnEntryWhoseSequencesDoNotPairChangesNothing) {
  auto store = FreshStore("unpaired");
  AuditApplier applier(store.get());
  warden::v1::AuditAppend append = Append("prod/a", 1, 3);
  append.mutable_sequences()->RemoveLast();
  ASSERT_TRUE(applier.Stage(append).ok());
  EXPECT_FALSE(applier.has_staged());
}

}  // namespace
}  // namespace warden::controlplane::audit
