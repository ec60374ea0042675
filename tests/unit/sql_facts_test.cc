#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/sql/facts.h"

namespace warden::policy::sql {
namespace {

using ::testing::ElementsAre;

StatementFacts One(const std::string& sql) {
  auto facts = Analyze(sql);
  EXPECT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->size(), 1u) << sql;
  return facts->empty() ? StatementFacts{} : facts->front();
}

TEST(SqlFactsTest, SplitsStatementsWithTheirOwnText) {
  auto facts = Analyze("SELECT 1; DELETE FROM t WHERE id = 2;  DROP TABLE a.b");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->size(), 3u);
  EXPECT_EQ((*facts)[0].command, "SELECT");
  EXPECT_EQ((*facts)[1].text, "DELETE FROM t WHERE id = 2");
  EXPECT_EQ((*facts)[2].command, "DROP TABLE");
  EXPECT_EQ((*facts)[2].statement_class, StatementClass::kDdl);
}

TEST(SqlFactsTest, CommentsDoNotHideOrForgeStatements) {
  // A regex looking for "DROP TABLE" misses this; the grammar does not.
  EXPECT_EQ(One("DROP/* hi */TABLE -- x\n orders").command, "DROP TABLE");
  // PostgreSQL reads "DR" then "OP": a syntax error, never a DROP.
  EXPECT_FALSE(Analyze("DR/**/OP TABLE orders").ok());
  // A second statement after ';' is its own statement.
  auto two = Analyze("SELECT 1 /* ; */; DROP TABLE t");
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].command, "DROP TABLE");
}

TEST(SqlFactsTest, CommandTagsAndClasses) {
  struct Case {
    const char* sql;
    const char* command;
    StatementClass cls;
  };
  const Case cases[] = {
      {"SELECT * FROM t", "SELECT", StatementClass::kRead},
      {"SELECT * INTO t2 FROM t", "SELECT INTO", StatementClass::kDdl},
      {"INSERT INTO t VALUES (1)", "INSERT", StatementClass::kWrite},
      {"UPDATE t SET a = 1 WHERE id = 1", "UPDATE", StatementClass::kWrite},
      {"DELETE FROM t WHERE id = 1", "DELETE", StatementClass::kWrite},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE",
       StatementClass::kWrite},
      {"COPY t FROM STDIN", "COPY", StatementClass::kWrite},
      {"COPY t TO STDOUT", "COPY", StatementClass::kRead},
      {"DROP TABLE t", "DROP TABLE", StatementClass::kDdl},
      {"DROP INDEX i", "DROP INDEX", StatementClass::kDdl},
      {"DROP SCHEMA s CASCADE", "DROP SCHEMA", StatementClass::kDdl},
      {"DROP MATERIALIZED VIEW m", "DROP MATERIALIZED VIEW",
       StatementClass::kDdl},
      {"DROP DATABASE d", "DROP DATABASE", StatementClass::kDdl},
      {"DROP OWNED BY u", "DROP OWNED", StatementClass::kDcl},
      {"TRUNCATE t", "TRUNCATE TABLE", StatementClass::kDdl},
      {"CREATE TABLE t (id int)", "CREATE TABLE", StatementClass::kDdl},
      {"CREATE TABLE t2 AS SELECT 1", "CREATE TABLE AS", StatementClass::kDdl},
      {"ALTER TABLE t DROP COLUMN a", "ALTER TABLE", StatementClass::kDdl},
      {"CREATE INDEX i ON t (a)", "CREATE INDEX", StatementClass::kDdl},
      {"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
       "CREATE FUNCTION", StatementClass::kDdl},
      {"CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", "CREATE PROCEDURE",
       StatementClass::kDdl},
      {"GRANT SELECT ON t TO u", "GRANT", StatementClass::kDcl},
      {"REVOKE SELECT ON t FROM u", "REVOKE", StatementClass::kDcl},
      {"CREATE ROLE r", "CREATE ROLE", StatementClass::kDcl},
      {"BEGIN", "BEGIN", StatementClass::kTransaction},
      {"COMMIT", "COMMIT", StatementClass::kTransaction},
      {"ROLLBACK", "ROLLBACK", StatementClass::kTransaction},
      {"SET search_path = x", "SET", StatementClass::kUtility},
      {"SHOW search_path", "SHOW", StatementClass::kRead},
      {"ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM",
       StatementClass::kUtility},
      {"LOAD 'x'", "LOAD", StatementClass::kUtility},
      {"DO $$ BEGIN END $$", "DO", StatementClass::kUtility},
      {"CALL p()", "CALL", StatementClass::kUtility},
      {"EXPLAIN SELECT 1", "EXPLAIN", StatementClass::kUtility},
  };
  for (const Case& c : cases) {
    const StatementFacts f = One(c.sql);
    EXPECT_EQ(f.command, c.command) << c.sql;
    EXPECT_EQ(f.statement_class, c.cls)
        << c.sql << " got " << ClassName(f.statement_class);
  }
}

TEST(SqlFactsTest, EffectiveFilter) {
  struct Case {
    const char* sql;
    bool filtered;
  };
  const Case cases[] = {
      {"DELETE FROM t", false},
      {"DELETE FROM t WHERE true", false},
      {"DELETE FROM t WHERE 1 = 1", false},
      {"DELETE FROM t WHERE 'a' = 'a'", false},
      {"DELETE FROM t WHERE NOT false", false},
      {"DELETE FROM t WHERE true OR id = 5", false},
      {"DELETE FROM t WHERE 1 = 1 AND true", false},
      {"UPDATE t SET a = 1", false},
      {"UPDATE t SET a = 1 WHERE 2 = 2", false},
      {"DELETE FROM t WHERE id = 1 AND 1 = 1", true},
      {"DELETE FROM t WHERE id = 1", true},
      {"DELETE FROM t WHERE 1 = 2", true},  // filters everything out.
      {"DELETE FROM t WHERE false OR id = 3", true},
      {"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM s)", true},
      {"SELECT * FROM t", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(One(c.sql).has_effective_filter, c.filtered) << c.sql;
  }
}

TEST(SqlFactsTest, RelationsAndFunctionsAnywhereInTheTree) {
  const StatementFacts f =
      One("WITH x AS (SELECT lower(name) FROM public.customers) "
          "SELECT pg_catalog.now(), count(*) FROM x JOIN sales.orders o "
          "ON true WHERE o.id IN (SELECT pg_read_file('/etc/passwd') FROM t)");
  EXPECT_THAT(f.functions,
              ElementsAre("lower", "pg_catalog.now", "count", "pg_read_file"));
  EXPECT_THAT(f.relations,
              ElementsAre(Relation{"public", "customers"}, Relation{"", "x"},
                          Relation{"sales", "orders"}, Relation{"", "t"}));
}

TEST(SqlFactsTest, ColumnsReadAndWritten) {
  EXPECT_THAT(
      One("SELECT o.total, name AS who, * FROM orders o WHERE id = 1").columns,
      ElementsAre("o.total", "name", "*", "id"));
  EXPECT_THAT(
      One("UPDATE customers SET email = lower(email) WHERE id = 7").columns,
      ElementsAre("email", "id"));
  EXPECT_THAT(One("INSERT INTO t (x, y) SELECT a, b FROM s").columns,
              ElementsAre("x", "y", "a", "b"));
}

TEST(SqlFactsTest, FingerprintIgnoresConstantsAndSpacing) {
  const StatementFacts a = One("SELECT * FROM t WHERE id = 1");
  const StatementFacts b = One("select *   from t where id = 42");
  const StatementFacts c = One("SELECT * FROM u WHERE id = 1");
  EXPECT_FALSE(a.fingerprint.empty());
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_NE(a.fingerprint, c.fingerprint);
}

TEST(SqlFactsTest, UnparseableSqlNamesThePosition) {
  auto facts = Analyze("SELECT * FORM t");
  ASSERT_FALSE(facts.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(facts.status()));
  EXPECT_THAT(std::string(facts.status().message()),
              ::testing::HasSubstr("syntax error at or near"));
  EXPECT_THAT(std::string(facts.status().message()),
              ::testing::HasSubstr("(at character "));
}

TEST(SqlFactsTest, EmptyStatementsAreSkipped) {
  auto facts = Analyze(";; SELECT 1 ;");
  ASSERT_TRUE(facts.ok());
  ASSERT_EQ(facts->size(), 1u);
  EXPECT_EQ((*facts)[0].text, "SELECT 1");
}

// Every command in a statement and below it, as "via:COMMAND".
void Flatten(const StatementFacts& f, std::vector<std::string>* out) {
  for (const auto& n : f.nested) {
    out->push_back(n.nested_via + ":" + n.command);
    Flatten(n, out);
  }
}

std::vector<std::string> NestedOf(const std::string& sql) {
  std::vector<std::string> out;
  Flatten(One(sql), &out);
  return out;
}

TEST(SqlFactsTest, DmlInsideCtes) {
  const StatementFacts f =
      One("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) "
          "FROM gone");
  EXPECT_EQ(f.command, "SELECT");
  ASSERT_EQ(f.nested.size(), 1u);
  EXPECT_EQ(f.nested[0].command, "DELETE");
  EXPECT_EQ(f.nested[0].nested_via, "cte");
  EXPECT_FALSE(f.nested[0].has_effective_filter);
}

TEST(SqlFactsTest, ExplainAnalyzeRunsItsStatementPlainExplainDoesNot) {
  EXPECT_THAT(NestedOf("EXPLAIN ANALYZE DELETE FROM t"),
              ElementsAre("explain analyze:DELETE"));
  EXPECT_THAT(NestedOf("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1"),
              ElementsAre("explain analyze:UPDATE"));
  EXPECT_TRUE(NestedOf("EXPLAIN DELETE FROM t").empty());
}

TEST(SqlFactsTest, PrepareBodiesAndRuleActions) {
  EXPECT_THAT(NestedOf("PREPARE p AS DELETE FROM t WHERE id = $1"),
              ElementsAre("prepare:DELETE"));
  EXPECT_THAT(NestedOf("CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM "
                       "audit"),
              ElementsAre("rule:DELETE"));
}

TEST(SqlFactsTest, SqlFunctionBodies) {
  EXPECT_THAT(NestedOf("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS "
                       "'TRUNCATE t'"),
              ElementsAre("function body:TRUNCATE TABLE"));
  EXPECT_THAT(NestedOf("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN "
                       "ATOMIC DELETE FROM t; SELECT 1; END"),
              ElementsAre("function body:DELETE", "function body:SELECT"));
}

TEST(SqlFactsTest, DoBlocksAndExecuteOfLiterals) {
  const StatementFacts f =
      One("DO $$ DECLARE n int; BEGIN n := pg_read_file('/etc/passwd'); "
          "DELETE FROM t; EXECUTE 'DROP TABLE x'; END $$");
  EXPECT_FALSE(f.unresolved_dynamic_sql);
  std::vector<std::string> all;
  Flatten(f, &all);
  EXPECT_THAT(
      all, ::testing::IsSupersetOf({"plpgsql:DELETE", "execute:DROP TABLE"}));
  bool saw_read_file = false;
  std::vector<const StatementFacts*> stack{&f};
  while (!stack.empty()) {
    const StatementFacts* s = stack.back();
    stack.pop_back();
    for (const auto& fn : s->functions) saw_read_file |= fn == "pg_read_file";
    for (const auto& n : s->nested) stack.push_back(&n);
  }
  EXPECT_TRUE(saw_read_file) << "functions inside PL/pgSQL expressions";
}

TEST(SqlFactsTest, ComputedExecuteAndOpaqueLanguagesAreUnresolved) {
  EXPECT_TRUE(One("DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE t'; END $$")
                  .unresolved_dynamic_sql);
  EXPECT_TRUE(One("DO LANGUAGE plpython3u $$ plpy.execute('DROP TABLE t') $$")
                  .unresolved_dynamic_sql);
  EXPECT_TRUE(One("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ "
                  "BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$")
                  .unresolved_dynamic_sql);
  EXPECT_FALSE(One("DO $$ BEGIN PERFORM 1; END $$").unresolved_dynamic_sql);
}

TEST(SqlFactsTest, PlpgsqlFunctionBodies) {
  EXPECT_THAT(NestedOf("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS "
                       "$$ BEGIN UPDATE t SET a = 1; END $$"),
              ::testing::Contains("plpgsql:UPDATE"));
}

}  // namespace
}  // namespace warden::policy::sql
