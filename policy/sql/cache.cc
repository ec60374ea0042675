#include "policy/sql/cache.h"

namespace warden::policy::sql {

FactsCache::FactsCache(size_t capacity, size_t max_text_bytes)
    : capacity_(capacity == 0 ? 1 : capacity),
      max_text_bytes_(max_text_bytes) {}

absl::StatusOr<FactsPtr> FactsCache::Get(absl::string_view sql) {
  const bool cacheable = sql.size() <= max_text_bytes_;
  if (cacheable) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(sql);
    if (it != entries_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.facts;
    }
    ++misses_;
  }
  // Parse outside the lock: other sessions keep hitting the cache.
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
  if (entries_.find(sql) == entries_.end()) {
    lru_.emplace_front(sql);
    entries_.emplace(lru_.front(), Entry{result, lru_.begin()});
    while (entries_.size() > capacity_) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  return result;
}

FactsCache::Stats FactsCache::stats() const {
  absl::MutexLock lock(&mu_);
  return Stats{hits_, misses_, entries_.size()};
}

}  // namespace warden::policy::sql
