#include "policy/sql/facts.h"

#include <pg_query.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "policy/sql/filter.h"

namespace warden::policy::sql {
namespace {

using Json = nlohmann::json;

// Bounds on what Warden hands to libpg_query and then walks: a statement
// beyond them is refused with the reason, never analysed.
//
// libpg_query's lexer (PostgreSQL's scan.l) matches a whole run of
// operator characters and then backs up to a "/*" or "--" inside it, so a
// run of n such characters costs about n*n/2 steps ("/*/*/*..." nested
// comments, "+-+-+-..."): 40,000 of them take seconds. The sum of the
// squares of the runs bounds the lexer's work; 2^26 is a few tens of
// milliseconds, and no written statement comes near it (a line of 80
// dashes counts 6,400).
constexpr uint64_t kMaxLexCost = uint64_t{1} << 26;
// PostgreSQL's op_chars (scan.l): what an operator token is made of.
constexpr absl::string_view kOperatorChars = "~!@#^&|`?+-*/%<>=";
// The parse tree is walked recursively; a left-deep expression of 10,000
// terms ("1+1+1+...") is 20,000 levels deep. PostgreSQL itself refuses
// such depths ("stack depth limit exceeded"); Warden refuses them before
// its walk could exhaust a worker's stack.
constexpr int kMaxTreeDepth = 4000;
// libpg_query itself recurses once per level while it writes the tree
// (about 300 bytes of stack a level) and has no depth check, so a deep
// statement must be refused before it is parsed: by an upper bound on the
// depth read off the text (EstimateNestingDepth).
constexpr int kMaxEstimatedDepth = 1000;

}  // namespace

absl::Status CheckLexCost(absl::string_view text) {
  uint64_t cost = 0;
  uint64_t run = 0;
  for (const char c : text) {
    if (kOperatorChars.find(c) != absl::string_view::npos) {
      ++run;
    } else {
      cost += run * run;
      run = 0;
    }
  }
  cost += run * run;
  if (cost > kMaxLexCost) {
    return absl::InvalidArgumentError(
        "statement too complex for Warden to judge: its runs of operator "
        "characters or nested comments (such as \"/*/*/*...\") would take "
        "the SQL lexer too long");
  }
  return absl::OkStatus();
}

namespace {

// An upper bound on how deep libpg_query's tree of `text` can nest, from
// a linear scan that skips literals and comments. Brackets nest; within a
// bracket level, a chain of operators or of keywords that build one node
// around the previous one (NOT, IS, ::, COLLATE, JOIN, UNION, CASE, ...)
// nests once per link, and a comma, semicolon, AND, OR or the WHEN, THEN
// and ELSE of a CASE ends the chain (PostgreSQL's grammar makes AND and OR
// lists, not chains, and a CASE's arms a list). With
// `plpgsql`, the text is a PL/pgSQL function: dollar-quoted bodies are
// read, not skipped, and blocks (BEGIN, IF, LOOP, CASE ... END) nest.
int EstimateNestingDepth(absl::string_view text, bool plpgsql) {
  static const absl::flat_hash_set<std::string> kChainWords = {
      "not",      "is",       "collate", "at",     "like",   "ilike",
      "similar",  "between",  "escape",  "join",   "union",  "intersect",
      "except",   "case",     "overlaps", "in",    "isnull", "notnull",
      "array",    "row",      "exists",  "any",    "all",    "some",
      "operator"};  // OPERATOR(pg_catalog.+): its brackets end no chain
  // Words that separate the elements of a list, as a comma does: AND and
  // OR lists, the arms of a CASE.
  static const absl::flat_hash_set<std::string> kListWords = {
      "and", "or", "when", "then", "else", "elsif"};
  static const absl::flat_hash_set<std::string> kBlockOpen = {
      "begin", "if", "loop", "case"};
  std::vector<int> chains = {0};
  int sum = 0;  // of chains
  int best = 0;
  auto link = [&]() {
    ++chains.back();
    ++sum;
    best = std::max(best, static_cast<int>(chains.size()) + sum);
  };
  auto open = [&]() {
    chains.push_back(0);
    best = std::max(best, static_cast<int>(chains.size()) + sum);
  };
  auto close = [&]() {
    if (chains.size() > 1) {
      sum -= chains.back();
      chains.pop_back();
    }
  };
  auto reset = [&]() {
    sum -= chains.back();
    chains.back() = 0;
  };
  bool skip_block_word = false;  // the IF of END IF
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      // A literal or quoted name; '' and "" inside, and a backslash in E''
      // strings, do not end it (reading too far only lowers the bound on
      // text that PostgreSQL rejects anyway).
      const bool escapes =
          c == '\'' && i > 0 && (text[i - 1] == 'e' || text[i - 1] == 'E');
      ++i;
      while (i < n) {
        if (escapes && text[i] == '\\') {
          i += 2;
        } else if (text[i] == c && i + 1 < n && text[i + 1] == c) {
          i += 2;
        } else if (text[i] == c) {
          ++i;
          break;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (c == '-' && i + 1 < n && text[i + 1] == '-') {
      while (i < n && text[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && text[i + 1] == '*') {
      int comments = 0;
      while (i < n) {
        if (text[i] == '/' && i + 1 < n && text[i + 1] == '*') {
          ++comments;
          i += 2;
        } else if (text[i] == '*' && i + 1 < n && text[i + 1] == '/') {
          i += 2;
          if (--comments == 0) break;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (c == '$') {
      // $tag$ ... $tag$ (a parameter $1 is not one).
      size_t j = i + 1;
      while (j < n && (absl::ascii_isalnum(text[j]) || text[j] == '_')) ++j;
      if (j < n && text[j] == '$' &&
          (j == i + 1 || !absl::ascii_isdigit(text[i + 1]))) {
        if (plpgsql) {
          i = j + 1;  // read the body
          continue;
        }
        const absl::string_view tag = text.substr(i, j - i + 1);
        const size_t end = text.find(tag, j + 1);
        i = end == absl::string_view::npos ? n : end + tag.size();
        continue;
      }
      i = j;
      continue;
    }
    if (c == '(' || c == '[') {
      open();
      ++i;
      continue;
    }
    if (c == ')' || c == ']') {
      close();
      ++i;
      continue;
    }
    if (c == ',' || c == ';') {
      reset();
      ++i;
      continue;
    }
    if (c == ':' && i + 1 < n && text[i + 1] == ':') {
      link();
      i += 2;
      continue;
    }
    if (kOperatorChars.find(c) != absl::string_view::npos) {
      while (i < n && kOperatorChars.find(text[i]) != absl::string_view::npos) {
        ++i;
      }
      link();
      continue;
    }
    if (absl::ascii_isalpha(c) || c == '_') {
      size_t j = i;
      while (j < n && (absl::ascii_isalnum(text[j]) || text[j] == '_')) ++j;
      const std::string word =
          absl::AsciiStrToLower(text.substr(i, j - i));
      i = j;
      if (kListWords.contains(word)) {
        reset();
      } else if (plpgsql && word == "end") {
        close();
        skip_block_word = true;
        continue;
      } else if (plpgsql && kBlockOpen.contains(word) && !skip_block_word) {
        open();
      } else if (kChainWords.contains(word)) {
        link();
      }
      skip_block_word = false;
      continue;
    }
    ++i;
  }
  return best;
}

}  // namespace

absl::Status CheckNestingDepth(absl::string_view text, bool plpgsql) {
  if (EstimateNestingDepth(text, plpgsql) > kMaxEstimatedDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "statement too complex for Warden to judge: it could nest more than ",
        kMaxEstimatedDepth,
        " levels deep (a very long chain of operators, casts, joins or "
        "unions, or deeply nested brackets or blocks)"));
  }
  return absl::OkStatus();
}

namespace {

// The nesting depth of a JSON text (libpg_query's parse tree), without
// parsing it: brackets outside strings.
absl::Status CheckTreeDepth(absl::string_view json) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxTreeDepth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "statement too complex for Warden to judge: its parse tree is "
            "nested more than ",
            kMaxTreeDepth, " levels deep (a very long chain of operators or "
                           "nested expressions)"));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return absl::OkStatus();
}

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

// PostgreSQL's name for an ObjectType in command tags: "OBJECT_MATVIEW" ->
// "MATERIALIZED VIEW", "OBJECT_FDW" -> "FOREIGN DATA WRAPPER" (as
// AlterObjectTypeCommandTag in src/backend/tcop/utility.c).
std::string ObjectTypeTag(const std::string& object_type) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"OBJECT_MATVIEW", "MATERIALIZED VIEW"},
      {"OBJECT_FDW", "FOREIGN DATA WRAPPER"},
      {"OBJECT_FOREIGN_SERVER", "SERVER"},
      {"OBJECT_LARGEOBJECT", "LARGE OBJECT"},
      {"OBJECT_OPCLASS", "OPERATOR CLASS"},
      {"OBJECT_OPFAMILY", "OPERATOR FAMILY"},
      {"OBJECT_STATISTIC_EXT", "STATISTICS"},
      {"OBJECT_TSCONFIGURATION", "TEXT SEARCH CONFIGURATION"},
      {"OBJECT_TSDICTIONARY", "TEXT SEARCH DICTIONARY"},
      {"OBJECT_TSPARSER", "TEXT SEARCH PARSER"},
      {"OBJECT_TSTEMPLATE", "TEXT SEARCH TEMPLATE"},
      {"OBJECT_ATTRIBUTE", "TYPE"},
      {"OBJECT_DOMCONSTRAINT", "DOMAIN"},
      {"OBJECT_TABCONSTRAINT", "TABLE"},
      {"OBJECT_COLUMN", "TABLE"},
      {"OBJECT_USER_MAPPING", "USER MAPPING"},
  };
  for (const auto& [type, name] : kNames) {
    if (object_type == type) return name;
  }
  // "OBJECT_FOREIGN_TABLE" -> "FOREIGN TABLE".
  std::string tag = object_type;
  if (tag.rfind("OBJECT_", 0) == 0) tag = tag.substr(7);
  for (char& c : tag) {
    if (c == '_') c = ' ';
  }
  return tag;
}

// ALTER TABLE subcommand kind from AlterTableType: "AT_DropColumn" ->
// "DROP COLUMN". Names follow the ALTER TABLE synopsis.
std::string AlterTableSubcommand(const std::string& subtype) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"AT_AddColumnRecurse", "ADD COLUMN"},
      {"AT_AddColumnToView", "ADD COLUMN"},
      {"AT_ColumnDefault", "ALTER COLUMN DEFAULT"},
      {"AT_CookedColumnDefault", "ALTER COLUMN DEFAULT"},
      {"AT_DropNotNull", "ALTER COLUMN DROP NOT NULL"},
      {"AT_SetNotNull", "ALTER COLUMN SET NOT NULL"},
      {"AT_DropExpression", "ALTER COLUMN DROP EXPRESSION"},
      {"AT_SetStatistics", "ALTER COLUMN SET STATISTICS"},
      {"AT_SetOptions", "ALTER COLUMN SET"},
      {"AT_ResetOptions", "ALTER COLUMN RESET"},
      {"AT_SetStorage", "ALTER COLUMN SET STORAGE"},
      {"AT_SetCompression", "ALTER COLUMN SET COMPRESSION"},
      {"AT_DropColumnRecurse", "DROP COLUMN"},
      {"AT_AddIndex", "ADD CONSTRAINT"},
      {"AT_ReAddIndex", "ADD CONSTRAINT"},
      {"AT_AddConstraintRecurse", "ADD CONSTRAINT"},
      {"AT_ReAddConstraint", "ADD CONSTRAINT"},
      {"AT_ReAddDomainConstraint", "ADD CONSTRAINT"},
      {"AT_AddIndexConstraint", "ADD CONSTRAINT"},
      {"AT_AlterConstraint", "ALTER CONSTRAINT"},
      {"AT_ValidateConstraintRecurse", "VALIDATE CONSTRAINT"},
      {"AT_DropConstraintRecurse", "DROP CONSTRAINT"},
      {"AT_ReAddComment", "COMMENT"},
      {"AT_AlterColumnType", "ALTER COLUMN TYPE"},
      {"AT_AlterColumnGenericOptions", "ALTER COLUMN OPTIONS"},
      {"AT_ChangeOwner", "OWNER TO"},
      {"AT_ClusterOn", "CLUSTER ON"},
      {"AT_DropCluster", "SET WITHOUT CLUSTER"},
      {"AT_SetLogged", "SET LOGGED"},
      {"AT_SetUnLogged", "SET UNLOGGED"},
      {"AT_DropOids", "SET WITHOUT OIDS"},
      {"AT_SetAccessMethod", "SET ACCESS METHOD"},
      {"AT_SetTableSpace", "SET TABLESPACE"},
      {"AT_SetRelOptions", "SET"},
      {"AT_ResetRelOptions", "RESET"},
      {"AT_ReplaceRelOptions", "SET"},
      {"AT_EnableTrig", "ENABLE TRIGGER"},
      {"AT_EnableAlwaysTrig", "ENABLE ALWAYS TRIGGER"},
      {"AT_EnableReplicaTrig", "ENABLE REPLICA TRIGGER"},
      {"AT_DisableTrig", "DISABLE TRIGGER"},
      {"AT_EnableTrigAll", "ENABLE TRIGGER"},
      {"AT_DisableTrigAll", "DISABLE TRIGGER"},
      {"AT_EnableTrigUser", "ENABLE TRIGGER"},
      {"AT_DisableTrigUser", "DISABLE TRIGGER"},
      {"AT_EnableRule", "ENABLE RULE"},
      {"AT_EnableAlwaysRule", "ENABLE ALWAYS RULE"},
      {"AT_EnableReplicaRule", "ENABLE REPLICA RULE"},
      {"AT_DisableRule", "DISABLE RULE"},
      {"AT_AddInherit", "INHERIT"},
      {"AT_DropInherit", "NO INHERIT"},
      {"AT_AddOf", "OF"},
      {"AT_DropOf", "NOT OF"},
      {"AT_ReplicaIdentity", "REPLICA IDENTITY"},
      {"AT_EnableRowSecurity", "ENABLE ROW LEVEL SECURITY"},
      {"AT_DisableRowSecurity", "DISABLE ROW LEVEL SECURITY"},
      {"AT_ForceRowSecurity", "FORCE ROW LEVEL SECURITY"},
      {"AT_NoForceRowSecurity", "NO FORCE ROW LEVEL SECURITY"},
      {"AT_GenericOptions", "OPTIONS"},
      {"AT_AttachPartition", "ATTACH PARTITION"},
      {"AT_DetachPartition", "DETACH PARTITION"},
      {"AT_DetachPartitionFinalize", "DETACH PARTITION"},
      {"AT_AddIdentity", "ALTER COLUMN ADD IDENTITY"},
      {"AT_SetIdentity", "ALTER COLUMN SET IDENTITY"},
      {"AT_DropIdentity", "ALTER COLUMN DROP IDENTITY"},
      {"AT_ReAddStatistics", "ALTER STATISTICS"},
  };
  for (const auto& [type, name] : kNames) {
    if (subtype == type) return name;
  }
  // The rest spell themselves: "AT_AddColumn" -> "ADD COLUMN",
  // "AT_DropConstraint" -> "DROP CONSTRAINT".
  std::string out;
  const std::string name =
      subtype.rfind("AT_", 0) == 0 ? subtype.substr(3) : subtype;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && absl::ascii_isupper(name[i])) out.push_back(' ');
    out.push_back(absl::ascii_toupper(name[i]));
  }
  return out;
}

// Command tag and class for a statement node, as PostgreSQL names them
// (CreateCommandTag in src/backend/tcop/utility.c), for every statement
// node of PostgreSQL 15.
StatementFacts Classify(const std::string& node, const Json& body) {
  StatementFacts f;
  f.node = node;
  auto set = [&](std::string command, StatementClass cls) {
    f.command = std::move(command);
    f.statement_class = cls;
  };
  using C = StatementClass;
  // Statements whose tag and class depend on nothing but the node.
  static const std::pair<const char*, std::pair<const char*, C>> kFixed[] = {
      {"InsertStmt", {"INSERT", C::kWrite}},
      {"UpdateStmt", {"UPDATE", C::kWrite}},
      {"DeleteStmt", {"DELETE", C::kWrite}},
      {"MergeStmt", {"MERGE", C::kWrite}},
      {"RefreshMatViewStmt", {"REFRESH MATERIALIZED VIEW", C::kWrite}},
      {"ReturnStmt", {"RETURN", C::kRead}},  // BEGIN ATOMIC ... RETURN x.
      {"VariableShowStmt", {"SHOW", C::kRead}},
      {"DeclareCursorStmt", {"DECLARE CURSOR", C::kRead}},
      {"TruncateStmt", {"TRUNCATE TABLE", C::kDdl}},
      {"CreateStmt", {"CREATE TABLE", C::kDdl}},
      {"CreateForeignTableStmt", {"CREATE FOREIGN TABLE", C::kDdl}},
      {"IndexStmt", {"CREATE INDEX", C::kDdl}},
      {"ViewStmt", {"CREATE VIEW", C::kDdl}},
      {"CreateSchemaStmt", {"CREATE SCHEMA", C::kDdl}},
      {"CreatedbStmt", {"CREATE DATABASE", C::kDdl}},
      {"AlterDatabaseStmt", {"ALTER DATABASE", C::kDdl}},
      {"AlterDatabaseRefreshCollStmt", {"ALTER DATABASE", C::kDdl}},
      {"AlterDatabaseSetStmt", {"ALTER DATABASE", C::kDdl}},
      {"DropdbStmt", {"DROP DATABASE", C::kDdl}},
      {"CreateTrigStmt", {"CREATE TRIGGER", C::kDdl}},
      {"CreateEventTrigStmt", {"CREATE EVENT TRIGGER", C::kDdl}},
      {"AlterEventTrigStmt", {"ALTER EVENT TRIGGER", C::kDdl}},
      {"RuleStmt", {"CREATE RULE", C::kDdl}},
      {"CreateSeqStmt", {"CREATE SEQUENCE", C::kDdl}},
      {"AlterSeqStmt", {"ALTER SEQUENCE", C::kDdl}},
      {"CreateExtensionStmt", {"CREATE EXTENSION", C::kDdl}},
      {"AlterExtensionStmt", {"ALTER EXTENSION", C::kDdl}},
      {"AlterExtensionContentsStmt", {"ALTER EXTENSION", C::kDdl}},
      {"CreatePLangStmt", {"CREATE LANGUAGE", C::kDdl}},
      {"CreateDomainStmt", {"CREATE DOMAIN", C::kDdl}},
      {"AlterDomainStmt", {"ALTER DOMAIN", C::kDdl}},
      {"CompositeTypeStmt", {"CREATE TYPE", C::kDdl}},
      {"CreateEnumStmt", {"CREATE TYPE", C::kDdl}},
      {"CreateRangeStmt", {"CREATE TYPE", C::kDdl}},
      {"AlterEnumStmt", {"ALTER TYPE", C::kDdl}},
      {"AlterTypeStmt", {"ALTER TYPE", C::kDdl}},
      {"CreateConversionStmt", {"CREATE CONVERSION", C::kDdl}},
      {"CreateCastStmt", {"CREATE CAST", C::kDdl}},
      {"CreateOpClassStmt", {"CREATE OPERATOR CLASS", C::kDdl}},
      {"CreateOpFamilyStmt", {"CREATE OPERATOR FAMILY", C::kDdl}},
      {"AlterOpFamilyStmt", {"ALTER OPERATOR FAMILY", C::kDdl}},
      {"AlterOperatorStmt", {"ALTER OPERATOR", C::kDdl}},
      {"AlterTSDictionaryStmt", {"ALTER TEXT SEARCH DICTIONARY", C::kDdl}},
      {"AlterTSConfigurationStmt",
       {"ALTER TEXT SEARCH CONFIGURATION", C::kDdl}},
      {"AlterCollationStmt", {"ALTER COLLATION", C::kDdl}},
      {"CreatePolicyStmt", {"CREATE POLICY", C::kDdl}},
      {"AlterPolicyStmt", {"ALTER POLICY", C::kDdl}},
      {"CreateAmStmt", {"CREATE ACCESS METHOD", C::kDdl}},
      {"CreateTransformStmt", {"CREATE TRANSFORM", C::kDdl}},
      {"CreatePublicationStmt", {"CREATE PUBLICATION", C::kDdl}},
      {"AlterPublicationStmt", {"ALTER PUBLICATION", C::kDdl}},
      {"CreateSubscriptionStmt", {"CREATE SUBSCRIPTION", C::kDdl}},
      {"AlterSubscriptionStmt", {"ALTER SUBSCRIPTION", C::kDdl}},
      {"DropSubscriptionStmt", {"DROP SUBSCRIPTION", C::kDdl}},
      {"CreateStatsStmt", {"CREATE STATISTICS", C::kDdl}},
      {"AlterStatsStmt", {"ALTER STATISTICS", C::kDdl}},
      {"CreateTableSpaceStmt", {"CREATE TABLESPACE", C::kDdl}},
      {"DropTableSpaceStmt", {"DROP TABLESPACE", C::kDdl}},
      {"AlterTableSpaceOptionsStmt", {"ALTER TABLESPACE", C::kDdl}},
      {"CreateFdwStmt", {"CREATE FOREIGN DATA WRAPPER", C::kDdl}},
      {"AlterFdwStmt", {"ALTER FOREIGN DATA WRAPPER", C::kDdl}},
      {"CreateForeignServerStmt", {"CREATE SERVER", C::kDdl}},
      {"AlterForeignServerStmt", {"ALTER SERVER", C::kDdl}},
      {"ImportForeignSchemaStmt", {"IMPORT FOREIGN SCHEMA", C::kDdl}},
      {"CommentStmt", {"COMMENT", C::kDdl}},
      {"SecLabelStmt", {"SECURITY LABEL", C::kDdl}},
      {"CreateUserMappingStmt", {"CREATE USER MAPPING", C::kDcl}},
      {"AlterUserMappingStmt", {"ALTER USER MAPPING", C::kDcl}},
      {"DropUserMappingStmt", {"DROP USER MAPPING", C::kDcl}},
      {"CreateRoleStmt", {"CREATE ROLE", C::kDcl}},
      {"AlterRoleStmt", {"ALTER ROLE", C::kDcl}},
      {"AlterRoleSetStmt", {"ALTER ROLE", C::kDcl}},
      {"DropRoleStmt", {"DROP ROLE", C::kDcl}},
      {"DropOwnedStmt", {"DROP OWNED", C::kDcl}},
      {"ReassignOwnedStmt", {"REASSIGN OWNED", C::kDcl}},
      {"AlterDefaultPrivilegesStmt", {"ALTER DEFAULT PRIVILEGES", C::kDcl}},
      {"ConstraintsSetStmt", {"SET CONSTRAINTS", C::kTransaction}},
      {"ExplainStmt", {"EXPLAIN", C::kUtility}},
      {"DoStmt", {"DO", C::kUtility}},
      {"CallStmt", {"CALL", C::kUtility}},
      {"AlterSystemStmt", {"ALTER SYSTEM", C::kUtility}},
      {"LoadStmt", {"LOAD", C::kUtility}},
      {"PrepareStmt", {"PREPARE", C::kUtility}},
      {"ExecuteStmt", {"EXECUTE", C::kUtility}},
      {"NotifyStmt", {"NOTIFY", C::kUtility}},
      {"ListenStmt", {"LISTEN", C::kUtility}},
      {"UnlistenStmt", {"UNLISTEN", C::kUtility}},
      {"LockStmt", {"LOCK TABLE", C::kUtility}},
      {"CheckPointStmt", {"CHECKPOINT", C::kUtility}},
      {"ReindexStmt", {"REINDEX", C::kUtility}},
      {"ClusterStmt", {"CLUSTER", C::kUtility}},
  };
  for (const auto& [name, tag] : kFixed) {
    if (node == name) {
      set(tag.first, tag.second);
      return f;
    }
  }
  if (node == "SelectStmt") {
    // SELECT ... INTO creates a table; FOR UPDATE only locks: a read.
    if (body.contains("intoClause")) {
      set("SELECT INTO", C::kDdl);
    } else {
      set("SELECT", C::kRead);
    }
  } else if (node == "CopyStmt") {
    set("COPY", body.value("is_from", false) ? C::kWrite : C::kRead);
  } else if (node == "DropStmt") {
    set("DROP " + ObjectTypeTag(body.value("removeType", "")), C::kDdl);
  } else if (node == "CreateTableAsStmt") {
    if (body.value("objtype", "") == "OBJECT_MATVIEW") {
      set("CREATE MATERIALIZED VIEW", C::kDdl);
    } else {
      set(body.value("is_select_into", false) ? "SELECT INTO"
                                              : "CREATE TABLE AS",
          C::kDdl);
    }
  } else if (node == "AlterTableStmt" || node == "AlterTableMoveAllStmt") {
    // ALTER TABLE ... OWNER TO changes who holds the privileges: dcl, as
    // ALTER SCHEMA ... OWNER TO (AlterOwnerStmt) is.
    bool owner = false;
    for (const auto& cmd : body.value("cmds", Json::array())) {
      owner = owner || (cmd.contains("AlterTableCmd") &&
                        cmd["AlterTableCmd"].value("subtype", "") ==
                            "AT_ChangeOwner");
    }
    set("ALTER " + ObjectTypeTag(body.value("objtype", "OBJECT_TABLE")),
        owner ? C::kDcl : C::kDdl);
  } else if (node == "RenameStmt") {
    // Renaming a column or attribute is tagged after its relation.
    const std::string type = body.value("renameType", "");
    set("ALTER " +
            ObjectTypeTag(type == "OBJECT_COLUMN" || type == "OBJECT_ATTRIBUTE"
                              ? body.value("relationType", type)
                              : type),
        type == "OBJECT_ROLE" ? C::kDcl : C::kDdl);
  } else if (node == "AlterObjectSchemaStmt" ||
             node == "AlterObjectDependsStmt") {
    set("ALTER " + ObjectTypeTag(body.value("objectType", "")), C::kDdl);
  } else if (node == "AlterOwnerStmt") {
    set("ALTER " + ObjectTypeTag(body.value("objectType", "")), C::kDcl);
  } else if (node == "AlterFunctionStmt") {
    set("ALTER " + ObjectTypeTag(body.value("objtype", "OBJECT_FUNCTION")),
        C::kDdl);
  } else if (node == "DefineStmt") {
    set("CREATE " + ObjectTypeTag(body.value("kind", "")), C::kDdl);
  } else if (node == "CreateFunctionStmt") {
    set(body.value("is_procedure", false) ? "CREATE PROCEDURE"
                                          : "CREATE FUNCTION",
        C::kDdl);
  } else if (node == "GrantStmt") {
    set(body.value("is_grant", false) ? "GRANT" : "REVOKE", C::kDcl);
  } else if (node == "GrantRoleStmt") {
    set(body.value("is_grant", false) ? "GRANT ROLE" : "REVOKE ROLE", C::kDcl);
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
    const std::string kind = body.value("kind", "");
    set(kind == "VAR_RESET" || kind == "VAR_RESET_ALL" ? "RESET" : "SET",
        C::kUtility);
  } else if (node == "DeallocateStmt") {
    set(body.contains("name") ? "DEALLOCATE" : "DEALLOCATE ALL", C::kUtility);
  } else if (node == "ClosePortalStmt") {
    set(body.contains("portalname") ? "CLOSE CURSOR" : "CLOSE CURSOR ALL",
        C::kUtility);
  } else if (node == "FetchStmt") {
    set(body.value("ismove", false) ? "MOVE" : "FETCH", C::kRead);
  } else if (node == "VacuumStmt") {
    set(body.value("is_vacuumcmd", false) ? "VACUUM" : "ANALYZE", C::kUtility);
  } else if (node == "DiscardStmt") {
    const std::string target = body.value("target", "DISCARD_ALL");
    set(target == "DISCARD_PLANS"       ? "DISCARD PLANS"
        : target == "DISCARD_SEQUENCES" ? "DISCARD SEQUENCES"
        : target == "DISCARD_TEMP"      ? "DISCARD TEMP"
                                        : "DISCARD ALL",
        C::kUtility);
  } else {
    // A node this table does not know (a newer grammar): its name without
    // "Stmt", upper-cased, as utility, so policies can still name it.
    std::string tag = node;
    if (tag.size() > 4 && tag.compare(tag.size() - 4, 4, "Stmt") == 0) {
      tag.resize(tag.size() - 4);
    }
    set(absl::AsciiStrToUpper(tag), C::kUtility);
  }
  return f;
}

// Relations and functions with their character positions; the JSON tree
// orders keys alphabetically, so results are sorted back into source order.
struct Found {
  std::vector<std::pair<int, Relation>> relations;
  std::vector<std::pair<int, std::string>> functions;
  std::vector<std::pair<int, std::string>> columns;
  std::vector<std::pair<int, std::string>> settings;
  std::vector<std::pair<std::string, std::string>> setting_values;
  std::vector<std::pair<int, std::string>> executed;
  bool dynamic = false;  // set_config with a computed name.
  // Queries given as text to functions that run them (query_to_xml, ...).
  std::vector<std::string> sql_from_text;
};

// The value of a string constant, through casts ('x'::text); false when
// `node` is anything else.
bool StringConstant(const Json& node, std::string* out) {
  if (!node.is_object()) return false;
  if (node.contains("TypeCast") && node["TypeCast"].contains("arg")) {
    return StringConstant(node["TypeCast"]["arg"], out);
  }
  if (!node.contains("A_Const") || !node["A_Const"].contains("sval")) {
    return false;
  }
  *out = node["A_Const"]["sval"].value("sval", "");
  return true;
}

// The text of a constant as PostgreSQL would read it for a setting ('off',
// off, 3, 'SJIS'::text); "?" for anything computed.
std::string ConstantText(const Json& node) {
  std::string out;
  if (StringConstant(node, &out)) return out;
  const Json* c = &node;
  while (c->is_object() && c->contains("TypeCast")) c = &(*c)["TypeCast"]["arg"];
  if (c->is_object() && c->contains("A_Const")) {
    const Json& a = (*c)["A_Const"];
    if (a.contains("ival")) {
      return std::to_string(a["ival"].value("ival", 0));
    }
    if (a.contains("fval")) return a["fval"].value("fval", "?");
    if (a.contains("boolval")) {
      return a["boolval"].value("boolval", false) ? "true" : "false";
    }
  }
  return "?";
}

// Run-time parameters a VariableSetStmt changes (SET, SET LOCAL, RESET,
// and the SET clauses of ALTER SYSTEM / ROLE / DATABASE / FUNCTION).
void AddVariableSet(const Json& v, Found* found, bool session = false) {
  const std::string kind = v.value("kind", "");
  const std::string name = absl::AsciiStrToLower(v.value("name", ""));
  if (kind == "VAR_RESET_ALL") {
    found->settings.emplace_back(-1, "all");
  } else if (kind == "VAR_SET_MULTI") {
    // SET TRANSACTION ... sets transaction_isolation and friends; SET
    // SESSION CHARACTERISTICS AS TRANSACTION their default_ forms.
    const std::string prefix =
        name == "session characteristics" ? "default_" : "";
    bool any = false;
    for (const auto& a : v.value("args", Json::array())) {
      if (a.contains("DefElem")) {
        found->settings.emplace_back(
            -1,
            prefix + absl::AsciiStrToLower(a["DefElem"].value("defname", "")));
        any = true;
      }
    }
    if (!any) {
      std::string flat = name;
      std::replace(flat.begin(), flat.end(), ' ', '_');
      found->settings.emplace_back(-1, flat);  // "transaction_snapshot".
    }
  } else if (!name.empty()) {
    // RESET x and SET x TO DEFAULT go back to the value the session
    // started with (the server's configuration, the role's and database's
    // settings, the startup parameters Warden judged): no new value, so no
    // change to judge. The same for RESET ROLE, SET ROLE NONE and SET
    // SESSION AUTHORIZATION DEFAULT: back to the session's own identity.
    // The lexing check still sees them (setting_values).
    // (Only for the session: ALTER ROLE / DATABASE / FUNCTION ... RESET
    // changes what later sessions start with.)
    if (session && (kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT")) {
      found->setting_values.emplace_back(name, "DEFAULT");
      return;
    }
    if (!session && (name == "role" || name == "session_authorization") &&
        (kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT")) {
      return;
    }
    if ((name == "role" || name == "session_authorization") &&
        kind == "VAR_SET_VALUE") {
      const Json args = v.value("args", Json::array());
      if (args.size() == 1 &&
          absl::AsciiStrToLower(ConstantText(args[0])) == "none") {
        return;
      }
    }
    found->settings.emplace_back(-1, name);
    if (kind == "VAR_SET_VALUE") {
      const Json args = v.value("args", Json::array());
      std::vector<std::string> parts;
      for (const auto& a : args) parts.push_back(ConstantText(a));
      found->setting_values.emplace_back(
          name, parts.empty() ? "?" : absl::StrJoin(parts, ", "));
    } else {
      found->setting_values.emplace_back(name, "DEFAULT");  // RESET, DEFAULT
    }
  }
}

void Collect(const Json& node, Found* found) {
  if (node.is_array()) {
    for (const auto& v : node) Collect(v, found);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (key.size() == 7 && key == "relname") {
      // `node` is a RangeVar: wrapped ("RangeVar": {...}) in lists, bare in
      // typed fields such as DELETE's / INSERT's / ALTER TABLE's "relation"
      // and SELECT INTO's "rel"; every one is a relation the statement
      // touches.
      if (v.is_string()) {
        found->relations.emplace_back(
            node.value("location", -1),
            Relation{node.value("schemaname", ""), v.get<std::string>()});
      }
      continue;
    }
    if (!v.is_structured()) continue;  // scalars hold nothing to collect.
    if (key.size() == 9 && key == "ColumnRef" && v.is_object() &&
        v.contains("fields")) {
      std::vector<std::string> parts;
      for (const auto& p : v["fields"]) {
        if (p.contains("String"))
          parts.push_back(p["String"].value("sval", ""));
        if (p.contains("A_Star")) parts.push_back("*");
      }
      found->columns.emplace_back(v.value("location", -1),
                                  absl::StrJoin(parts, "."));
    } else if (key.size() == 8 && key == "FuncCall" && v.is_object() &&
               v.contains("funcname")) {
      std::vector<std::string> parts;
      for (const auto& p : v["funcname"]) {
        if (p.contains("String"))
          parts.push_back(p["String"].value("sval", ""));
      }
      // shop.pg_catalog.lo_put: PostgreSQL accepts a database name in
      // front only when it is the current database, so it means
      // pg_catalog.lo_put.
      if (parts.size() == 3) parts.erase(parts.begin());
      found->functions.emplace_back(v.value("location", -1),
                                    absl::StrJoin(parts, "."));
      // Functions that run a query given as text (PostgreSQL 15's
      // query_to_xml family, ts_stat, ts_rewrite(query, text)): the text is
      // nested SQL; computed, it is SQL Warden cannot see.
      const std::string fn =
          parts.empty() ? "" : absl::AsciiStrToLower(parts.back());
      // By reference: a copy here is a copy of the whole subtree at every
      // level of nested calls (quadratic: 990 nested AT TIME ZONE took a
      // second).
      static const Json kNoArgs = Json::array();
      const Json& fargs = v.contains("args") ? v["args"] : kNoArgs;
      int sql_arg = -1;
      if (fn == "query_to_xml" || fn == "query_to_xmlschema" ||
          fn == "query_to_xml_and_xmlschema" || fn == "ts_stat") {
        sql_arg = 0;
      } else if (fn == "ts_rewrite" && fargs.size() == 2) {
        sql_arg = 1;
      }
      if (sql_arg >= 0) {
        std::string text;
        if (static_cast<int>(fargs.size()) > sql_arg &&
            StringConstant(fargs[sql_arg], &text)) {
          found->sql_from_text.push_back(std::move(text));
        } else {
          found->dynamic = true;
        }
      }
      // set_config(name, value, is_local), schema-qualified or not.
      if (!parts.empty() && parts.back() == "set_config") {
        std::string name;
        const Json& args = fargs;
        if (!args.empty() && StringConstant(args[0], &name)) {
          found->settings.emplace_back(v.value("location", -1),
                                       absl::AsciiStrToLower(name));
          found->setting_values.emplace_back(
              absl::AsciiStrToLower(name),
              args.size() >= 2 ? ConstantText(args[1]) : "?");
        } else {
          found->settings.emplace_back(v.value("location", -1), "*");
          found->dynamic = true;
        }
      }
    } else if (key == "ExecuteStmt" && v.is_object()) {
      found->executed.emplace_back(-1, v.value("name", ""));
    } else if ((key == "VariableSetStmt" || key == "setstmt") &&
               v.is_object()) {
      AddVariableSet(v, found);
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

bool IsNameColumn(const Json& node) {
  if (!node.is_object() || !node.contains("ColumnRef")) return false;
  const Json fields = node["ColumnRef"].value("fields", Json::array());
  return !fields.empty() && fields.back().contains("String") &&
         fields.back()["String"].value("sval", "") == "name";
}

// The pg_settings rows an UPDATE's WHERE pins down by `name = 'x'` or
// `name IN ('x', 'y')`, alone or as a conjunct of AND; empty when the
// WHERE leaves the name open.
std::vector<std::string> SettingsNamed(const Json& where) {
  std::vector<std::string> out;
  if (!where.is_object()) return out;
  if (where.contains("BoolExpr")) {
    const Json& b = where["BoolExpr"];
    if (b.value("boolop", "") != "AND_EXPR") return out;
    for (const auto& a : b.value("args", Json::array())) {
      out = SettingsNamed(a);
      if (!out.empty()) return out;
    }
    return out;
  }
  if (!where.contains("A_Expr")) return out;
  const Json& e = where["A_Expr"];
  const Json name = e.value("name", Json::array());
  if (name.size() != 1 || !name[0].contains("String") ||
      name[0]["String"].value("sval", "") != "=" || !e.contains("lexpr") ||
      !e.contains("rexpr")) {
    return out;
  }
  const std::string kind = e.value("kind", "");
  std::string value;
  if (kind == "AEXPR_OP") {
    if (IsNameColumn(e["lexpr"]) && StringConstant(e["rexpr"], &value)) {
      out.push_back(absl::AsciiStrToLower(value));
    } else if (IsNameColumn(e["rexpr"]) && StringConstant(e["lexpr"], &value)) {
      out.push_back(absl::AsciiStrToLower(value));
    }
  } else if (kind == "AEXPR_IN" && IsNameColumn(e["lexpr"]) &&
             e["rexpr"].contains("List")) {
    for (const auto& item : e["rexpr"]["List"].value("items", Json::array())) {
      if (!StringConstant(item, &value)) return {};
      out.push_back(absl::AsciiStrToLower(value));
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

absl::StatusOr<std::vector<StatementFacts>> AnalyzeText(
    absl::string_view sql, int depth, const FilterContext& context = {});

// Adds the statements of `sql` (found by `via`) to `f.nested` and returns
// true. SQL that cannot be parsed makes the parent unresolved (so policy
// fails closed), unless `may_fail`: then it only returns false.
bool AddNestedText(StatementFacts* f, const std::string& sql, const char* via,
                   int depth, bool may_fail = false,
                   const FilterContext& context = {}) {
  auto nested = AnalyzeText(sql, depth + 1, context);
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
// DROP TABLE / VIEW / INDEX / ... name their objects as lists of strings
// ("schema", "name"), not RangeVars.
void AddDroppedRelations(const Json& body, Found* found) {
  static const char* const kRelationTypes[] = {
      "OBJECT_TABLE",    "OBJECT_VIEW",          "OBJECT_MATVIEW",
      "OBJECT_INDEX",    "OBJECT_SEQUENCE",      "OBJECT_FOREIGN_TABLE"};
  const std::string type = body.value("removeType", "");
  if (std::find(std::begin(kRelationTypes), std::end(kRelationTypes), type) ==
      std::end(kRelationTypes)) {
    return;
  }
  for (const auto& object : body.value("objects", Json::array())) {
    if (!object.contains("List")) continue;
    std::vector<std::string> parts;
    for (const auto& item : object["List"].value("items", Json::array())) {
      if (item.contains("String")) {
        parts.push_back(item["String"].value("sval", ""));
      }
    }
    if (parts.empty()) continue;
    Relation rel;
    rel.name = parts.back();
    if (parts.size() >= 2) rel.schema = parts[parts.size() - 2];
    found->relations.emplace_back(-1, std::move(rel));
  }
}

// Row locks a statement takes: SELECT ... FOR UPDATE / NO KEY UPDATE /
// SHARE / KEY SHARE in its own query (a SELECT, a cursor's, CREATE TABLE
// AS's, INSERT ... SELECT's) or in any subquery. Their strengths (and
// SKIP LOCKED / NOWAIT) are subcommands, and "UNFILTERED LOCK" says the
// locks may cover every row of a table that is not the session's own:
// the locking query does not name the rows of its one table (filter.h,
// a LIMIT of at most 1,000 counts), or the lock is in a subquery.
void AddRowLocks(const std::string& node, const Json& body,
                 const FilterContext& context, StatementFacts* f) {
  int clauses = 0;
  std::function<void(const Json&)> count = [&](const Json& j) {
    if (j.is_array()) {
      for (const auto& v : j) count(v);
    } else if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "lockingClause" && it.value().is_array()) {
          for (const auto& l : it.value()) {
            ++clauses;
            const Json& c = l.value("LockingClause", Json::object());
            const std::string strength = c.value("strength", "");
            const std::string wait = c.value("waitPolicy", "");
            for (const std::string& x :
                 {std::string(strength == "LCS_FORKEYSHARE" ? "FOR KEY SHARE"
                              : strength == "LCS_FORSHARE"  ? "FOR SHARE"
                              : strength == "LCS_FORNOKEYUPDATE"
                                  ? "FOR NO KEY UPDATE"
                                  : "FOR UPDATE"),
                  std::string(wait == "LockWaitSkip"    ? "SKIP LOCKED"
                              : wait == "LockWaitError" ? "NOWAIT"
                                                        : "")}) {
              if (!x.empty() && std::find(f->subcommands.begin(),
                                          f->subcommands.end(),
                                          x) == f->subcommands.end()) {
                f->subcommands.push_back(x);
              }
            }
          }
        }
        count(it.value());
      }
    }
  };
  count(body);
  if (clauses == 0) return;
  // The query whose own locking clause may be judged by its filter.
  const Json* query = nullptr;
  const char* inner = node == "DeclareCursorStmt" || node == "CreateTableAsStmt"
                          ? "query"
                      : node == "InsertStmt" ? "selectStmt"
                                             : nullptr;
  if (node == "SelectStmt") {
    query = &body;
  } else if (inner != nullptr && body.contains(inner) &&
             body[inner].contains("SelectStmt")) {
    query = &body[inner]["SelectStmt"];
  }
  // Whether a LIMIT is small decides it: never shared across constants.
  f->filter_reads_constants = true;
  bool unfiltered = true;
  if (query != nullptr && query->contains("lockingClause") &&
      (*query)["lockingClause"].size() == static_cast<size_t>(clauses)) {
    const Json from = query->value("fromClause", Json::array());
    const bool own_temp =
        from.size() == 1 && from[0].contains("RangeVar") &&
        (from[0]["RangeVar"].value("relpersistence", "") == "t" ||
         from[0]["RangeVar"].value("schemaname", "") == "pg_temp");
    unfiltered = !own_temp && !HasEffectiveFilter("SelectStmt", *query,
                                                  context, nullptr);
  }
  if (unfiltered) f->subcommands.push_back("UNFILTERED LOCK");
}

StatementFacts AnalyzeNode(const std::string& node, const Json& body, int depth,
                           const std::string& text = "",
                           const FilterContext& context = {});

void AddNestedNode(StatementFacts* f, const Json& stmt, const char* via,
                   int depth, const FilterContext& context = {}) {
  if (!stmt.is_object() || stmt.empty()) return;
  const auto node = stmt.begin();
  StatementFacts n =
      AnalyzeNode(node.key(), node.value(), depth + 1, "", context);
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

// Whether boolean option `name` is on, as PostgreSQL reads it
// (defGetBoolean): no value is true, 0/1, true/false, on/off; an option
// given twice takes its last value, as ExplainQuery and ExecVacuum do
// (EXPLAIN (ANALYZE false, ANALYZE) executes). A value PostgreSQL would
// reject counts as on.
bool HasDefElem(const Json& options, const char* name) {
  if (!options.is_array()) return false;
  bool on = false;
  for (const auto& o : options) {
    if (!o.contains("DefElem") || o["DefElem"].value("defname", "") != name) {
      continue;
    }
    const Json& d = o["DefElem"];
    on = true;
    if (!d.contains("arg")) continue;
    const Json& arg = d["arg"];
    if (arg.contains("String")) {
      const std::string v =
          absl::AsciiStrToLower(arg["String"].value("sval", ""));
      on = v != "false" && v != "off";
    } else if (arg.contains("Integer")) {
      on = arg["Integer"].value("ival", 0) != 0;  // 0 is left out of the tree
    } else if (arg.contains("Boolean")) {
      on = arg["Boolean"].value("boolval", false);
    }
  }
  return on;
}

// The string a PL/pgSQL EXECUTE runs, if it is a plain literal.
bool LiteralString(const std::string& expr, std::string* out) {
  if (!CheckLexCost(expr).ok() || !CheckNestingDepth(expr, false).ok()) {
    return false;
  }
  ParseResult parsed("SELECT " + expr);
  if (parsed.r.error != nullptr) return false;
  if (!CheckTreeDepth(parsed.r.parse_tree).ok()) return false;
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
                 StatementFacts* f, int depth, const FilterContext& context) {
  if (node.is_array()) {
    for (const auto& v : node) WalkPlpgsql(v, parent_key, f, depth, context);
    return;
  }
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const Json& v = it.value();
    // Statements that run a query given as a string: EXECUTE, FOR ... IN
    // EXECUTE (its `query`), OPEN ... FOR EXECUTE and RETURN QUERY EXECUTE
    // (their `dynquery`). A static OPEN ... FOR / RETURN QUERY query is
    // plain SQL, walked below like any other.
    const bool dynamic_in_query = it.key() == "PLpgSQL_stmt_dynexecute" ||
                                  it.key() == "PLpgSQL_stmt_dynfors";
    const bool dynamic_in_dynquery = it.key() == "PLpgSQL_stmt_open" ||
                                     it.key() == "PLpgSQL_stmt_return_query";
    if (dynamic_in_query || dynamic_in_dynquery) {
      std::string literal;
      const Json* expr = nullptr;
      const char* field = dynamic_in_query ? "query" : "dynquery";
      if (v.contains(field) && v[field].contains("PLpgSQL_expr")) {
        expr = &v[field]["PLpgSQL_expr"];
      }
      if (expr != nullptr) {
        if (LiteralString(expr->value("query", ""), &literal)) {
          AddNestedText(f, literal, "execute", depth, /*may_fail=*/false,
                        context);
        } else {
          f->unresolved_dynamic_sql = true;  // EXECUTE of a computed string.
        }
        continue;
      }
    }
    if (it.key() == "PLpgSQL_expr") {
      std::string query = v.value("query", "");
      if (parent_key == "sqlstmt") {
        AddNestedText(f, query, "plpgsql", depth, /*may_fail=*/false, context);
      } else {
        // An expression ("n := f(x)", "n > 0", "SELECT ..." for PERFORM):
        // parse its right-hand side as a SELECT list.
        const size_t assign = query.find(":=");
        if (assign != std::string::npos) query = query.substr(assign + 2);
        if (!AddNestedText(f, query, "plpgsql", depth, /*may_fail=*/true,
                           context)) {
          AddNestedText(f, "SELECT " + query, "plpgsql", depth,
                        /*may_fail=*/false, context);
        }
      }
      continue;
    }
    WalkPlpgsql(v, it.key(), f, depth, context);
  }
}

void AddPlpgsqlBody(StatementFacts* f, const std::string& create_function_sql,
                    int depth, const FilterContext& outer) {
  if (!CheckLexCost(create_function_sql).ok() ||
      !CheckNestingDepth(create_function_sql, /*plpgsql=*/true).ok()) {
    f->unresolved_dynamic_sql = true;
    return;
  }
  PlpgsqlResult parsed(create_function_sql);
  if (parsed.r.error != nullptr ||
      !CheckTreeDepth(parsed.r.plpgsql_funcs).ok()) {
    f->unresolved_dynamic_sql = true;
    return;
  }
  const Json tree = Json::parse(parsed.r.plpgsql_funcs, nullptr, false);
  if (tree.is_discarded()) {
    f->unresolved_dynamic_sql = true;
    return;
  }
  // Its variables and records are values in its statements (PL/pgSQL
  // substitutes them as parameters), unless the body asks for names to
  // mean columns (#variable_conflict use_column): then none is.
  FilterContext context = outer;
  if (absl::StrContains(absl::AsciiStrToLower(create_function_sql),
                        "variable_conflict")) {
    context.value_names.clear();  // its parameters too
  } else {
    std::function<void(const Json&)> datums = [&](const Json& j) {
      if (j.is_array()) {
        for (const auto& v : j) datums(v);
      } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
          const Json& v = it.value();
          if ((it.key() == "PLpgSQL_var" || it.key() == "PLpgSQL_row") &&
              v.contains("refname") && v["refname"].is_string()) {
            context.value_names.insert(v["refname"].get<std::string>());
          } else if (it.key() == "PLpgSQL_rec" && v.contains("refname") &&
                     v["refname"].is_string()) {
            context.value_qualifiers.insert(v["refname"].get<std::string>());
          } else {
            datums(v);
          }
        }
      }
    };
    datums(tree);
  }
  WalkPlpgsql(tree, "", f, depth, context);
}

// Whether every object `node` creates, changes or writes is temporary.
bool OnlyTemporaryObjects(const std::string& node, const Json& body) {
  auto temp_rangevar = [](const Json& rv) {
    // Exactly pg_temp: the parser folds an unquoted PG_TEMP to it, and a
    // quoted "PG_TEMP" is an ordinary schema of that name.
    return rv.is_object() && (rv.value("relpersistence", "") == "t" ||
                              rv.value("schemaname", "") == "pg_temp");
  };
  if (node == "CreateStmt" || node == "InsertStmt" || node == "UpdateStmt" ||
      node == "DeleteStmt" || node == "MergeStmt" ||
      node == "AlterTableStmt" || node == "IndexStmt" ||
      node == "CreateTrigStmt") {
    return body.contains("relation") && temp_rangevar(body["relation"]);
  }
  if (node == "CreateTableAsStmt") {
    return body.contains("into") && body["into"].contains("rel") &&
           temp_rangevar(body["into"]["rel"]);
  }
  if (node == "SelectStmt") {
    if (body.contains("lockingClause") && !body.contains("intoClause")) {
      // FOR UPDATE of the session's own table blocks nobody.
      const Json from = body.value("fromClause", Json::array());
      return from.size() == 1 && from[0].contains("RangeVar") &&
             temp_rangevar(from[0]["RangeVar"]);
    }
    return body.contains("intoClause") &&
           body["intoClause"].contains("rel") &&
           temp_rangevar(body["intoClause"]["rel"]);
  }
  if (node == "ViewStmt") {
    // A temporary view over a permanent table is a way to write to that
    // table (simple views are updatable): DELETE FROM pg_temp.v deletes
    // from orders. Only a view over the session's own relations (or none)
    // is the session's own.
    if (!body.contains("view") || !temp_rangevar(body["view"])) return false;
    bool only_temporary = true;
    std::function<void(const Json&)> walk = [&](const Json& j) {
      if (!only_temporary) return;
      if (j.is_array()) {
        for (const auto& v : j) walk(v);
      } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
          if (it.key() == "RangeVar" && !temp_rangevar(it.value())) {
            only_temporary = false;
            return;
          }
          walk(it.value());
        }
      }
    };
    walk(body.value("query", Json()));
    return only_temporary;
  }
  if (node == "CreateSeqStmt" || node == "AlterSeqStmt") {
    return body.contains("sequence") && temp_rangevar(body["sequence"]);
  }
  if (node == "TruncateStmt") {
    const Json rels = body.value("relations", Json::array());
    if (rels.empty()) return false;
    for (const auto& r : rels) {
      if (!r.contains("RangeVar") || !temp_rangevar(r["RangeVar"])) {
        return false;
      }
    }
    return true;
  }
  if (node == "DropStmt") {
    const std::string type = body.value("removeType", "");
    if (type != "OBJECT_TABLE" && type != "OBJECT_VIEW" &&
        type != "OBJECT_SEQUENCE" && type != "OBJECT_INDEX") {
      return false;
    }
    const Json objects = body.value("objects", Json::array());
    if (objects.empty()) return false;
    for (const auto& o : objects) {
      const Json items = o.contains("List")
                             ? o["List"].value("items", Json::array())
                             : Json::array();
      if (items.size() != 2 || !items[0].contains("String") ||
          items[0]["String"].value("sval", "") != "pg_temp") {
        return false;
      }
    }
    return true;
  }
  return false;
}

// "schema.name" of a name list ([{String}...]), a TypeName or an
// ObjectWithArgs; empty for anything else.
std::string QualifiedName(const Json& j) {
  const Json* list = &j;
  if (j.is_object()) {
    if (j.contains("TypeName")) return QualifiedName(j["TypeName"]);
    if (j.contains("List") && j["List"].contains("items")) {
      list = &j["List"]["items"];
    } else if (j.contains("names")) {
      list = &j["names"];
    } else if (j.contains("objname")) {
      list = &j["objname"];
    } else if (j.contains("String")) {
      return j["String"].value("sval", "");
    }
  }
  if (!list->is_array()) return "";
  std::vector<std::string> parts;
  for (const auto& p : *list) {
    if (p.contains("String")) parts.push_back(p["String"].value("sval", ""));
  }
  // database.schema.name: the database can only be the current one.
  if (parts.size() == 3) parts.erase(parts.begin());
  return absl::StrJoin(parts, ".");
}

// Functions a definition makes PostgreSQL call later (an operator's
// function, a cast's, an aggregate's state functions, a type's I/O, a
// trigger's, a conversion's, an operator class's support functions): a
// CREATE OPERATOR naming a denied function is judged as calling it.
void CollectDefinedCalls(const std::string& node, const Json& body,
                         Found* found) {
  static const absl::flat_hash_set<std::string> kFunctionOptions = {
      "function", "procedure", "sfunc", "finalfunc", "combinefunc",
      "serialfunc", "deserialfunc", "msfunc", "minvfunc", "mfinalfunc",
      "restrict", "join", "input", "output", "receive", "send", "typmod_in",
      "typmod_out", "analyze", "subscript", "canonical", "subtype_diff",
      "init", "lexize", "start", "gettoken", "end", "lextypes", "headline",
      "handler", "validator", "inline"};
  auto add = [&](const Json& name) {
    std::string n = QualifiedName(name);
    if (!n.empty()) found->functions.emplace_back(-1, std::move(n));
  };
  const char* options = node == "DefineStmt"          ? "definition"
                        : node == "AlterOperatorStmt" ? "options"
                        : node == "AlterTypeStmt"     ? "options"
                                                      : nullptr;
  if (options != nullptr && body.contains(options) &&
      body[options].is_array()) {
    for (const auto& o : body[options]) {
      if (!o.contains("DefElem")) continue;
      const Json& d = o["DefElem"];
      if (d.contains("arg") &&
          kFunctionOptions.contains(
              absl::AsciiStrToLower(d.value("defname", "")))) {
        add(d["arg"]);
      }
    }
  }
  for (const char* field : {"func", "fromsql", "tosql"}) {
    if ((node == "CreateCastStmt" || node == "CreateTransformStmt") &&
        body.contains(field)) {
      add(body[field]);
    }
  }
  if (node == "CreateTrigStmt" || node == "CreateEventTrigStmt") {
    if (body.contains("funcname")) add(body["funcname"]);
  }
  if (node == "CreateConversionStmt" && body.contains("func_name")) {
    add(body["func_name"]);
  }
  if ((node == "CreateOpClassStmt" || node == "AlterOpFamilyStmt") &&
      body.contains("items") && body["items"].is_array()) {
    for (const auto& item : body["items"]) {
      if (item.contains("CreateOpClassItem") &&
          item["CreateOpClassItem"].contains("name")) {
        add(item["CreateOpClassItem"]["name"]);
      }
    }
  }
}

StatementFacts AnalyzeNode(const std::string& node, const Json& body, int depth,
                           const std::string& text,
                           const FilterContext& context) {
  StatementFacts f = Classify(node, body);
  f.text = text;
  Found found;
  if (node == "ExplainStmt" && body.contains("query") &&
      !HasDefElem(body.value("options", Json::array()), "analyze")) {
    // Plain EXPLAIN plans its statement without running it: what that
    // statement would call or set is not done (issue 13 item 9).
    Json planned_only = body;
    planned_only.erase("query");
    Collect(planned_only, &found);
    // Which prepared statement it names is still worth knowing.
    Found planned;
    Collect(body["query"], &planned);
    found.executed = std::move(planned.executed);
  } else {
    Collect(body, &found);
  }
  CollectDefinedCalls(node, body, &found);
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
  if (node == "VariableSetStmt") AddVariableSet(body, &found, /*session=*/true);
  if (node == "DropStmt") AddDroppedRelations(body, &found);
  if (node == "UpdateStmt" && body.contains("relation")) {
    // pg_settings is an updatable view over set_config().
    const Json& rel = body["relation"];
    const std::string schema = rel.value("schemaname", "");
    if (rel.value("relname", "") == "pg_settings" &&
        (schema.empty() || schema == "pg_catalog")) {
      std::vector<std::string> names =
          SettingsNamed(body.value("whereClause", Json::object()));
      if (names.empty()) names.push_back("*");
      for (auto& n : names) found.settings.emplace_back(-1, std::move(n));
    }
  }
  f.relations = InSourceOrderUnique(std::move(found.relations));
  f.functions = InSourceOrderUnique(std::move(found.functions));
  f.columns = InSourceOrderUnique(std::move(found.columns));
  f.settings = InSourceOrderUnique(std::move(found.settings));
  f.setting_values = std::move(found.setting_values);
  if (node == "ExecuteStmt") f.executed.push_back(body.value("name", ""));
  for (auto& [unused, name] : found.executed) {
    if (std::find(f.executed.begin(), f.executed.end(), name) ==
        f.executed.end()) {
      f.executed.push_back(std::move(name));
    }
  }
  if (node == "PrepareStmt" || node == "DeallocateStmt") {
    f.prepared_name = body.value("name", "");
  }
  if (node == "DeclareCursorStmt" || node == "FetchStmt" ||
      node == "ClosePortalStmt") {
    f.cursor = body.value("portalname", "");
  }
  if (found.dynamic) f.unresolved_dynamic_sql = true;
  for (const std::string& text : found.sql_from_text) {
    if (depth >= kMaxDepth) {
      f.unresolved_dynamic_sql = true;
      break;
    }
    AddNestedText(&f, text, "sql from text", depth, /*may_fail=*/false,
                  context);
  }
  f.has_effective_filter = HasEffectiveFilter(f.node, body, context,
                                              &f.filter_reads_constants);
  f.temporary = OnlyTemporaryObjects(node, body);
  if (node == "CopyStmt") {
    f.copy = body.value("is_program", false) ? "program"
             : body.contains("filename")     ? "file"
                                             : "stdio";
  }
  if (node == "AlterTableStmt") {
    for (const auto& cmd : body.value("cmds", Json::array())) {
      if (!cmd.contains("AlterTableCmd")) continue;
      std::string sub =
          AlterTableSubcommand(cmd["AlterTableCmd"].value("subtype", ""));
      if (std::find(f.subcommands.begin(), f.subcommands.end(), sub) ==
          f.subcommands.end()) {
        f.subcommands.push_back(std::move(sub));
      }
    }
  } else if (node == "RenameStmt") {
    const std::string type = body.value("renameType", "");
    f.subcommands.push_back(type == "OBJECT_COLUMN"      ? "RENAME COLUMN"
                            : type == "OBJECT_ATTRIBUTE" ? "RENAME ATTRIBUTE"
                            : type == "OBJECT_TABCONSTRAINT" ||
                                    type == "OBJECT_DOMCONSTRAINT"
                                ? "RENAME CONSTRAINT"
                                : "RENAME");
  } else if (node == "AlterObjectSchemaStmt") {
    f.subcommands.push_back("SET SCHEMA");
  } else if (node == "AlterOwnerStmt") {
    f.subcommands.push_back("OWNER TO");
  } else if (node == "CreateExtensionStmt") {
    const std::string extension =
        absl::AsciiStrToLower(body.value("extname", ""));
    f.nested_languages.push_back(extension);
    // A transform extension (jsonb_plperlu, hstore_plpython3u, ...)
    // installs functions in its language: judged as that language.
    for (const char* language : {"plperlu", "plpython3u", "plpython2u",
                                 "plpythonu", "pltclu", "plperl",
                                 "plpython3", "pltcl"}) {
      if (extension != language &&
          absl::EndsWith(extension, absl::StrCat("_", language))) {
        f.nested_languages.push_back(language);
        break;
      }
    }
  }
  // Row locks (SELECT ... FOR UPDATE / SHARE), wherever the statement takes
  // them: its own SELECT, a subquery, a cursor's or CREATE TABLE AS's query.
  AddRowLocks(node, body, context, &f);
  if (node == "LockStmt") {
    // What a lock blocks (LOCK without a mode takes ACCESS EXCLUSIVE).
    static const char* const kModes[] = {
        "", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE",
        "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
        "EXCLUSIVE", "ACCESS EXCLUSIVE"};
    const int mode = body.value("mode", 8);
    f.subcommands.push_back(mode >= 1 && mode <= 8 ? kModes[mode]
                                                   : "ACCESS EXCLUSIVE");
  } else if (node == "VacuumStmt") {
    if (HasDefElem(body.value("options", Json::array()), "full")) {
      f.subcommands.push_back("FULL");
    }
  } else if (node == "ReindexStmt") {
    const std::string kind = body.value("kind", "");
    f.subcommands.push_back(kind == "REINDEX_OBJECT_DATABASE" ? "DATABASE"
                            : kind == "REINDEX_OBJECT_SYSTEM" ? "SYSTEM"
                            : kind == "REINDEX_OBJECT_SCHEMA" ? "SCHEMA"
                            : kind == "REINDEX_OBJECT_TABLE"  ? "TABLE"
                                                              : "INDEX");
  } else if (node == "CreatePLangStmt") {
    f.nested_languages.push_back(
        absl::AsciiStrToLower(body.value("plname", "")));
  }
  // CASCADE drops what depends on the object: columns of tables whose
  // type or default it is, views, ... (DROP TYPE/DOMAIN/FUNCTION/EXTENSION
  // ... CASCADE destroys data like DROP TABLE).
  bool cascade = body.value("behavior", "") == "DROP_CASCADE";
  if (node == "AlterTableStmt") {
    for (const auto& cmd : body.value("cmds", Json::array())) {
      if (cmd.contains("AlterTableCmd") &&
          cmd["AlterTableCmd"].value("behavior", "") == "DROP_CASCADE") {
        cascade = true;
      }
    }
  }
  if (cascade) f.subcommands.push_back("CASCADE");
  // A foreign table read through file_fdw's `program` or `filename` runs a
  // shell command or reads a server file, as COPY ... PROGRAM / FILE does.
  if (node == "CreateForeignTableStmt" || node == "AlterTableStmt" ||
      node == "CreateForeignServerStmt" || node == "AlterForeignServerStmt") {
    std::vector<const Json*> option_lists;
    if (body.contains("options")) option_lists.push_back(&body["options"]);
    if (body.contains("cmds") && body["cmds"].is_array()) {
      for (const auto& cmd : body["cmds"]) {  // by reference: kept below
        if (cmd.contains("AlterTableCmd") &&
            cmd["AlterTableCmd"].contains("def")) {
          option_lists.push_back(&cmd["AlterTableCmd"]["def"]);
        }
      }
    }
    auto names = [](const Json& options, const char* name) {
      // A list, or (ALTER ... OPTIONS) a List node holding one.
      const Json& list =
          options.is_object() && options.contains("List")
              ? options["List"].value("items", Json::array())
              : options;
      if (!list.is_array()) return false;
      for (const auto& o : list) {
        if (o.contains("DefElem") &&
            absl::AsciiStrToLower(o["DefElem"].value("defname", "")) == name &&
            o["DefElem"].value("defaction", "") != "DEFELEM_DROP") {
          return true;
        }
      }
      return false;
    };
    for (const Json* list : option_lists) {
      if (names(*list, "program")) {
        f.copy = "program";
      } else if (names(*list, "filename") && f.copy != "program") {
        f.copy = "file";
      }
    }
  }
  if (depth >= kMaxDepth) {
    f.unresolved_dynamic_sql = true;  // too deep to follow: fail closed.
    return f;
  }
  // Statements inside CTEs (WITH d AS (DELETE ...) SELECT ...), wherever
  // the WITH is (also inside CREATE TABLE AS, COPY (...), subqueries); a
  // CTE's own CTEs belong to that nested statement.
  std::function<void(const Json&)> ctes = [&](const Json& j) {
    if (j.is_array()) {
      for (const auto& v : j) ctes(v);
    } else if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "CommonTableExpr" && it.value().is_object() &&
            it.value().contains("ctequery")) {
          AddNestedNode(&f, it.value()["ctequery"], "cte", depth, context);
        } else {
          ctes(it.value());
        }
      }
    }
  };
  // Fields that are statements of their own are followed below (or, for
  // plain EXPLAIN, not run at all).
  const char* own =
      node == "ExplainStmt" || node == "PrepareStmt" || node == "CopyStmt"
          ? "query"
      : node == "RuleStmt"           ? "actions"
      : node == "CreateFunctionStmt" ? "sql_body"
                                     : "";
  if (body.is_object()) {
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (it.key() != own) ctes(it.value());
    }
  }
  if (node == "CopyStmt" && body.contains("query")) {
    AddNestedNode(&f, body["query"], "copy", depth, context);  // COPY (DELETE ...) TO.
  }
  if (node == "ExplainStmt" && body.contains("query") &&
      HasDefElem(body.value("options", Json::array()), "analyze")) {
    AddNestedNode(&f, body["query"], "explain analyze", depth, context);
  } else if (node == "PrepareStmt" && body.contains("query")) {
    AddNestedNode(&f, body["query"], "prepare", depth, context);
  } else if (node == "RuleStmt" && body.contains("actions")) {
    // A rule action's NEW and OLD are the row that fired it.
    FilterContext rule_context = context;
    rule_context.value_qualifiers.insert({"new", "old"});
    for (const auto& action : body["actions"]) {
      AddNestedNode(&f, action, "rule", depth, rule_context);
    }
  } else if (node == "CreateFunctionStmt") {
    // Its parameters are values in its body, as $1 is.
    FilterContext body_context = context;
    for (const auto& p : body.value("parameters", Json::array())) {
      const Json& fp = p.contains("FunctionParameter") ? p["FunctionParameter"]
                                                       : Json::object();
      if (fp.contains("name") && fp["name"].is_string()) {
        body_context.value_names.insert(fp["name"].get<std::string>());
      }
    }
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
          AddNestedNode(&f, j, "function body", depth, body_context);
        } else if (j.is_object()) {
          for (auto it = j.begin(); it != j.end(); ++it) visit(it.value());
        }
      };
      visit(body["sql_body"]);
    } else if (language == "sql") {
      AddNestedText(&f, source, "function body", depth, /*may_fail=*/false,
                    body_context);
    } else if (language == "plpgsql") {
      f.nested_languages.push_back("plpgsql");
      // libpg_query parses PL/pgSQL from the whole CREATE FUNCTION text.
      if (text.empty()) {
        f.unresolved_dynamic_sql = true;
      } else {
        AddPlpgsqlBody(&f, text, depth, body_context);
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
                     depth, context);
    } else {
      f.unresolved_dynamic_sql = true;
    }
  }
  return f;
}

absl::StatusOr<std::vector<StatementFacts>> AnalyzeText(
    absl::string_view sql, int depth, const FilterContext& context) {
  const std::string text(sql);
  if (absl::Status cost = CheckLexCost(text); !cost.ok()) return cost;
  if (absl::Status deep = CheckNestingDepth(text, false); !deep.ok()) {
    return deep;
  }
  ParseResult parsed(text);
  if (parsed.r.error != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(parsed.r.error->message, " (at character ",
                     parsed.r.error->cursorpos, ")"));
  }
  if (absl::Status depth = CheckTreeDepth(parsed.r.parse_tree); !depth.ok()) {
    return depth;
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
                        absl::string_view(text).substr(location, length))),
                    context);
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
