#include "controlplane/audit/ledger.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace warden::controlplane::audit {
namespace {

constexpr char kLeafPrefix[] = "leaf/";
constexpr char kHashPrefix[] = "hash/";
constexpr char kTreeKey[] = "tree";
constexpr char kSourcePrefix[] = "src/";
constexpr char kDigestPrefix[] = "dig/";

std::string DigestKey(absl::string_view source, uint64_t sequence) {
  return absl::StrFormat("%s%s/%020u", kDigestPrefix, source, sequence);
}

std::string IndexKey(const char* prefix, uint64_t index) {
  return absl::StrFormat("%s%020u", prefix, index);
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
    return store_->Get(store::Column::kAudit, IndexKey(kHashPrefix, index));
  }

 private:
  const store::Store* const store_;
};

}  // namespace

absl::Status StageAppend(const store::Store& store,
                         const warden::v1::AuditAppend& append,
                         store::Batch* batch) {
  auto tree = LoadTree(store);
  if (!tree.ok()) return tree.status();
  auto sequence = LoadSequence(store, append.source());
  if (!sequence.ok()) return sequence.status();
  std::string previous(kHashSize, '\0');
  if (tree->size() > 0) {
    auto last = store.Get(store::Column::kAudit,
                          IndexKey(kHashPrefix, tree->size() - 1));
    if (!last.ok()) return last.status();
    previous = *std::move(last);
  }
  uint64_t next = *sequence + 1;
  bool changed = false;
  // Sequences travel next to the leaves, so applying never parses them.
  if (append.sequences_size() != append.leaves_size()) return absl::OkStatus();
  for (int i = 0; i < append.leaves_size(); ++i) {
    const std::string& bytes = append.leaves(i);
    const uint64_t s = append.sequences(i);
    if (s < next) continue;  // a duplicate of at-least-once delivery.
    if (s > next) break;     // a gap: the source resends from `next`.
    const std::string leaf_bytes = MakeLeaf(previous, bytes);
    const std::string hash = LeafHash(leaf_bytes);
    const uint64_t index = tree->size();
    if (absl::Status st = tree->AppendLeafHash(hash); !st.ok()) return st;
    batch->Put(store::Column::kAudit, IndexKey(kLeafPrefix, index), leaf_bytes);
    batch->Put(store::Column::kAudit, IndexKey(kHashPrefix, index), hash);
    if (append.digests_size() == append.leaves_size()) {
      batch->Put(store::Column::kAudit, DigestKey(append.source(), s),
                 append.digests(i));
    }
    previous = hash;
    ++next;
    changed = true;
  }
  if (changed) {
    batch->Put(store::Column::kAudit, kTreeKey, tree->Serialize());
    batch->Put(store::Column::kAudit,
               absl::StrCat(kSourcePrefix, append.source()),
               absl::StrCat(next - 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<TreeBuilder> Ledger::Tree() const { return LoadTree(*store_); }

absl::StatusOr<uint64_t> Ledger::Acknowledged(absl::string_view source) const {
  return LoadSequence(*store_, source);
}

absl::StatusOr<std::string> Ledger::Digest(absl::string_view source,
                                           uint64_t sequence) const {
  return store_->Get(store::Column::kAudit, DigestKey(source, sequence));
}

absl::StatusOr<std::vector<warden::v1::AuditEntry>> Ledger::Entries(
    uint64_t start, uint64_t end, size_t limit, size_t max_bytes) const {
  auto tree = Tree();
  if (!tree.ok()) return tree.status();
  end = std::min(end, tree->size());
  std::vector<warden::v1::AuditEntry> out;
  size_t bytes = 0;
  for (uint64_t i = start; i < end && out.size() < limit; ++i) {
    auto leaf = store_->Get(store::Column::kAudit, IndexKey(kLeafPrefix, i));
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
