// FactsCache: a bounded, thread-safe LRU of Analyze() results keyed by the
// exact statement text, so a statement an application repeats is parsed
// once. Errors are cached too (unparseable text stays unparseable).
#ifndef WARDEN_POLICY_SQL_CACHE_H_
#define WARDEN_POLICY_SQL_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "policy/sql/facts.h"

namespace warden::policy::sql {

using FactsPtr = std::shared_ptr<const std::vector<StatementFacts>>;

class FactsCache {
 public:
  // `capacity`: entries kept (least recently used evicted). Statements
  // longer than `max_text_bytes` are analyzed but never cached, so one huge
  // generated statement cannot flush the cache. Default: 10000 / 16 KiB.
  explicit FactsCache(size_t capacity = 10000, size_t max_text_bytes = 16384);

  // Same contract as Analyze().
  absl::StatusOr<FactsPtr> Get(absl::string_view sql);

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    absl::StatusOr<FactsPtr> facts;
    std::list<std::string>::iterator lru;
  };
  const size_t capacity_;
  const size_t max_text_bytes_;
  mutable absl::Mutex mu_;
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front: most recent.
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_CACHE_H_
