#include "policy/sql/normalize.h"

#include <pg_query.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "policy/sql/facts.h"

namespace warden::policy::sql {
namespace {

// Frees a normalize result on every path.
class NormalizeResult {
 public:
  explicit NormalizeResult(const std::string& sql)
      : result_(pg_query_normalize(sql.c_str())) {}
  ~NormalizeResult() { pg_query_free_normalize_result(result_); }
  NormalizeResult(const NormalizeResult&) = delete;
  NormalizeResult& operator=(const NormalizeResult&) = delete;
  const PgQueryNormalizeResult& get() const { return result_; }

 private:
  PgQueryNormalizeResult result_;
};

}  // namespace

absl::StatusOr<std::string> Normalize(absl::string_view sql) {
  if (absl::Status cost = CheckLexCost(sql); !cost.ok()) return cost;
  if (absl::Status deep = CheckNestingDepth(sql, false); !deep.ok()) {
    return deep;
  }
  const NormalizeResult r{std::string(sql)};
  if (r.get().error != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.get().error->message, " (at character ",
                     r.get().error->cursorpos, ")"));
  }
  return std::string(r.get().normalized_query == nullptr
                         ? ""
                         : r.get().normalized_query);
}

}  // namespace warden::policy::sql
