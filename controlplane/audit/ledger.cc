#include "controlplane/audit/ledger.h"

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace warden::controlplane::audit {
namespace {

constexpr char kLeafPrefix[] = "leaf/";
constexpr char kHashPrefix[] = "hash/";
constexpr char kTreeKey[] = "tree";
constexpr char kSourcePrefix[] = "src/";
constexpr char kDigestPrefix[] = "dig/";

// "<prefix><20-digit zero-padded index>", as StrFormat("%s%020u") wrote
// it, without the format parser (three keys per event).
std::string IndexKey(absl::string_view prefix, uint64_t index) {
  std::string key(prefix.size() + 20, '0');
  std::memcpy(key.data(), prefix.data(), prefix.size());
  for (size_t i = key.size(); index != 0; index /= 10) {
    key[--i] = static_cast<char>('0' + index % 10);
  }
  return key;
}

std::string DigestKey(absl::string_view source, uint64_t sequence) {
  return IndexKey(absl::StrCat(kDigestPrefix, source, "/"), sequence);
}

absl::StatusOr<TreeBuilder> LoadTree(const store::Store& store) {
  auto bytes = store.Get(store::Column::kAudit, kTreeKey);
  if (absl::IsNotFound(bytes.status())) return TreeBuilder();
  if (!bytes.ok()) return bytes.status();
  return TreeBuilder::Restore(*bytes);
}

absl::StatusOr<uint64_t> LoadSequence(const store::Store& store,
                                      absl::string_view source) {
  auto bytes =
      store.Get(store::Column::kAudit, absl::StrCat(kSourcePrefix, source));
  if (absl::IsNotFound(bytes.status())) return 0;
  if (!bytes.ok()) return bytes.status();
  uint64_t sequence = 0;
  if (!absl::SimpleAtoi(*bytes, &sequence)) {
    return absl::DataLossError(
        absl::StrCat("audit sequence of ", source, " does not parse"));
  }
  return sequence;
}

// Leaf hashes from the store, for proofs.
class StoreHashReader final : public HashReader {
 public:
  explicit StoreHashReader(const store::Store* store) : store_(store) {}
  absl::StatusOr<std::string> LeafHashAt(uint64_t index) const override {
    return store_->Get(store::Column::kAuditHashes,
                       IndexKey(kHashPrefix, index));
  }

 private:
  const store::Store* const store_;
};

}  // namespace

absl::Status StageAppend(const store::Store& store,
                         const warden::v1::AuditAppend& append,
                         store::Batch* batch) {
  AuditApplier applier(&store);
  WARDEN_RETURN_IF_ERROR(applier.Stage(append));
  applier.TakeStaged(batch);
  return absl::OkStatus();
}

absl::Status AuditApplier::Load() {
  if (loaded_) return absl::OkStatus();
  WARDEN_ASSIGN_OR_RETURN(TreeBuilder tree, LoadTree(*store_));
  std::string last(kHashSize, '\0');
  if (tree.size() > 0) {
    WARDEN_ASSIGN_OR_RETURN(
        last, store_->Get(store::Column::kAuditHashes,
                          IndexKey(kHashPrefix, tree.size() - 1)));
  }
  tree_ = std::move(tree);
  last_hash_ = std::move(last);
  sequences_.clear();
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditApplier::Sequence(const std::string& source) {
  auto it = sequences_.find(source);
  if (it != sequences_.end()) return it->second;
  WARDEN_ASSIGN_OR_RETURN(uint64_t sequence, LoadSequence(*store_, source));
  sequences_.emplace(source, sequence);
  return sequence;
}

absl::Status AuditApplier::Stage(const warden::v1::AuditAppend& append) {
  WARDEN_RETURN_IF_ERROR(Load());
  // Sequences travel next to the leaves, so applying never parses them.
  if (append.sequences_size() != append.leaves_size()) return absl::OkStatus();
  WARDEN_ASSIGN_OR_RETURN(const uint64_t sequence, Sequence(append.source()));
  uint64_t next = sequence + 1;
  const bool with_digests = append.digests_size() == append.leaves_size();
  const std::string digest_prefix =
      absl::StrCat(kDigestPrefix, append.source(), "/");
  bool changed = false;
  for (int i = 0; i < append.leaves_size(); ++i) {
    const uint64_t s = append.sequences(i);
    if (s < next) continue;  // a duplicate of at-least-once delivery.
    if (s > next) break;     // a gap: the source resends from `next`.
    std::string leaf_bytes = MakeLeaf(last_hash_, append.leaves(i));
    std::string hash = LeafHash(leaf_bytes);
    const uint64_t index = tree_.size();
    if (absl::Status st = tree_.AppendLeafHash(hash); !st.ok()) {
      loaded_ = false;  // earlier leaves of this entry are in the tree
      return st;
    }
    leaves_.push_back({IndexKey(kLeafPrefix, index), std::move(leaf_bytes)});
    hashes_.push_back({IndexKey(kHashPrefix, index), hash});
    if (with_digests) {
      digests_.push_back({IndexKey(digest_prefix, s), append.digests(i)});
    }
    staged_ops_ += with_digests ? 3 : 2;
    last_hash_ = std::move(hash);
    ++next;
    changed = true;
  }
  if (changed) {
    sequences_[append.source()] = next - 1;
    if (touched_.insert(append.source()).second) ++staged_ops_;
    if (!tree_changed_) ++staged_ops_;
    tree_changed_ = true;
  }
  return absl::OkStatus();
}

void AuditApplier::TakeStaged(store::Batch* batch) {
  batch->Reserve(batch->size() + staged_ops_);
  // Each kind in its own column, in ascending key order (digest keys of
  // one source ascend; so do leaf and hash keys).
  const std::pair<std::vector<Put>*, store::Column> kinds[] = {
      {&digests_, store::Column::kAuditDigests},
      {&hashes_, store::Column::kAuditHashes},
      {&leaves_, store::Column::kAuditLeaves}};
  for (const auto& [puts, column] : kinds) {
    for (Put& put : *puts) {
      batch->Put(column, std::move(put.key), std::move(put.value));
    }
    puts->clear();
  }
  for (const std::string& source : touched_) {
    batch->Put(store::Column::kAudit, absl::StrCat(kSourcePrefix, source),
               absl::StrCat(sequences_[source]));
  }
  touched_.clear();
  if (tree_changed_) {
    batch->Put(store::Column::kAudit, kTreeKey, tree_.Serialize());
  }
  tree_changed_ = false;
  staged_ops_ = 0;
}

void AuditApplier::Written(bool ok) {
  if (!ok) {
    loaded_ = false;
    sequences_.clear();
    for (std::vector<Put>* puts : {&digests_, &hashes_, &leaves_}) {
      puts->clear();
    }
    touched_.clear();
    tree_changed_ = false;
    staged_ops_ = 0;
  }
}

absl::StatusOr<TreeBuilder> Ledger::Tree() const { return LoadTree(*store_); }

absl::StatusOr<uint64_t> Ledger::Acknowledged(absl::string_view source) const {
  return LoadSequence(*store_, source);
}

absl::StatusOr<std::string> Ledger::Digest(absl::string_view source,
                                           uint64_t sequence) const {
  return store_->Get(store::Column::kAuditDigests,
                     DigestKey(source, sequence));
}

absl::StatusOr<std::vector<warden::v1::AuditEntry>> Ledger::Entries(
    uint64_t start, uint64_t end, size_t limit, size_t max_bytes) const {
  auto tree = Tree();
  if (!tree.ok()) return tree.status();
  end = std::min(end, tree->size());
  std::vector<warden::v1::AuditEntry> out;
  size_t bytes = 0;
  for (uint64_t i = start; i < end && out.size() < limit; ++i) {
    auto leaf =
        store_->Get(store::Column::kAuditLeaves, IndexKey(kLeafPrefix, i));
    if (!leaf.ok()) return leaf.status();
    bytes += leaf->size() + 16;
    if (!out.empty() && bytes > max_bytes) break;
    warden::v1::AuditEntry entry;
    entry.set_index(i);
    entry.set_leaf(*std::move(leaf));
    out.push_back(std::move(entry));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Ledger::InclusionProof(
    uint64_t index, uint64_t tree_size) const {
  auto tree = Tree();
  if (!tree.ok()) return tree.status();
  if (tree_size > tree->size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", tree_size, " is beyond the log's ", tree->size()));
  }
  StoreHashReader reader(store_);
  return audit::InclusionProof(reader, index, tree_size);
}

absl::StatusOr<std::vector<std::string>> Ledger::ConsistencyProof(
    uint64_t first_size, uint64_t second_size) const {
  auto tree = Tree();
  if (!tree.ok()) return tree.status();
  if (second_size > tree->size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", second_size, " is beyond the log's ", tree->size()));
  }
  StoreHashReader reader(store_);
  return audit::ConsistencyProof(reader, first_size, second_size);
}

}  // namespace warden::controlplane::audit
