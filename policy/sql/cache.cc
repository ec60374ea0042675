#include "policy/sql/cache.h"

#include "policy/sql/normalize.h"

namespace warden::policy::sql {
namespace {

// Whether the facts of these statements would be the same for any values
// of their constants (see the header for what qualifies and why).
bool ConstantInsensitive(const std::vector<StatementFacts>& facts) {
  if (facts.empty()) return false;
  for (const StatementFacts& f : facts) {
    // DELETE and UPDATE too, when their filter was decided by the shape
    // alone: TPC-B's UPDATE ... WHERE aid = 17 is analyzed once.
    // An upsert's DO UPDATE ... WHERE is a filter like DELETE's, and reads
    // constants (WHERE 1 = 2 against WHERE 1 = 1): never shared.
    const bool shape_only_write =
        (f.node == "DeleteStmt" || f.node == "UpdateStmt" ||
         f.node == "InsertStmt") &&
        !f.filter_reads_constants;
    if (f.node != "SelectStmt" && !shape_only_write) {
      return false;
    }
    if (!f.nested.empty() || !f.settings.empty() || !f.copy.empty() ||
        f.unresolved_dynamic_sql || !f.nested_languages.empty()) {
      return false;
    }
  }
  return true;
}

// Cheap pre-check: text without digits or quotes has no constants to vary.
bool MayHaveConstants(absl::string_view sql) {
  for (char c : sql) {
    if ((c >= '0' && c <= '9') || c == '\'' || c == '$') return true;
  }
  return false;
}

}  // namespace

const absl::StatusOr<FactsPtr>* FactsCache::Lru::Find(absl::string_view key) {
  auto it = entries.find(key);
  if (it == entries.end()) return nullptr;
  order.splice(order.begin(), order, it->second.lru);
  return &it->second.facts;
}

void FactsCache::Lru::Put(absl::string_view key,
                          const absl::StatusOr<FactsPtr>& facts,
                          size_t capacity) {
  if (entries.find(key) != entries.end()) return;
  order.emplace_front(key);
  entries.emplace(order.front(), Entry{facts, order.begin()});
  while (entries.size() > capacity) {
    entries.erase(order.back());
    order.pop_back();
  }
}

FactsCache::FactsCache(size_t capacity, size_t max_text_bytes)
    : capacity_(capacity == 0 ? 1 : capacity),
      max_text_bytes_(max_text_bytes) {}

absl::StatusOr<FactsPtr> FactsCache::Get(absl::string_view sql) {
  const bool cacheable = sql.size() <= max_text_bytes_;
  if (!cacheable) {
    absl::MutexLock lock(&mu_);
    ++misses_;
  } else {
    absl::MutexLock lock(&mu_);
    if (const auto* hit = exact_.Find(sql)) {
      ++hits_;
      return *hit;
    }
  }
  // Outside the lock from here: other sessions keep hitting the cache.
  std::string normalized;
  if (cacheable && MayHaveConstants(sql)) {
    auto n = Normalize(sql);
    if (n.ok()) normalized = *std::move(n);
    if (!normalized.empty()) {
      absl::MutexLock lock(&mu_);
      if (const auto* hit = normalized_.Find(normalized)) {
        ++normalized_hits_;
        return *hit;  // not added to exact_: one-off texts would flush it.
      }
    }
  }
  absl::StatusOr<FactsPtr> result;
  auto facts = Analyze(sql);
  if (facts.ok()) {
    result =
        std::make_shared<const std::vector<StatementFacts>>(*std::move(facts));
  } else {
    result = facts.status();
  }
  if (!cacheable) return result;
  absl::MutexLock lock(&mu_);
  ++misses_;
  exact_.Put(sql, result, capacity_);
  if (!normalized.empty() && result.ok() && ConstantInsensitive(**result)) {
    normalized_.Put(normalized, result, capacity_);
  }
  return result;
}

FactsCache::Stats FactsCache::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s;
  s.hits = hits_;
  s.normalized_hits = normalized_hits_;
  s.misses = misses_;
  s.entries = exact_.entries.size();
  s.normalized_entries = normalized_.entries.size();
  return s;
}

}  // namespace warden::policy::sql
