// The effective-filter test: whether a DELETE, UPDATE, MERGE or
// INSERT ... ON CONFLICT DO UPDATE is limited to rows it names, as a
// positive definition rather than a list of known tautologies.
//
// A write is filtered when its condition has a conjunct that constrains a
// column of the target relation against a value:
//   - the column: a column of the target, unqualified only when no other
//     relation is in scope (no FROM / USING), otherwise qualified with the
//     target's name or alias; COLLATE around it is fine, a cast is not (it
//     can merge values: id::bool), nor is the whole row (o, o::text);
//   - the value: a constant or a bound parameter ($n), through casts,
//     COLLATE, arithmetic and function calls of values; or a column of a
//     VALUES list in FROM / USING (a bounded set of constants); or what
//     the context says is a value (FilterContext);
//   - the constraint: = , IN (...), = ANY (...), IS NOT DISTINCT FROM,
//     IS NULL, WHERE CURRENT OF (point constraints); or <, >, <=, >=,
//     BETWEEN, LIKE / ILIKE with a constant pattern that does not start
//     with a wildcard, a bare boolean column or NOT of one (range
//     constraints). <>, NOT IN, NOT BETWEEN, NOT LIKE and IS DISTINCT FROM
//     name the rows left alone, not the rows changed, and are not filters.
// AND is filtered when any of its conjuncts is; OR only when every branch
// is a point constraint (so `x = 1 OR x <> 1` is not). Anything else
// (NOT, subqueries, EXISTS, CASE, coalesce, `x = x`, `ctid = ctid`, a
// condition on another table only, a bare `$1`) is not a filter.
//
// The result does not depend on the value of any constant or parameter,
// only on the statement's shape: `WHERE $1` is not a filter whatever is
// bound, and `WHERE id = $1` is one whatever is bound. A range such as
// `id > 0` counts as a filter although it may cover every row: Warden
// does not know the data.
//
// MERGE is filtered when every WHEN MATCHED UPDATE / DELETE is limited by
// its ON condition or its own AND condition. INSERT ... ON CONFLICT DO
// UPDATE is filtered when its rows come from VALUES of values only (or
// DEFAULT VALUES), or its DO UPDATE has a filtering WHERE; INSERT ... SELECT ... ON
// CONFLICT DO UPDATE may update every row and is not.
//
// SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE locks the rows
// it reads until the transaction ends: it is filtered when its one table's
// rows are named as above, or it has a LIMIT.
#ifndef WARDEN_POLICY_SQL_FILTER_H_
#define WARDEN_POLICY_SQL_FILTER_H_

#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace warden::policy::sql {

// Names that stand for values where the statement runs: a rule action's
// NEW and OLD, a function's parameters, PL/pgSQL variables and records
// (one value per execution, as a bound parameter is).
struct FilterContext {
  std::set<std::string> value_qualifiers;  // NEW.id, OLD.id, rec.id
  std::set<std::string> value_names;       // i, p_id
};

// `node` is the statement's parse node name ("DeleteStmt", "UpdateStmt",
// "MergeStmt", "InsertStmt"), `body` its libpg_query JSON. True for
// anything that is not one of those writes.
// With `reads_constants`: set to whether the result read a constant's
// value (a constant-only condition such as `1 = 2`, a LIKE pattern; MERGE
// and upserts always say so), so the same statement with other constants
// could be judged otherwise.
bool HasEffectiveFilter(const std::string& node, const nlohmann::json& body,
                        const FilterContext& context = FilterContext(),
                        bool* reads_constants = nullptr);

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_FILTER_H_
