// FactsCache: a bounded, thread-safe LRU of Analyze() results keyed by the
// exact statement text, so a statement an application repeats is parsed
// once. Errors are cached too (unparseable text stays unparseable).
//
// Applications that inline literals (simple protocol: psql, psycopg2,
// many ORMs) send a new text for every execution. For those a second LRU is
// keyed by the normalized text (constants as $n, see normalize.h): a text
// that differs from a known one only in its constants reuses that one's
// facts, at the cost of a normalization instead of a full analysis: a
// small exact lexer for plain text (identifiers, numbers, '...' strings,
// operators; pgbench's and most ORMs' statements), a raw parse
// (pg_query_normalize) for anything else. Only statements whose facts cannot depend on a constant's
// value are shared that way: plain SELECT and INSERT, and DELETE / UPDATE
// whose effective filter was decided by their shape alone (not by a
// constant-only condition such as `1 = 1` or a LIKE pattern:
// StatementFacts.filter_reads_constants), without nested statements,
// settings, dynamic SQL or COPY. MERGE, DO blocks and function bodies
// (string constants), set_config('name', ...) and everything else are
// always analyzed from their own text. Facts from the normalized
// cache carry the text of the statement first seen in `text`; callers that
// need the exact text take it from the message.
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
    uint64_t hits = 0;             // exact text.
    uint64_t normalized_hits = 0;  // same statement, other constants.
    uint64_t misses = 0;           // analyzed.
    size_t entries = 0;
    size_t normalized_entries = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    absl::StatusOr<FactsPtr> facts;
    std::list<std::string>::iterator lru;
  };
  // One bounded LRU map; callers hold mu_.
  struct Lru {
    std::list<std::string> order;  // front: most recent.
    absl::flat_hash_map<std::string, Entry> entries;
    const absl::StatusOr<FactsPtr>* Find(absl::string_view key);
    void Put(absl::string_view key, const absl::StatusOr<FactsPtr>& facts,
             size_t capacity);
  };
  const size_t capacity_;
  const size_t max_text_bytes_;
  mutable absl::Mutex mu_;
  Lru exact_ ABSL_GUARDED_BY(mu_);
  Lru normalized_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t normalized_hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_CACHE_H_
