#include "policy/sql/facts.h"

#include <pg_query.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace warden::policy::sql {
namespace {

using Json = nlohmann::json;

// RAII over libpg_query's results.
struct ParseResult {
  PgQueryParseResult r;
  explicit ParseResult(const std::string& sql)
      : r(pg_query_parse(sql.c_str())) {}
  ~ParseResult() { pg_query_free_parse_result(r); }
};
struct FingerprintResult {
  PgQueryFingerprintResult r;
  explicit FingerprintResult(const std::string& sql)
      : r(pg_query_fingerprint(sql.c_str())) {}
  ~FingerprintResult() { pg_query_free_fingerprint_result(r); }
};

std::string ObjectTypeTag(const std::string& object_type) {
  // "OBJECT_MATERIALIZED_VIEW" -> "MATERIALIZED VIEW".
  std::string tag = object_type;
  if (tag.rfind("OBJECT_", 0) == 0) tag = tag.substr(7);
  for (char& c : tag) {
    if (c == '_') c = ' ';
  }
  if (tag == "MATVIEW") return "MATERIALIZED VIEW";
  if (tag == "FOREIGN TABLE") return "FOREIGN TABLE";
  return tag;
}

// Command tag and class for a statement node, as PostgreSQL names them.
StatementFacts Classify(const std::string& node, const Json& body) {
  StatementFacts f;
  f.node = node;
  auto set = [&](std::string command, StatementClass cls) {
    f.command = std::move(command);
    f.statement_class = cls;
  };
  using C = StatementClass;
  if (node == "SelectStmt") {
    // SELECT ... INTO creates a table; FOR UPDATE only locks: a read.
    if (body.contains("intoClause")) {
      set("SELECT INTO", C::kDdl);
    } else {
      set("SELECT", C::kRead);
    }
  } else if (node == "InsertStmt") {
    set("INSERT", C::kWrite);
  } else if (node == "UpdateStmt") {
    set("UPDATE", C::kWrite);
  } else if (node == "DeleteStmt") {
    set("DELETE", C::kWrite);
  } else if (node == "MergeStmt") {
    set("MERGE", C::kWrite);
  } else if (node == "CopyStmt") {
    set("COPY", body.value("is_from", false) ? C::kWrite : C::kRead);
  } else if (node == "DropStmt") {
    set("DROP " + ObjectTypeTag(body.value("removeType", "")), C::kDdl);
  } else if (node == "TruncateStmt") {
    set("TRUNCATE TABLE", C::kDdl);
  } else if (node == "CreateStmt") {
    set("CREATE TABLE", C::kDdl);
  } else if (node == "CreateTableAsStmt") {
    set(body.value("objtype", "") == "OBJECT_MATVIEW"
            ? "CREATE MATERIALIZED VIEW"
            : "CREATE TABLE AS",
        C::kDdl);
  } else if (node == "AlterTableStmt") {
    set("ALTER " + ObjectTypeTag(body.value("objtype", "OBJECT_TABLE")),
        C::kDdl);
  } else if (node == "IndexStmt") {
    set("CREATE INDEX", C::kDdl);
  } else if (node == "ViewStmt") {
    set("CREATE VIEW", C::kDdl);
  } else if (node == "CreateSchemaStmt") {
    set("CREATE SCHEMA", C::kDdl);
  } else if (node == "CreatedbStmt") {
    set("CREATE DATABASE", C::kDdl);
  } else if (node == "DropdbStmt") {
    set("DROP DATABASE", C::kDdl);
  } else if (node == "DropOwnedStmt") {
    set("DROP OWNED", C::kDcl);
  } else if (node == "RenameStmt") {
    set("ALTER " + ObjectTypeTag(body.value("renameType", "")), C::kDdl);
  } else if (node == "CreateFunctionStmt") {
    set(body.value("is_procedure", false) ? "CREATE PROCEDURE"
                                          : "CREATE FUNCTION",
        C::kDdl);
  } else if (node == "CreateTrigStmt") {
    set("CREATE TRIGGER", C::kDdl);
  } else if (node == "RuleStmt") {
    set("CREATE RULE", C::kDdl);
  } else if (node == "CreateSeqStmt") {
    set("CREATE SEQUENCE", C::kDdl);
  } else if (node == "AlterSeqStmt") {
    set("ALTER SEQUENCE", C::kDdl);
  } else if (node == "CreateExtensionStmt") {
    set("CREATE EXTENSION", C::kDdl);
  } else if (node == "GrantStmt") {
    set(body.value("is_grant", false) ? "GRANT" : "REVOKE", C::kDcl);
  } else if (node == "GrantRoleStmt") {
    set(body.value("is_grant", false) ? "GRANT ROLE" : "REVOKE ROLE", C::kDcl);
  } else if (node == "CreateRoleStmt") {
    set("CREATE ROLE", C::kDcl);
  } else if (node == "AlterRoleStmt") {
    set("ALTER ROLE", C::kDcl);
  } else if (node == "DropRoleStmt") {
    set("DROP ROLE", C::kDcl);
  } else if (node == "AlterDefaultPrivilegesStmt") {
    set("ALTER DEFAULT PRIVILEGES", C::kDcl);
  } else if (node == "TransactionStmt") {
    static const std::pair<const char*, const char*> kKinds[] = {
        {"TRANS_STMT_BEGIN", "BEGIN"},
        {"TRANS_STMT_START", "START TRANSACTION"},
        {"TRANS_STMT_COMMIT", "COMMIT"},
        {"TRANS_STMT_ROLLBACK", "ROLLBACK"},
        {"TRANS_STMT_SAVEPOINT", "SAVEPOINT"},
        {"TRANS_STMT_RELEASE", "RELEASE"},
        {"TRANS_STMT_ROLLBACK_TO", "ROLLBACK"},
        {"TRANS_STMT_PREPARE", "PREPARE TRANSACTION"},
        {"TRANS_STMT_COMMIT_PREPARED", "COMMIT PREPARED"},
        {"TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK PREPARED"}};
    const std::string kind = body.value("kind", "");
    set("BEGIN", C::kTransaction);
    for (const auto& [k, tag] : kKinds) {
      if (kind == k) f.command = tag;
    }
  } else if (node == "VariableSetStmt") {
    set(body.value("kind", "") == "VAR_RESET" ? "RESET" : "SET", C::kUtility);
  } else if (node == "VariableShowStmt") {
    set("SHOW", C::kRead);
  } else if (node == "ExplainStmt") {
    set("EXPLAIN", C::kUtility);
  } else if (node == "DoStmt") {
    set("DO", C::kUtility);
  } else if (node == "CallStmt") {
    set("CALL", C::kUtility);
  } else if (node == "AlterSystemStmt") {
    set("ALTER SYSTEM", C::kUtility);
  } else if (node == "LoadStmt") {
    set("LOAD", C::kUtility);
  } else if (node == "PrepareStmt") {
    set("PREPARE", C::kUtility);
  } else if (node == "ExecuteStmt") {
    set("EXECUTE", C::kUtility);
  } else if (node == "DeallocateStmt") {
    set("DEALLOCATE", C::kUtility);
  } else if (node == "VacuumStmt") {
    set(body.value("is_vacuumcmd", false) ? "VACUUM" : "ANALYZE", C::kUtility);
  } else if (node == "NotifyStmt") {
    set("NOTIFY", C::kUtility);
  } else if (node == "ListenStmt") {
    set("LISTEN", C::kUtility);
  } else if (node == "UnlistenStmt") {
    set("UNLISTEN", C::kUtility);
  } else {
    // Every other node: its name without "Stmt", upper-cased, as utility
    // until the full table lands with the policy issue.
    std::string tag = node;
    if (tag.size() > 4 && tag.compare(tag.size() - 4, 4, "Stmt") == 0) {
      tag.resize(tag.size() - 4);
    }
    set(absl::AsciiStrToUpper(tag), C::kUtility);
  }
  return f;
}

// Strips "location" keys so two constants compare by value only.
Json WithoutLocation(const Json& j) {
  if (j.is_object()) {
    Json out = Json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != "location") out[it.key()] = WithoutLocation(it.value());
    }
    return out;
  }
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& v : j) out.push_back(WithoutLocation(v));
    return out;
  }
  return j;
}

bool IsBoolConst(const Json& node, bool value) {
  if (!node.is_object() || !node.contains("A_Const")) return false;
  const Json& c = node["A_Const"];
  if (!c.contains("boolval")) return false;
  const Json& b = c["boolval"];
  const bool v = b.is_object() && b.value("boolval", false);
  return v == value;
}

bool IsConstantTrue(const Json& node);

bool IsConstantFalse(const Json& node) {
  if (IsBoolConst(node, false)) return true;
  if (node.is_object() && node.contains("BoolExpr")) {
    const Json& b = node["BoolExpr"];
    const std::string op = b.value("boolop", "");
    const Json& args = b.contains("args") ? b["args"] : Json::array();
    if (op == "NOT_EXPR") return args.size() == 1 && IsConstantTrue(args[0]);
  }
  return false;
}

bool IsConstantTrue(const Json& node) {
  if (IsBoolConst(node, true)) return true;
  if (!node.is_object()) return false;
  if (node.contains("BoolExpr")) {
    const Json& b = node["BoolExpr"];
    const std::string op = b.value("boolop", "");
    const Json& args = b.contains("args") ? b["args"] : Json::array();
    if (op == "NOT_EXPR") return args.size() == 1 && IsConstantFalse(args[0]);
    if (op == "OR_EXPR") {
      for (const auto& a : args) {
        if (IsConstantTrue(a)) return true;
      }
      return false;
    }
    if (op == "AND_EXPR") {
      for (const auto& a : args) {
        if (!IsConstantTrue(a)) return false;
      }
      return !args.empty();
    }
    return false;
  }
  if (node.contains("A_Expr")) {
    // c = c for two equal constants.
    const Json& e = node["A_Expr"];
    if (e.value("kind", "") != "AEXPR_OP" || !e.contains("name") ||
        e["name"].size() != 1 || !e.contains("lexpr") || !e.contains("rexpr")) {
      return false;
    }
    const Json& name = e["name"][0];
    if (!name.contains("String") || name["String"].value("sval", "") != "=") {
      return false;
    }
    const Json& l = e["lexpr"];
    const Json& r = e["rexpr"];
    return l.contains("A_Const") && r.contains("A_Const") &&
           WithoutLocation(l) == WithoutLocation(r);
  }
  return false;
}

// Relations and functions with their character positions; the JSON tree
// orders keys alphabetically, so results are sorted back into source order.
struct Found {
  std::vector<std::pair<int, Relation>> relations;
  std::vector<std::pair<int, std::string>> functions;
  std::vector<std::pair<int, std::string>> columns;
};

void Collect(const Json& node, Found* found) {
  if (node.is_array()) {
    for (const auto& v : node) Collect(v, found);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const Json& v = it.value();
    if (it.key() == "ColumnRef" && v.is_object() && v.contains("fields")) {
      std::vector<std::string> parts;
      for (const auto& p : v["fields"]) {
        if (p.contains("String"))
          parts.push_back(p["String"].value("sval", ""));
        if (p.contains("A_Star")) parts.push_back("*");
      }
      found->columns.emplace_back(v.value("location", -1),
                                  absl::StrJoin(parts, "."));
    } else if (it.key() == "RangeVar" && v.is_object()) {
      found->relations.emplace_back(
          v.value("location", -1),
          Relation{v.value("schemaname", ""), v.value("relname", "")});
    } else if (it.key() == "FuncCall" && v.is_object() &&
               v.contains("funcname")) {
      std::vector<std::string> parts;
      for (const auto& p : v["funcname"]) {
        if (p.contains("String"))
          parts.push_back(p["String"].value("sval", ""));
      }
      found->functions.emplace_back(v.value("location", -1),
                                    absl::StrJoin(parts, "."));
    }
    Collect(v, found);
  }
}

template <typename T>
std::vector<T> InSourceOrderUnique(std::vector<std::pair<int, T>> items) {
  std::stable_sort(
      items.begin(), items.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<T> out;
  for (auto& [location, item] : items) {
    if (std::find(out.begin(), out.end(), item) == out.end()) {
      out.push_back(std::move(item));
    }
  }
  return out;
}

}  // namespace

const char* ClassName(StatementClass c) {
  switch (c) {
    case StatementClass::kRead:
      return "read";
    case StatementClass::kWrite:
      return "write";
    case StatementClass::kDdl:
      return "ddl";
    case StatementClass::kDcl:
      return "dcl";
    case StatementClass::kTransaction:
      return "transaction";
    case StatementClass::kUtility:
      return "utility";
  }
  return "utility";
}

namespace {

constexpr int kMaxDepth = 8;  // nesting bound (functions defining functions).

struct PlpgsqlResult {
  PgQueryPlpgsqlParseResult r;
  explicit PlpgsqlResult(const std::string& sql)
      : r(pg_query_parse_plpgsql(sql.c_str())) {}
  ~PlpgsqlResult() { pg_query_free_plpgsql_parse_result(r); }
};

absl::StatusOr<std::vector<StatementFacts>> AnalyzeText(absl::string_view sql,
                                                        int depth);

// Adds the statements of `sql` (found by `via`) to `f.nested` and returns
// true. SQL that cannot be parsed makes the parent unresolved (so policy
// fails closed), unless `may_fail`: then it only returns false.
bool AddNestedText(StatementFacts* f, const std::string& sql, const char* via,
                   int depth, bool may_fail = false) {
  auto nested = AnalyzeText(sql, depth + 1);
  if (!nested.ok()) {
    if (!may_fail) f->unresolved_dynamic_sql = true;
    return false;
  }
  for (auto& n : *nested) {
    n.nested_via = via;
    if (n.unresolved_dynamic_sql) f->unresolved_dynamic_sql = true;
    f->nested.push_back(std::move(n));
  }
  return true;
}

// `text` is the statement's own text when known (top level of a parse).
StatementFacts AnalyzeNode(const std::string& node, const Json& body, int depth,
                           const std::string& text = "");

void AddNestedNode(StatementFacts* f, const Json& stmt, const char* via,
                   int depth) {
  if (!stmt.is_object() || stmt.empty()) return;
  const auto node = stmt.begin();
  StatementFacts n = AnalyzeNode(node.key(), node.value(), depth + 1);
  n.nested_via = via;
  if (n.unresolved_dynamic_sql) f->unresolved_dynamic_sql = true;
  f->nested.push_back(std::move(n));
}

std::string DefElemString(const Json& options, const char* name) {
  if (!options.is_array()) return "";
  for (const auto& o : options) {
    if (!o.contains("DefElem")) continue;
    const Json& d = o["DefElem"];
    if (d.value("defname", "") != name || !d.contains("arg")) continue;
    const Json& arg = d["arg"];
    if (arg.contains("String")) return arg["String"].value("sval", "");
    if (arg.contains("List") && arg["List"].contains("items")) {
      for (const auto& item : arg["List"]["items"]) {
        if (item.contains("String")) return item["String"].value("sval", "");
      }
    }
  }
  return "";
}

bool HasDefElem(const Json& options, const char* name) {
  if (!options.is_array()) return false;
  for (const auto& o : options) {
    if (o.contains("DefElem") && o["DefElem"].value("defname", "") == name) {
      // EXPLAIN (ANALYZE false) does not execute.
      const Json& d = o["DefElem"];
      if (d.contains("arg") && d["arg"].contains("String")) {
        const std::string v = d["arg"]["String"].value("sval", "");
        return v != "false" && v != "off" && v != "0";
      }
      return true;
    }
  }
  return false;
}

// The string a PL/pgSQL EXECUTE runs, if it is a plain literal.
bool LiteralString(const std::string& expr, std::string* out) {
  ParseResult parsed("SELECT " + expr);
  if (parsed.r.error != nullptr) return false;
  const Json tree = Json::parse(parsed.r.parse_tree, nullptr, false);
  if (tree.is_discarded()) return false;
  const Json& stmts = tree["stmts"];
  if (stmts.size() != 1) return false;
  const Json& sel = stmts[0]["stmt"];
  if (!sel.contains("SelectStmt") ||
      !sel["SelectStmt"].contains("targetList")) {
    return false;
  }
  const Json& targets = sel["SelectStmt"]["targetList"];
  if (targets.size() != 1 || !targets[0].contains("ResTarget")) return false;
  const Json& val = targets[0]["ResTarget"]["val"];
  if (!val.contains("A_Const") || !val["A_Const"].contains("sval")) {
    return false;
  }
  *out = val["A_Const"]["sval"].value("sval", "");
  return true;
}

// Walks a PL/pgSQL tree: SQL statements, expressions and EXECUTEs.
void WalkPlpgsql(const Json& node, const std::string& parent_key,
                 StatementFacts* f, int depth) {
  if (node.is_array()) {
    for (const auto& v : node) WalkPlpgsql(v, parent_key, f, depth);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const Json& v = it.value();
    if (it.key() == "PLpgSQL_stmt_dynexecute" ||
        it.key() == "PLpgSQL_stmt_dynfors" || it.key() == "PLpgSQL_stmt_open") {
      std::string literal;
      const Json* expr = nullptr;
      if (v.contains("query") && v["query"].contains("PLpgSQL_expr")) {
        expr = &v["query"]["PLpgSQL_expr"];
      } else if (v.contains("dynquery") &&
                 v["dynquery"].contains("PLpgSQL_expr")) {
        expr = &v["dynquery"]["PLpgSQL_expr"];
      }
      if (expr != nullptr) {
        if (LiteralString(expr->value("query", ""), &literal)) {
          AddNestedText(f, literal, "execute", depth);
        } else {
          f->unresolved_dynamic_sql = true;  // EXECUTE of a computed string.
        }
        continue;
      }
    }
    if (it.key() == "PLpgSQL_expr") {
      std::string query = v.value("query", "");
      if (parent_key == "sqlstmt") {
        AddNestedText(f, query, "plpgsql", depth);
      } else {
        // An expression ("n := f(x)", "n > 0", "SELECT ..." for PERFORM):
        // parse its right-hand side as a SELECT list.
        const size_t assign = query.find(":=");
        if (assign != std::string::npos) query = query.substr(assign + 2);
        if (!AddNestedText(f, query, "plpgsql", depth, /*may_fail=*/true)) {
          AddNestedText(f, "SELECT " + query, "plpgsql", depth);
        }
      }
      continue;
    }
    WalkPlpgsql(v, it.key(), f, depth);
  }
}

void AddPlpgsqlBody(StatementFacts* f, const std::string& create_function_sql,
                    int depth) {
  PlpgsqlResult parsed(create_function_sql);
  if (parsed.r.error != nullptr) {
    f->unresolved_dynamic_sql = true;
    return;
  }
  const Json tree = Json::parse(parsed.r.plpgsql_funcs, nullptr, false);
  if (tree.is_discarded()) {
    f->unresolved_dynamic_sql = true;
    return;
  }
  WalkPlpgsql(tree, "", f, depth);
}

StatementFacts AnalyzeNode(const std::string& node, const Json& body, int depth,
                           const std::string& text) {
  StatementFacts f = Classify(node, body);
  f.text = text;
  Found found;
  Collect(body, &found);
  // Columns written by INSERT (its column list) and UPDATE (SET targets);
  // SELECT aliases are names, not columns, and are not taken.
  const char* written = node == "InsertStmt"   ? "cols"
                        : node == "UpdateStmt" ? "targetList"
                                               : nullptr;
  if (written != nullptr && body.contains(written)) {
    for (const auto& t : body[written]) {
      if (t.contains("ResTarget") && t["ResTarget"].contains("name")) {
        found.columns.emplace_back(t["ResTarget"].value("location", -1),
                                   t["ResTarget"].value("name", ""));
      }
    }
  }
  f.relations = InSourceOrderUnique(std::move(found.relations));
  f.functions = InSourceOrderUnique(std::move(found.functions));
  f.columns = InSourceOrderUnique(std::move(found.columns));
  if (f.node == "DeleteStmt" || f.node == "UpdateStmt") {
    f.has_effective_filter =
        body.contains("whereClause") && !IsConstantTrue(body["whereClause"]);
  }
  if (depth >= kMaxDepth) {
    f.unresolved_dynamic_sql = true;  // too deep to follow: fail closed.
    return f;
  }
  // Statements inside CTEs (WITH d AS (DELETE ...) SELECT ...).
  if (body.contains("withClause") && body["withClause"].contains("ctes")) {
    for (const auto& cte : body["withClause"]["ctes"]) {
      if (cte.contains("CommonTableExpr") &&
          cte["CommonTableExpr"].contains("ctequery")) {
        AddNestedNode(&f, cte["CommonTableExpr"]["ctequery"], "cte", depth);
      }
    }
  }
  if (node == "ExplainStmt" && body.contains("query") &&
      HasDefElem(body.value("options", Json::array()), "analyze")) {
    AddNestedNode(&f, body["query"], "explain analyze", depth);
  } else if (node == "PrepareStmt" && body.contains("query")) {
    AddNestedNode(&f, body["query"], "prepare", depth);
  } else if (node == "RuleStmt" && body.contains("actions")) {
    for (const auto& action : body["actions"]) {
      AddNestedNode(&f, action, "rule", depth);
    }
  } else if (node == "CreateFunctionStmt") {
    const Json options = body.value("options", Json::array());
    const std::string language =
        absl::AsciiStrToLower(DefElemString(options, "language"));
    const std::string source = DefElemString(options, "as");
    if (body.contains("sql_body")) {
      // BEGIN ATOMIC ... END: statements already parsed, in order.
      std::function<void(const Json&)> visit = [&](const Json& j) {
        if (j.is_array()) {
          for (const auto& v : j) visit(v);
        } else if (j.is_object() && j.size() == 1 &&
                   absl::EndsWith(j.begin().key(), "Stmt")) {
          AddNestedNode(&f, j, "function body", depth);
        } else if (j.is_object()) {
          for (auto it = j.begin(); it != j.end(); ++it) visit(it.value());
        }
      };
      visit(body["sql_body"]);
    } else if (language == "sql") {
      AddNestedText(&f, source, "function body", depth);
    } else if (language == "plpgsql") {
      f.nested_languages.push_back("plpgsql");
      // libpg_query parses PL/pgSQL from the whole CREATE FUNCTION text.
      if (text.empty()) {
        f.unresolved_dynamic_sql = true;
      } else {
        AddPlpgsqlBody(&f, text, depth);
      }
    } else {
      f.nested_languages.push_back(language);  // e.g. plpython3u: opaque.
      f.unresolved_dynamic_sql = true;
    }
  } else if (node == "DoStmt") {
    const Json args = body.value("args", Json::array());
    std::string language =
        absl::AsciiStrToLower(DefElemString(args, "language"));
    if (language.empty()) language = "plpgsql";
    f.nested_languages.push_back(language);
    if (language == "plpgsql") {
      const std::string source = DefElemString(args, "as");
      AddPlpgsqlBody(&f,
                     "CREATE FUNCTION warden_do() RETURNS void LANGUAGE "
                     "plpgsql AS $warden_do$" +
                         source + "$warden_do$",
                     depth);
    } else {
      f.unresolved_dynamic_sql = true;
    }
  }
  return f;
}

absl::StatusOr<std::vector<StatementFacts>> AnalyzeText(absl::string_view sql,
                                                        int depth) {
  const std::string text(sql);
  ParseResult parsed(text);
  if (parsed.r.error != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(parsed.r.error->message, " (at character ",
                     parsed.r.error->cursorpos, ")"));
  }
  const Json tree = Json::parse(parsed.r.parse_tree, nullptr,
                                /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.contains("stmts")) {
    return absl::InternalError("libpg_query returned an unreadable tree");
  }
  std::vector<StatementFacts> out;
  for (const auto& raw : tree["stmts"]) {
    if (!raw.contains("stmt") || !raw["stmt"].is_object() ||
        raw["stmt"].empty()) {
      continue;  // an empty statement (";;").
    }
    const auto node = raw["stmt"].begin();
    const size_t location = raw.value("stmt_location", 0);
    const size_t length = raw.contains("stmt_len")
                              ? static_cast<size_t>(raw["stmt_len"])
                              : text.size() - location;
    StatementFacts f =
        AnalyzeNode(node.key(), node.value(), depth,
                    std::string(absl::StripAsciiWhitespace(
                        absl::string_view(text).substr(location, length))));
    FingerprintResult fp(f.text);
    if (fp.r.error == nullptr) f.fingerprint = fp.r.fingerprint_str;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<StatementFacts>> Analyze(absl::string_view sql) {
  return AnalyzeText(sql, 0);
}

}  // namespace warden::policy::sql
