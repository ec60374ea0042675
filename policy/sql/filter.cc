#include "policy/sql/filter.h"

#include <set>
#include <string>
#include <vector>

namespace warden::policy::sql {
namespace {

using Json = nlohmann::json;

// What names the target's columns may be qualified with, and which other
// relations are in scope.
struct Scope {
  std::string target_name;
  std::string target_schema;
  std::string target_alias;
  bool others = false;  // FROM / USING / a MERGE source
  // Aliases of VALUES lists in scope, and NEW / OLD / records: their
  // columns are values.
  std::set<std::string> value_aliases;
  // Variables and parameters named in a function body.
  std::set<std::string> value_names;
  // Set when the result read a constant's value (a constant-only
  // comparison, a LIKE pattern): the same shape with other constants may
  // be judged otherwise. Null: not asked.
  bool* reads_constants = nullptr;
};

const Json& Field(const Json& j, const char* key) {
  static const Json kNull;
  return j.is_object() && j.contains(key) ? j[key] : kNull;
}

std::string Op(const Json& a_expr) {
  const Json& name = Field(a_expr, "name");
  if (!name.is_array() || name.empty()) return "";
  return Field(Field(name.back(), "String"), "sval").is_string()
             ? name.back()["String"]["sval"].get<std::string>()
             : "";
}

// The column names of a ColumnRef ("t", "id"); empty for `*` or anything
// else.
std::vector<std::string> ColumnNames(const Json& node) {
  std::vector<std::string> out;
  const Json& fields = Field(Field(node, "ColumnRef"), "fields");
  if (!fields.is_array()) return {};
  for (const auto& f : fields) {
    const Json& s = Field(Field(f, "String"), "sval");
    if (!s.is_string()) return {};
    out.push_back(s.get<std::string>());
  }
  return out;
}

// Casts and COLLATE do not change which row a value or column is.
const Json& Unwrapped(const Json& node) {
  if (node.is_object()) {
    if (node.contains("TypeCast")) return Unwrapped(Field(node["TypeCast"], "arg"));
    if (node.contains("CollateClause")) {
      return Unwrapped(Field(node["CollateClause"], "arg"));
    }
  }
  return node;
}

bool IsTargetColumn(const Json& raw, const Scope& s) {
  // The column itself: a cast could merge distinct values (id::bool =
  // true matches every non-zero id), so none is looked through; COLLATE
  // only changes how text compares.
  const Json* node = &raw;
  while (node->is_object() && node->contains("CollateClause")) {
    node = &Field((*node)["CollateClause"], "arg");
  }
  const std::vector<std::string> names = ColumnNames(*node);
  if (names.size() == 1) {
    // A bare alias or table name is the whole row (o::text LIKE '(%').
    if (names[0] == s.target_alias || names[0] == s.target_name) return false;
    return !s.others && s.value_names.count(names[0]) == 0;
  }
  if (names.size() == 2) {
    return s.target_alias.empty() ? names[0] == s.target_name
                                  : names[0] == s.target_alias;
  }
  if (names.size() == 3) {
    return s.target_alias.empty() && names[0] == s.target_schema &&
           names[1] == s.target_name;
  }
  return false;
}

bool IsStrictValue(const Json& raw, const Scope& s);

// A constant, a parameter, or something computed from those alone.
bool IsValue(const Json& raw, const Scope& s) {
  const Json& node = Unwrapped(raw);
  if (IsStrictValue(node, s)) return true;
  if (!node.is_object()) return false;
  if (node.contains("A_Expr")) {
    const Json& e = node["A_Expr"];
    if (Field(e, "kind") != "AEXPR_OP") return false;
    const bool l = !e.contains("lexpr") || IsValue(e["lexpr"], s);
    return l && e.contains("rexpr") && IsValue(e["rexpr"], s);
  }
  if (node.contains("FuncCall")) {
    const Json& f = node["FuncCall"];
    if (f.contains("agg_star") || f.contains("over") ||
        f.contains("agg_filter")) {
      return false;
    }
    for (const auto& a : Field(f, "args")) {
      if (!IsValue(a, s)) return false;
    }
    return true;
  }
  return false;
}

// A constant, a parameter, or a column of a VALUES list in scope.
bool IsStrictValue(const Json& raw, const Scope& s) {
  const Json& node = Unwrapped(raw);
  if (!node.is_object()) return false;
  if (node.contains("A_Const") || node.contains("ParamRef")) return true;
  if (node.contains("A_ArrayExpr")) {
    for (const auto& e : Field(node["A_ArrayExpr"], "elements")) {
      if (!IsStrictValue(e, s)) return false;
    }
    return true;
  }
  const std::vector<std::string> names = ColumnNames(node);
  return (names.size() == 2 && s.value_aliases.count(names[0]) > 0) ||
         (names.size() == 1 && s.value_names.count(names[0]) > 0);
}

// `false`, `NOT true`, or `c1 = c2` of two different constants of the
// same kind (1 = 2, 'a' = 'b'): no row passes.
bool IsConstantFalse(const Json& node) {
  const Json& c = Field(node, "A_Const");
  if (c.contains("boolval")) {
    return !Field(Field(c, "boolval"), "boolval").is_boolean() ||
           !c["boolval"]["boolval"].get<bool>();
  }
  const Json& b = Field(node, "BoolExpr");
  if (Field(b, "boolop") == "NOT_EXPR" && Field(b, "args").size() == 1) {
    const Json& a = Field(b["args"][0], "A_Const");
    return Field(Field(a, "boolval"), "boolval") == true;
  }
  const Json& e = Field(node, "A_Expr");
  if (Field(e, "kind") != "AEXPR_OP" || Op(e) != "=") return false;
  const Json& l = Field(Field(e, "lexpr"), "A_Const");
  const Json& r = Field(Field(e, "rexpr"), "A_Const");
  for (const char* kind : {"ival", "sval"}) {
    if (l.contains(kind) && r.contains(kind)) {
      return l[kind] != r[kind];
    }
  }
  return false;
}

// A condition of constants only: `true`, `NOT false`, `1 = 2`, `'a' < 'b'`.
bool ConstantOnly(const Json& node) {
  if (node.contains("A_Const")) return true;
  const Json& b = Field(node, "BoolExpr");
  if (Field(b, "boolop") == "NOT_EXPR" && Field(b, "args").size() == 1 &&
      Field(b["args"][0], "A_Const").is_object()) {
    return true;
  }
  const Json& e = Field(node, "A_Expr");
  return Field(Field(e, "lexpr"), "A_Const").is_object() &&
         Field(Field(e, "rexpr"), "A_Const").is_object();
}

bool IsStrictList(const Json& node, const Scope& s) {
  const Json& items = Field(Field(node, "List"), "items");
  if (!items.is_array() || items.empty()) return false;
  for (const auto& i : items) {
    if (!IsStrictValue(i, s)) return false;
  }
  return true;
}

// A variable named like the column it is compared with could be read as
// that column (plpgsql.variable_conflict = use_column): `t.id = id`.
bool SameName(const Json& column, const Json& value) {
  const std::vector<std::string> c = ColumnNames(Unwrapped(column));
  const std::vector<std::string> v = ColumnNames(Unwrapped(value));
  return !c.empty() && v.size() == 1 && c.back() == v[0];
}

// `column <op> value` or `value <op> column`.
bool ColumnAgainstValue(const Json& e, const Scope& s) {
  const Json& l = Field(e, "lexpr");
  const Json& r = Field(e, "rexpr");
  return (IsTargetColumn(l, s) && IsValue(r, s) && !SameName(l, r)) ||
         (IsTargetColumn(r, s) && IsValue(l, s) && !SameName(r, l));
}

bool LikePatternConstrains(const Json& pattern, const Scope& s) {
  const Json& node = Unwrapped(pattern);
  const Json& sval = Field(Field(Field(node, "A_Const"), "sval"), "sval");
  if (!sval.is_string()) return false;  // a parameter may be '%'
  if (s.reads_constants != nullptr) *s.reads_constants = true;
  const std::string p = sval.get<std::string>();
  return !p.empty() && p[0] != '%' && p[0] != '_';
}

bool Constrains(const Json& node, const Scope& s, bool point_only) {
  if (!node.is_object()) return false;
  if (s.reads_constants != nullptr && ConstantOnly(node)) {
    // `false`, `NOT true`, `1 = 2` filter (no row passes) and `true`,
    // `1 = 1` do not: the constants decide.
    *s.reads_constants = true;
  }
  if (IsConstantFalse(node)) return true;  // no row at all
  if (node.contains("BoolExpr")) {
    const Json& b = node["BoolExpr"];
    const std::string op = Field(b, "boolop").is_string()
                               ? b["boolop"].get<std::string>()
                               : "";
    const Json& args = Field(b, "args");
    if (!args.is_array() || args.empty()) return false;
    if (op == "AND_EXPR") {
      for (const auto& a : args) {
        if (Constrains(a, s, point_only)) return true;
      }
      return false;
    }
    if (op == "OR_EXPR") {
      for (const auto& a : args) {
        if (!Constrains(a, s, /*point_only=*/true)) return false;
      }
      return true;
    }
    // NOT: `NOT flag` limits rows like `flag` does; NOT of anything else
    // is not read (fail closed).
    return op == "NOT_EXPR" && !point_only && args.size() == 1 &&
           args[0].is_object() && args[0].contains("ColumnRef") &&
           IsTargetColumn(args[0], s);
  }
  if (node.contains("CurrentOfExpr")) return true;
  if (node.contains("NullTest")) {
    const Json& n = node["NullTest"];
    return Field(n, "nulltesttype") == "IS_NULL" &&
           IsTargetColumn(Field(n, "arg"), s);
  }
  if (node.contains("ColumnRef")) {
    return !point_only && IsTargetColumn(node, s);  // a boolean column
  }
  if (!node.contains("A_Expr")) return false;
  const Json& e = node["A_Expr"];
  const std::string kind =
      Field(e, "kind").is_string() ? e["kind"].get<std::string>() : "";
  const std::string op = Op(e);
  if (kind == "AEXPR_OP") {
    if (op == "=") return ColumnAgainstValue(e, s);
    if (point_only) return false;
    // <> (and NOT IN, IS DISTINCT FROM below) excludes a few rows and
    // keeps the rest: not a filter.
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      return ColumnAgainstValue(e, s);
    }
    return false;
  }
  if (kind == "AEXPR_NOT_DISTINCT") return ColumnAgainstValue(e, s);
  if (kind == "AEXPR_IN") {
    if (op != "=") return false;  // NOT IN
    return IsTargetColumn(Field(e, "lexpr"), s) &&
           IsStrictList(Field(e, "rexpr"), s);
  }
  if (kind == "AEXPR_OP_ANY") {
    return op == "=" && IsTargetColumn(Field(e, "lexpr"), s) &&
           IsStrictValue(Field(e, "rexpr"), s);
  }
  if (point_only) return false;
  // NOT BETWEEN, like <>, names the rows it leaves alone.
  if (kind == "AEXPR_BETWEEN" || kind == "AEXPR_BETWEEN_SYM") {
    return IsTargetColumn(Field(e, "lexpr"), s) &&
           IsStrictList(Field(e, "rexpr"), s);
  }
  if (kind == "AEXPR_LIKE" || kind == "AEXPR_ILIKE") {
    return (op == "~~" || op == "~~*") &&
           IsTargetColumn(Field(e, "lexpr"), s) &&
           LikePatternConstrains(Field(e, "rexpr"), s);
  }
  return false;
}

// Adds a FROM / USING / MERGE source item to the scope.
void AddOther(const Json& item, Scope* s) {
  s->others = true;
  const Json& sub = Field(item, "RangeSubselect");
  if (sub.is_null()) return;
  const Json& select = Field(Field(sub, "subquery"), "SelectStmt");
  const Json& alias = Field(Field(sub, "alias"), "aliasname");
  if (select.contains("valuesLists") && !select.contains("fromClause") &&
      alias.is_string()) {
    // Values only: a VALUES list whose rows are constants, parameters or
    // what the context says are values.
    Scope values;
    values.value_aliases = s->value_aliases;
    values.value_names = s->value_names;
    for (const auto& row : select["valuesLists"]) {
      for (const auto& v : Field(Field(row, "List"), "items")) {
        if (!IsStrictValue(v, values)) return;
      }
    }
    s->value_aliases.insert(alias.get<std::string>());
  }
}

Scope TargetScope(const Json& relation, const FilterContext& context) {
  Scope s;
  s.value_aliases = context.value_qualifiers;
  s.value_names = context.value_names;
  if (Field(relation, "relname").is_string()) {
    s.target_name = relation["relname"].get<std::string>();
  }
  if (Field(relation, "schemaname").is_string()) {
    s.target_schema = relation["schemaname"].get<std::string>();
  }
  const Json& alias = Field(Field(relation, "alias"), "aliasname");
  if (alias.is_string()) s.target_alias = alias.get<std::string>();
  return s;
}

bool MergeIsFiltered(const Json& body, const FilterContext& context) {
  Scope s = TargetScope(Field(body, "relation"), context);
  AddOther(Field(body, "sourceRelation"), &s);
  const bool on = Constrains(Field(body, "joinCondition"), s, false);
  for (const auto& w : Field(body, "mergeWhenClauses")) {
    const Json& c = Field(w, "MergeWhenClause");
    const std::string type = Field(c, "commandType").is_string()
                                 ? c["commandType"].get<std::string>()
                                 : "";
    if (!Field(c, "matched").is_boolean() || !c["matched"].get<bool>()) {
      continue;  // WHEN NOT MATCHED inserts
    }
    if (type != "CMD_UPDATE" && type != "CMD_DELETE") continue;
    if (!on && !Constrains(Field(c, "condition"), s, false)) return false;
  }
  return true;
}

bool UpsertIsFiltered(const Json& body, const FilterContext& context) {
  const Json& conflict = Field(body, "onConflictClause");
  if (Field(conflict, "action") != "ONCONFLICT_UPDATE") return true;
  const Json& select = Field(Field(body, "selectStmt"), "SelectStmt");
  // DEFAULT VALUES (no select), or VALUES lists of values only: as many
  // rows as written (a set-returning function in VALUES is not: VALUES
  // (unnest(...)) or (generate_series(...)) makes any number).
  if (select.is_null()) return true;
  if (select.contains("valuesLists") && !select.contains("fromClause")) {
    Scope values;
    values.value_aliases = context.value_qualifiers;
    values.value_names = context.value_names;
    bool all_values = true;
    for (const auto& row : select["valuesLists"]) {
      for (const auto& v : Field(Field(row, "List"), "items")) {
        const Json& u = Unwrapped(v);
        all_values = all_values &&
                     (IsStrictValue(u, values) ||
                      (u.is_object() && u.contains("SetToDefault")));
      }
    }
    if (all_values) return true;
  }
  Scope s = TargetScope(Field(body, "relation"), context);
  s.others = true;  // EXCLUDED is in scope
  return Constrains(Field(conflict, "whereClause"), s, false);
}

}  // namespace

bool HasEffectiveFilter(const std::string& node, const Json& body,
                        const FilterContext& context, bool* reads_constants) {
  if (reads_constants != nullptr) *reads_constants = false;
  if (node == "DeleteStmt" || node == "UpdateStmt") {
    Scope s = TargetScope(Field(body, "relation"), context);
    s.reads_constants = reads_constants;
    for (const char* key : {"usingClause", "fromClause"}) {
      for (const auto& item : Field(body, key)) AddOther(item, &s);
    }
    return Constrains(Field(body, "whereClause"), s, false);
  }
  // MERGE and upserts are not followed for it: said to read constants
  // (DO UPDATE ... WHERE 1 = 2 is filtered, WHERE 1 = 1 is not; a VALUES
  // list of constants is bounded, one of expressions may not be).
  if (reads_constants != nullptr &&
      (node == "MergeStmt" ||
       (node == "InsertStmt" &&
        Field(Field(body, "onConflictClause"), "action") ==
            "ONCONFLICT_UPDATE"))) {
    *reads_constants = true;
  }
  if (node == "MergeStmt") return MergeIsFiltered(body, context);
  if (node == "InsertStmt") return UpsertIsFiltered(body, context);
  if (node == "SelectStmt" && Field(body, "lockingClause").is_array() &&
      !body["lockingClause"].empty()) {
    // SELECT ... FOR UPDATE / SHARE locks what it reads until the
    // transaction ends: limited when it names the rows of its one table,
    // or takes a LIMIT of at most 1,000 of them, written as a number
    // (LIMIT ALL, LIMIT NULL, LIMIT $1 or a large one are not).
    const Json& limit = Field(Field(Field(body, "limitCount"), "A_Const"), "ival");
    if (reads_constants != nullptr && body.contains("limitCount")) {
      *reads_constants = true;
    }
    if (Field(limit, "ival").is_number_integer() &&
        limit["ival"].get<int64_t>() >= 1 && limit["ival"].get<int64_t>() <= 1000) {
      return true;
    }
    const Json& from = Field(body, "fromClause");
    if (!from.is_array() || from.size() != 1 ||
        !Field(from[0], "RangeVar").is_object()) {
      return false;
    }
    Scope s = TargetScope(from[0]["RangeVar"], context);
    s.reads_constants = reads_constants;
    return Constrains(Field(body, "whereClause"), s, false);
  }
  return true;
}

}  // namespace warden::policy::sql
