#include "policy/sql/facts.h"

#include <pg_query.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
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
};

void Collect(const Json& node, Found* found) {
  if (node.is_array()) {
    for (const auto& v : node) Collect(v, found);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const Json& v = it.value();
    if (it.key() == "RangeVar" && v.is_object()) {
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

absl::StatusOr<std::vector<StatementFacts>> Analyze(absl::string_view sql) {
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
    StatementFacts f = Classify(node.key(), node.value());
    Found found;
    Collect(node.value(), &found);
    f.relations = InSourceOrderUnique(std::move(found.relations));
    f.functions = InSourceOrderUnique(std::move(found.functions));
    if (f.node == "DeleteStmt" || f.node == "UpdateStmt") {
      f.has_effective_filter = node.value().contains("whereClause") &&
                               !IsConstantTrue(node.value()["whereClause"]);
    } else if (f.node == "MergeStmt") {
      f.has_effective_filter = true;  // MERGE always joins on a condition.
    }
    const size_t location = raw.value("stmt_location", 0);
    const size_t length = raw.contains("stmt_len")
                              ? static_cast<size_t>(raw["stmt_len"])
                              : text.size() - location;
    f.text = std::string(absl::StripAsciiWhitespace(
        absl::string_view(text).substr(location, length)));
    FingerprintResult fp(f.text);
    if (fp.r.error == nullptr) f.fingerprint = fp.r.fingerprint_str;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace warden::policy::sql
