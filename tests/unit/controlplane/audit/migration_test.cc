// A store written by a build of schema version 1, where every audit key
// (leaves, leaf hashes, digests, tree, sequences) is in the "audit" column,
// opens with this build: its keys move to their own columns, and the log
// reads, proves, verifies and goes on as before. The version 1 store is
// written here with RocksDB directly, in the layout that build wrote
// (ledger.h before the audit columns), not with this build's code.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/audit/verify.h"
#include "controlplane/store/store.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace warden::controlplane::audit {
namespace {

constexpr char kSource[] = "prod/proxy-1";

std::string FreshPath(const std::string& what) {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string path =
      ::testing::TempDir() + "/migration_" + info->name() + "_" + what;
  std::filesystem::remove_all(path);
  return path;
}

std::string BigEndian(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, n >>= 8) out[i] = static_cast<char>(n & 0xff);
  return out;
}

// What version 1 held for `events` events of kSource: every key, all in
// the "audit" column.
struct Version1Log {
  std::vector<std::string> leaves;
  std::vector<std::string> hashes;
  std::vector<std::string> digests;
  TreeBuilder tree;
};

Version1Log MakeLog(int events) {
  Version1Log log;
  std::string previous(kHashSize, '\0');
  for (int i = 0; i < events; ++i) {
    warden::v1::AuditLeaf leaf;
    leaf.mutable_event()->set_proxy_id("proxy-1");
    leaf.mutable_event()->set_environment("prod");
    leaf.mutable_event()->set_sequence(i + 1);
    leaf.set_source(kSource);
    std::string bytes = MakeLeaf(previous, leaf.SerializeAsString());
    previous = LeafHash(bytes);
    EXPECT_TRUE(log.tree.AppendLeafHash(previous).ok());
    log.digests.push_back(crypto::Sha256(leaf.event().SerializeAsString()));
    log.leaves.push_back(std::move(bytes));
    log.hashes.push_back(previous);
  }
  return log;
}

// Writes `log` as a version 1 store at `path` (applied index `applied`),
// with one token. With `moved_hashes`, the first that many leaf hashes are
// already in an "audit_hashes" column and gone from "audit": a migration
// that stopped half way.
void WriteVersion1Store(const std::string& path, const Version1Log& log,
                        uint64_t applied, size_t moved_hashes = 0) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName,
                                    "meta",  "bundles", "tokens", "fleet",
                                    "audit", "directory"};
  if (moved_hashes > 0) names.push_back("audit_hashes");
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, descriptors, &handles, &db).ok());
  rocksdb::ColumnFamilyHandle* meta = handles[1];
  rocksdb::ColumnFamilyHandle* tokens = handles[3];
  rocksdb::ColumnFamilyHandle* audit = handles[5];
  rocksdb::WriteBatch batch;
  batch.Put(meta, "schema_version", "1");
  batch.Put(meta, "applied_index", BigEndian(applied));
  batch.Put(tokens, "tok/t1", "a token record");
  for (size_t i = 0; i < log.leaves.size(); ++i) {
    batch.Put(audit, absl::StrFormat("leaf/%020u", i), log.leaves[i]);
    batch.Put(i < moved_hashes ? handles[7] : audit,
              absl::StrFormat("hash/%020u", i), log.hashes[i]);
    batch.Put(audit, absl::StrFormat("dig/%s/%020u", kSource, i + 1),
              log.digests[i]);
  }
  if (!log.leaves.empty()) {
    batch.Put(audit, absl::StrCat("src/", kSource),
              absl::StrCat(log.leaves.size()));
    batch.Put(audit, "tree", log.tree.Serialize());
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  ASSERT_TRUE(db->Write(sync, &batch).ok());
  for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

// The log as the ledger reads it, checked against `log` key by key.
void ExpectSameLog(const store::Store& store, const Version1Log& log) {
  Ledger ledger(&store);
  auto tree = ledger.Tree();
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->size(), log.leaves.size());
  EXPECT_EQ(tree->Root(), log.tree.Root());
  EXPECT_EQ(*ledger.Acknowledged(kSource), log.leaves.size());
  auto entries = ledger.Entries(0, log.leaves.size(), log.leaves.size(),
                                size_t{1} << 30);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), log.leaves.size());
  for (size_t i = 0; i < log.leaves.size(); ++i) {
    ASSERT_EQ((*entries)[i].leaf(), log.leaves[i]) << i;
    auto digest = ledger.Digest(kSource, i + 1);
    ASSERT_TRUE(digest.ok()) << i << ": " << digest.status();
    ASSERT_EQ(*digest, log.digests[i]) << i;
  }
  // Proofs read the leaf hashes.
  for (uint64_t i : {uint64_t{0}, uint64_t{log.leaves.size() / 2},
                     uint64_t{log.leaves.size() - 1}}) {
    auto proof = ledger.InclusionProof(i, log.leaves.size());
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(VerifyInclusion(log.hashes[i], i, log.leaves.size(), *proof,
                                log.tree.Root())
                    .ok())
        << i;
  }
}

// Every entry of the store verifies against a checkpoint signed now.
void ExpectVerifies(const store::Store& store) {
  Ledger ledger(&store);
  auto tree = ledger.Tree();
  ASSERT_TRUE(tree.ok());
  auto key = crypto::GenerateEd25519Key();
  ASSERT_TRUE(key.ok());
  auto note = SignCheckpoint({"warden/audit/test", tree->size(), tree->Root()},
                             "warden/audit/test", key->private_pem);
  ASSERT_TRUE(note.ok()) << note.status();
  auto vkey = VerifierKey("warden/audit/test", key->public_pem);
  ASSERT_TRUE(vkey.ok());
  auto entries = ledger.Entries(0, tree->size(), tree->size(), size_t{1} << 30);
  ASSERT_TRUE(entries.ok());
  std::vector<ExportedEntry> exported;
  for (const auto& e : *entries) exported.push_back({e.index(), e.leaf()});
  const VerifyReport report = VerifyExport(exported, *note, *vkey);
  EXPECT_TRUE(report.ok) << report.message;
  EXPECT_EQ(report.entries, tree->size());
}

TEST(StoreMigrationTest, AVersion1StoreOpensReadsVerifiesAndGoesOn) {
  // More events than one migration batch moves (10,000 keys).
  constexpr int kEvents = 10500;
  const Version1Log log = MakeLog(kEvents);
  const std::string path = FreshPath("store");
  WriteVersion1Store(path, log, /*applied=*/42);

  {
    auto opened = store::Store::Open(path);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store::Store& store = **opened;
    EXPECT_EQ(store.applied_index(), 42u);
    ExpectSameLog(store, log);
    // The per-event keys left the audit column; tree, sequences and the
    // other columns stayed.
    for (const char* prefix : {"leaf/", "hash/", "dig/"}) {
      EXPECT_TRUE(store.Scan(store::Column::kAudit, prefix)->empty())
          << prefix;
    }
    EXPECT_EQ(store.Scan(store::Column::kAuditLeaves, "")->size(),
              size_t{kEvents});
    EXPECT_EQ(store.Scan(store::Column::kAuditHashes, "")->size(),
              size_t{kEvents});
    EXPECT_EQ(store.Scan(store::Column::kAuditDigests, "")->size(),
              size_t{kEvents});
    EXPECT_TRUE(store.Get(store::Column::kAudit, "tree").ok());
    EXPECT_EQ(*store.Get(store::Column::kTokens, "tok/t1"), "a token record");
    ExpectVerifies(store);

    // The log goes on from the migrated one: the chain links to its last
    // leaf, and a resend is told from another event by the old digests.
    warden::v1::AuditLeaf leaf;
    leaf.mutable_event()->set_proxy_id("proxy-1");
    leaf.mutable_event()->set_sequence(kEvents + 1);
    leaf.set_source(kSource);
    const std::string next_leaf = leaf.SerializeAsString();
    warden::v1::AuditAppend append;
    append.set_source(kSource);
    append.add_leaves(next_leaf);
    append.add_sequences(kEvents + 1);
    append.add_digests(std::string(32, 'd'));
    store::Batch batch;
    ASSERT_TRUE(StageAppend(store, append, &batch).ok());
    ASSERT_TRUE(store.Apply(batch, 43).ok());
    Ledger ledger(&store);
    auto next = ledger.Entries(kEvents, kEvents + 1, 1);
    ASSERT_TRUE(next.ok());
    ASSERT_EQ(next->size(), 1u);
    EXPECT_EQ((*next)[0].leaf(), MakeLeaf(log.hashes.back(), next_leaf));
    EXPECT_EQ(*ledger.Acknowledged(kSource), kEvents + 1u);
    ExpectVerifies(store);
  }
  // Opened again: version 2 now, nothing to move, the same log.
  auto again = store::Store::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->applied_index(), 43u);
  EXPECT_EQ(Ledger(again->get()).Tree()->size(), kEvents + 1u);
  ExpectVerifies(**again);
}

TEST(StoreMigrationTest, AnInterruptedMigrationResumes) {
  const Version1Log log = MakeLog(300);
  const std::string path = FreshPath("store");
  // A third of the hashes moved, the rest and everything else not yet.
  WriteVersion1Store(path, log, /*applied=*/7, /*moved_hashes=*/100);
  auto opened = store::Store::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ExpectSameLog(**opened, log);
  EXPECT_TRUE((*opened)->Scan(store::Column::kAudit, "hash/")->empty());
  EXPECT_EQ((*opened)->Scan(store::Column::kAuditHashes, "")->size(), 300u);
  ExpectVerifies(**opened);
}

TEST(StoreMigrationTest, AnEmptyVersion1StoreOpens) {
  const std::string path = FreshPath("store");
  WriteVersion1Store(path, Version1Log{}, /*applied=*/3);
  auto opened = store::Store::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(Ledger(opened->get()).Tree()->size(), 0u);
  EXPECT_EQ((*opened)->applied_index(), 3u);
}

}  // namespace
}  // namespace warden::controlplane::audit
