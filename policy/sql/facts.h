// Statement facts from PostgreSQL's own grammar (libpg_query). This folder
// is the only code that includes pg_query.h.
//
// Covers statement splitting, kind / command tag / class, relations,
// functions, columns, the effective-filter test for DELETE and UPDATE,
// fingerprints and nested statements. The parse cache follows.
#ifndef WARDEN_POLICY_SQL_FACTS_H_
#define WARDEN_POLICY_SQL_FACTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::policy::sql {

enum class StatementClass { kRead, kWrite, kDdl, kDcl, kTransaction, kUtility };

// "read", "write", "ddl", "dcl", "transaction", "utility".
const char* ClassName(StatementClass c);

struct Relation {
  std::string schema;  // empty when not written in the statement.
  std::string name;
  bool operator==(const Relation& o) const {
    return schema == o.schema && name == o.name;
  }
};

struct StatementFacts {
  std::string node;     // parse node, e.g. "DeleteStmt".
  std::string command;  // PostgreSQL command tag, e.g. "DELETE", "DROP TABLE".
  StatementClass statement_class = StatementClass::kUtility;
  std::vector<Relation> relations;  // every RangeVar, in order, deduplicated.
  std::vector<std::string> functions;  // every function called, as written
                                       // ("lower", "pg_catalog.now").
  // Every column referenced, as written ("id", "o.total", "*"), plus the
  // columns INSERT and UPDATE write; source order, deduplicated.
  std::vector<std::string> columns;
  // DELETE / UPDATE / MERGE / INSERT ... ON CONFLICT DO UPDATE: whether
  // the write is limited to rows it names: a conjunct constrains a column
  // of the target against a value (policy/sql/filter.h has the whole
  // definition). `WHERE true`, `1=1`, `$1`, `x = x`, `EXISTS (...)` or a
  // condition on another table only are not filters. SELECT ... FOR
  // UPDATE / SHARE too (it locks every row it reads) unless it has a
  // LIMIT. Always true for other statements.
  bool has_effective_filter = true;
  // Run-time parameters the statement changes, lower-case: SET, SET LOCAL,
  // RESET ("all" for RESET ALL), SET SESSION AUTHORIZATION
  // ("session_authorization"), SET ROLE ("role"), SET TRANSACTION
  // ("transaction_isolation", ...), the SET / RESET of ALTER SYSTEM, ALTER
  // ROLE, ALTER DATABASE, CREATE / ALTER FUNCTION, set_config('name', ...)
  // calls anywhere in the tree, and UPDATE pg_settings ... WHERE name = 'x'.
  // "*" when the name is computed (set_config(f(x), ...), which also sets
  // unresolved_dynamic_sql) or an UPDATE of pg_settings leaves it open.
  std::vector<std::string> settings;
  // The values those changes set, where the statement says: (name, value)
  // for SET / SET LOCAL / ALTER ... SET name = value and set_config(name,
  // value, ...) with constants; value "DEFAULT" for RESET and SET ... TO
  // DEFAULT; "?" when the value is computed (set_config(name, f(x), ...)).
  std::vector<std::pair<std::string, std::string>> setting_values;
  // COPY: "stdio" (FROM STDIN / TO STDOUT, what psql's \copy sends),
  // "file" (a file on the database server) or "program" (a shell command
  // on the server). Empty for other statements.
  std::string copy;
  // What an ALTER changes, as the ALTER TABLE synopsis names it, in order,
  // deduplicated: "DROP COLUMN", "ADD COLUMN", "ALTER COLUMN TYPE",
  // "DROP CONSTRAINT", "OWNER TO", "RENAME", "RENAME COLUMN", "SET SCHEMA",
  // ... (ALTER TABLE / INDEX / VIEW / ..., RENAME, SET SCHEMA, OWNER TO).
  std::vector<std::string> subcommands;
  // SQL-level prepared statements (the namespace protocol-level Parse
  // shares): the name a PREPARE creates or a DEALLOCATE drops (empty for
  // DEALLOCATE ALL), and every name EXECUTEd anywhere in the statement
  // (also under EXPLAIN or CREATE TABLE AS).
  std::string prepared_name;
  std::vector<std::string> executed;
  // SQL cursors (the namespace protocol-level portals share): the name a
  // DECLARE creates, a FETCH or MOVE reads, a CLOSE closes (empty for
  // CLOSE ALL).
  std::string cursor;
  std::string text;         // this statement's own text.
  std::string fingerprint;  // libpg_query fingerprint (hex).

  // Statements this one runs or defines, found anywhere inside it: DML in
  // CTEs ("cte"), the statement of EXPLAIN ANALYZE ("explain analyze"),
  // PREPARE bodies ("prepare"), rule actions ("rule"), SQL and PL/pgSQL
  // function bodies ("function body", "plpgsql"), DO blocks ("plpgsql"),
  // EXECUTE of string literals ("execute") and the query of COPY (...)
  // ("copy"). Each has its own nested list.
  std::vector<StatementFacts> nested;
  std::string nested_via;  // how the parent contains this one; "" at top.
  // Languages of bodies this statement carries (DO, CREATE FUNCTION),
  // lower-case, and the language or extension CREATE LANGUAGE / CREATE
  // EXTENSION installs ("plpython3u").
  std::vector<std::string> nested_languages;
  // Something inside cannot be known before it runs: EXECUTE of a computed
  // string, a body in an opaque language (plpython3u, ...), unparseable
  // nested SQL. Policies treat it as unresolvable dynamic SQL.
  bool unresolved_dynamic_sql = false;
  // What it creates, changes or writes is only the session's own
  // temporary objects: CREATE TEMP TABLE / VIEW / SEQUENCE, CREATE TEMP
  // TABLE AS, SELECT INTO TEMP, and writes, DDL or DROP naming pg_temp.*.
  // (An unqualified name cannot be known to be temporary.) What it reads
  // may be anything; nested statements have their own.
  bool temporary = false;
  // The effective-filter test read a constant's value (policy/sql/filter.h):
  // the same statement with other constants may be judged otherwise, so
  // its analysis is not shared by normalized text (cache.h).
  bool filter_reads_constants = false;
};

// Analyze splits `sql` into statements and returns the facts of each.
// Unparseable SQL is InvalidArgument with PostgreSQL's message and the
// 1-based character position, e.g. `syntax error at or near "FORM" (at
// character 10)`. Thread-safe.
absl::StatusOr<std::vector<StatementFacts>> Analyze(absl::string_view sql);

// Refuses (InvalidArgument, with the reason) a text whose lexing alone
// would take libpg_query too long: runs of operator characters are
// rescanned once per comment start inside them ("/*/*/*..."), so their
// cost grows with the square of their length. Analyze checks it first;
// anything else that hands SQL text to libpg_query must too.
absl::Status CheckLexCost(absl::string_view text);

// Refuses (InvalidArgument, with the reason) a text whose parse tree could
// nest too deep for libpg_query, which recurses without a depth check
// ("SELECT 1+1+1+..." with 100,000 terms exhausts a thread's stack).
// `plpgsql`: the text is a CREATE FUNCTION of a PL/pgSQL body. Analyze
// checks it first; anything else that hands SQL to libpg_query must too.
absl::Status CheckNestingDepth(absl::string_view text, bool plpgsql);

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_FACTS_H_
