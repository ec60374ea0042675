#include "policy/sql/cache.h"

#include "policy/sql/normalize.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

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
    // A SELECT ... FOR UPDATE's filter too (WHERE 1 = 2 against 1 = 1).
    const bool shape_only_read =
        f.node == "SelectStmt" && !f.filter_reads_constants;
    if (!shape_only_read && !shape_only_write) {
      return false;
    }
    if (!f.nested.empty() || !f.settings.empty() || !f.copy.empty() ||
        f.unresolved_dynamic_sql || !f.nested_languages.empty()) {
      return false;
    }
  }
  return true;
}

// The statement with its constants marked, read by a small lexer that
// knows only what it must to be exact: identifiers and keywords,
// parameters ($1), numbers, standard '...' strings, operators and
// punctuation, with the text's own whitespace kept. Numbers become \x01
// and strings \x02, so two texts with the same key differ only in the
// values of constants at the same places, as pg_query_normalize's do,
// without parsing. Anything else (comments, quoted names, E'' / B'' / X''
// / U&'' / dollar quotes, backslashes, non-ASCII, a string right after a
// string, which PostgreSQL may join) gives "": the full normalization is
// used. pgbench's and most ORMs' statements take the fast path.
std::string FastShapeKey(absl::string_view sql) {
  auto ident = [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '$';
  };
  std::string key;
  key.reserve(sql.size() + 2);
  key.append("\x03");  // never equal to a normalized text
  bool last_was_string = false;
  const size_t n = sql.size();
  size_t i = 0;
  while (i < n) {
    const char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      key.push_back(c);
      ++i;
      continue;
    }
    if (c == '\'') {
      if (i > 0 && ident(sql[i - 1])) return "";  // E'', B'', X'', N''
      if (last_was_string) return "";
      size_t j = i + 1;
      while (true) {
        if (j >= n || sql[j] == '\\') return "";
        if (sql[j] == '\'') {
          if (j + 1 < n && sql[j + 1] == '\'') {
            j += 2;
            continue;
          }
          break;
        }
        if (static_cast<unsigned char>(sql[j]) >= 0x80) return "";
        ++j;
      }
      key.push_back('\x02');
      i = j + 1;
      last_was_string = true;
      continue;
    }
    last_was_string = false;
    if (absl::ascii_isdigit(c) ||
        (c == '.' && i + 1 < n && absl::ascii_isdigit(sql[i + 1]))) {
      if (i > 0 && ident(sql[i - 1])) return "";
      size_t j = i;
      while (j < n && absl::ascii_isdigit(sql[j])) ++j;
      if (j < n && sql[j] == '.') {
        if (j + 1 < n && sql[j + 1] == '.') return "";  // 1..10
        ++j;
        while (j < n && absl::ascii_isdigit(sql[j])) ++j;
      }
      if (j < n && (sql[j] == 'e' || sql[j] == 'E')) {
        ++j;
        if (j < n && (sql[j] == '+' || sql[j] == '-')) ++j;
        if (j >= n || !absl::ascii_isdigit(sql[j])) return "";
        while (j < n && absl::ascii_isdigit(sql[j])) ++j;
      }
      if (j < n && (ident(sql[j]) || sql[j] == '.')) return "";  // 1abc, 1.2.3
      key.push_back('\x01');
      i = j;
      continue;
    }
    if (absl::ascii_isalpha(c) || c == '_') {
      size_t j = i;
      while (j < n && ident(sql[j])) ++j;
      if (j < n && (sql[j] == '\'' || sql[j] == '&')) return "";  // U&'', E''
      key.append(sql.data() + i, j - i);
      i = j;
      continue;
    }
    if (c == '$') {
      size_t j = i + 1;
      while (j < n && absl::ascii_isdigit(sql[j])) ++j;
      if (j == i + 1 || (j < n && ident(sql[j]))) return "";  // $tag$
      key.append(sql.data() + i, j - i);
      i = j;
      continue;
    }
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') return "";  // comment
    if (c == '-' && i + 1 < n && absl::ascii_isdigit(sql[i + 1]) && i > 0 &&
        (sql[i - 1] == ' ' || sql[i - 1] == '(' || sql[i - 1] == ',')) {
      // A minus that can only be unary (after an operator, "(" or ","
      // and a space, or right after "(" or ","): PostgreSQL folds it into
      // the number, as pg_query_normalize does: "+ -3" is "+ 3".
      size_t p = key.size();
      while (p > 1 && (key[p - 1] == ' ' || key[p - 1] == '\t' ||
                       key[p - 1] == '\n' || key[p - 1] == '\r')) {
        --p;
      }
      const char before = p > 1 ? key[p - 1] : '\0';
      if (absl::string_view("=<>+*/(,").find(before) !=
          absl::string_view::npos) {
        ++i;  // the number follows and becomes \x01 with its sign
        continue;
      }
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') return "";
    static constexpr absl::string_view kPunctuation = "+-*/<>=~!@#%^&|`?(),;[].:";
    if (kPunctuation.find(c) == absl::string_view::npos) return "";
    key.push_back(c);
    ++i;
  }
  return key;
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
    normalized = FastShapeKey(sql);
    if (normalized.empty()) {
      auto n = Normalize(sql);
      if (n.ok()) normalized = *std::move(n);
    }
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
