#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/sql/facts.h"

#include <algorithm>

namespace warden::policy::sql {
namespace {

using ::testing::ElementsAre;

StatementFacts One(const std::string& sql) {
  auto facts = Analyze(sql);
  EXPECT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->size(), 1u) << sql;
  return facts->empty() ? StatementFacts{} : facts->front();
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
      // The rest of PostgreSQL 15's statements, tagged as psql shows them.
      {"CREATE TABLE t2 (LIKE t)", "CREATE TABLE", StatementClass::kDdl},
      {"CREATE TEMP TABLE t2 (a int)", "CREATE TABLE", StatementClass::kDdl},
      {"CREATE MATERIALIZED VIEW m AS SELECT 1", "CREATE MATERIALIZED VIEW",
       StatementClass::kDdl},
      {"REFRESH MATERIALIZED VIEW m", "REFRESH MATERIALIZED VIEW",
       StatementClass::kWrite},
      {"CREATE VIEW v AS SELECT 1", "CREATE VIEW", StatementClass::kDdl},
      {"DROP VIEW v", "DROP VIEW", StatementClass::kDdl},
      {"DROP FUNCTION f()", "DROP FUNCTION", StatementClass::kDdl},
      {"DROP FOREIGN TABLE ft", "DROP FOREIGN TABLE", StatementClass::kDdl},
      {"DROP FOREIGN DATA WRAPPER w", "DROP FOREIGN DATA WRAPPER",
       StatementClass::kDdl},
      {"DROP SERVER s", "DROP SERVER", StatementClass::kDdl},
      {"DROP TEXT SEARCH PARSER p", "DROP TEXT SEARCH PARSER",
       StatementClass::kDdl},
      {"DROP STATISTICS s", "DROP STATISTICS", StatementClass::kDdl},
      {"DROP OPERATOR CLASS c USING btree", "DROP OPERATOR CLASS",
       StatementClass::kDdl},
      {"DROP EVENT TRIGGER e", "DROP EVENT TRIGGER", StatementClass::kDdl},
      {"DROP EXTENSION e", "DROP EXTENSION", StatementClass::kDdl},
      {"DROP TABLESPACE ts", "DROP TABLESPACE", StatementClass::kDdl},
      {"DROP ROLE r", "DROP ROLE", StatementClass::kDcl},
      {"DROP USER MAPPING FOR u SERVER s", "DROP USER MAPPING",
       StatementClass::kDcl},
      {"ALTER INDEX i RENAME TO j", "ALTER INDEX", StatementClass::kDdl},
      {"ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE",
       StatementClass::kDdl},
      {"ALTER TABLE t SET SCHEMA s", "ALTER TABLE", StatementClass::kDdl},
      {"ALTER TABLE t OWNER TO bob", "ALTER TABLE", StatementClass::kDcl},
      {"ALTER FUNCTION f() OWNER TO bob", "ALTER FUNCTION",
       StatementClass::kDcl},
      {"ALTER MATERIALIZED VIEW m RENAME TO n", "ALTER MATERIALIZED VIEW",
       StatementClass::kDdl},
      {"ALTER FUNCTION f() SECURITY DEFINER", "ALTER FUNCTION",
       StatementClass::kDdl},
      {"ALTER PROCEDURE p() SECURITY DEFINER", "ALTER PROCEDURE",
       StatementClass::kDdl},
      {"ALTER ROLE r SUPERUSER", "ALTER ROLE", StatementClass::kDcl},
      {"ALTER ROLE r SET work_mem = '1GB'", "ALTER ROLE", StatementClass::kDcl},
      {"ALTER ROLE r RENAME TO s", "ALTER ROLE", StatementClass::kDcl},
      {"ALTER DATABASE d SET work_mem = '1GB'", "ALTER DATABASE",
       StatementClass::kDdl},
      {"ALTER DATABASE d CONNECTION LIMIT 5", "ALTER DATABASE",
       StatementClass::kDdl},
      {"CREATE TYPE mood AS ENUM ('a')", "CREATE TYPE", StatementClass::kDdl},
      {"CREATE TYPE pair AS (a int, b int)", "CREATE TYPE",
       StatementClass::kDdl},
      {"ALTER TYPE mood ADD VALUE 'b'", "ALTER TYPE", StatementClass::kDdl},
      {"CREATE DOMAIN d AS int", "CREATE DOMAIN", StatementClass::kDdl},
      {"CREATE AGGREGATE a (int) (sfunc = int4pl, stype = int)",
       "CREATE AGGREGATE", StatementClass::kDdl},
      {"CREATE COLLATION c (locale = 'C')", "CREATE COLLATION",
       StatementClass::kDdl},
      {"CREATE CAST (int AS text) WITH INOUT", "CREATE CAST",
       StatementClass::kDdl},
      {"CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION "
       "f()",
       "CREATE TRIGGER", StatementClass::kDdl},
      {"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
       "CREATE EVENT TRIGGER", StatementClass::kDdl},
      {"CREATE RULE r AS ON INSERT TO t DO NOTHING", "CREATE RULE",
       StatementClass::kDdl},
      {"CREATE SEQUENCE s", "CREATE SEQUENCE", StatementClass::kDdl},
      {"ALTER SEQUENCE s RESTART", "ALTER SEQUENCE", StatementClass::kDdl},
      {"CREATE EXTENSION pgcrypto", "CREATE EXTENSION", StatementClass::kDdl},
      {"ALTER EXTENSION e UPDATE", "ALTER EXTENSION", StatementClass::kDdl},
      {"CREATE LANGUAGE plsample HANDLER plsample_call_handler",
       "CREATE LANGUAGE", StatementClass::kDdl},
      {"CREATE POLICY p ON t USING (true)", "CREATE POLICY",
       StatementClass::kDdl},
      {"CREATE PUBLICATION p FOR ALL TABLES", "CREATE PUBLICATION",
       StatementClass::kDdl},
      {"CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
       "CREATE SUBSCRIPTION", StatementClass::kDdl},
      {"CREATE STATISTICS s ON a, b FROM t", "CREATE STATISTICS",
       StatementClass::kDdl},
      {"CREATE SERVER s FOREIGN DATA WRAPPER w", "CREATE SERVER",
       StatementClass::kDdl},
      {"CREATE FOREIGN TABLE ft (a int) SERVER s", "CREATE FOREIGN TABLE",
       StatementClass::kDdl},
      {"IMPORT FOREIGN SCHEMA r FROM SERVER s INTO l", "IMPORT FOREIGN SCHEMA",
       StatementClass::kDdl},
      {"CREATE USER MAPPING FOR u SERVER s", "CREATE USER MAPPING",
       StatementClass::kDcl},
      {"CREATE TABLESPACE ts LOCATION '/x'", "CREATE TABLESPACE",
       StatementClass::kDdl},
      {"COMMENT ON TABLE t IS 'x'", "COMMENT", StatementClass::kDdl},
      {"SECURITY LABEL ON TABLE t IS 'x'", "SECURITY LABEL",
       StatementClass::kDdl},
      {"CREATE SCHEMA s", "CREATE SCHEMA", StatementClass::kDdl},
      {"CREATE DATABASE d", "CREATE DATABASE", StatementClass::kDdl},
      {"GRANT r TO u", "GRANT ROLE", StatementClass::kDcl},
      {"REVOKE r FROM u", "REVOKE ROLE", StatementClass::kDcl},
      {"CREATE USER u", "CREATE ROLE", StatementClass::kDcl},
      {"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO u",
       "ALTER DEFAULT PRIVILEGES", StatementClass::kDcl},
      {"REASSIGN OWNED BY a TO b", "REASSIGN OWNED", StatementClass::kDcl},
      {"VACUUM t", "VACUUM", StatementClass::kUtility},
      {"VACUUM FULL", "VACUUM", StatementClass::kUtility},
      {"ANALYZE t", "ANALYZE", StatementClass::kUtility},
      {"CLUSTER t USING i", "CLUSTER", StatementClass::kUtility},
      {"REINDEX TABLE t", "REINDEX", StatementClass::kUtility},
      {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE",
       StatementClass::kUtility},
      {"CHECKPOINT", "CHECKPOINT", StatementClass::kUtility},
      {"LISTEN c", "LISTEN", StatementClass::kUtility},
      {"NOTIFY c, 'x'", "NOTIFY", StatementClass::kUtility},
      {"UNLISTEN *", "UNLISTEN", StatementClass::kUtility},
      {"DISCARD ALL", "DISCARD ALL", StatementClass::kUtility},
      {"DISCARD TEMP", "DISCARD TEMP", StatementClass::kUtility},
      {"RESET ALL", "RESET", StatementClass::kUtility},
      {"SET CONSTRAINTS ALL DEFERRED", "SET CONSTRAINTS",
       StatementClass::kTransaction},
      {"START TRANSACTION", "START TRANSACTION", StatementClass::kTransaction},
      {"SAVEPOINT s", "SAVEPOINT", StatementClass::kTransaction},
      {"PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION",
       StatementClass::kTransaction},
      {"PREPARE p AS SELECT 1", "PREPARE", StatementClass::kUtility},
      {"EXECUTE p", "EXECUTE", StatementClass::kUtility},
      {"DEALLOCATE p", "DEALLOCATE", StatementClass::kUtility},
      {"DEALLOCATE ALL", "DEALLOCATE ALL", StatementClass::kUtility},
      {"DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR",
       StatementClass::kRead},
      {"FETCH 10 FROM c", "FETCH", StatementClass::kRead},
      {"MOVE 10 IN c", "MOVE", StatementClass::kRead},
      {"CLOSE c", "CLOSE CURSOR", StatementClass::kUtility},
      {"CLOSE ALL", "CLOSE CURSOR ALL", StatementClass::kUtility},
  };
  for (const Case& c : cases) {
    const StatementFacts f = One(c.sql);
    EXPECT_EQ(f.command, c.command) << c.sql;
    EXPECT_EQ(f.statement_class, c.cls)
        << c.sql << " got " << ClassName(f.statement_class);
  }
}

TEST(SqlFactsTest, Settings) {
  struct Case {
    const char* sql;
    std::vector<std::string> settings;
  };
  const Case cases[] = {
      {"SET search_path = x", {"search_path"}},
      {"SET LOCAL Work_Mem = '1GB'", {"work_mem"}},
      {"SET \"Session_Replication_Role\" = replica",
       {"session_replication_role"}},
      // Back to the session's starting value: no change.
      {"SET SESSION session_replication_role TO DEFAULT", {}},
      {"SET TIME ZONE 'UTC'", {"timezone"}},
      {"RESET statement_timeout", {}},
      {"RESET ALL", {"all"}},
      {"SET SESSION AUTHORIZATION bob", {"session_authorization"}},
      {"SET ROLE bob", {"role"}},
      // Back to the session's own identity: no role change.
      {"RESET ROLE", {}},
      {"SET ROLE NONE", {}},
      {"SET ROLE admin", {"role"}},
      {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
       {"transaction_isolation"}},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
       {"default_transaction_read_only"}},
      {"ALTER SYSTEM SET wal_level = minimal", {"wal_level"}},
      {"ALTER SYSTEM RESET ALL", {"all"}},
      {"ALTER ROLE r SET session_replication_role = replica",
       {"session_replication_role"}},
      {"ALTER ROLE r IN DATABASE d RESET work_mem", {"work_mem"}},
      {"ALTER DATABASE d SET work_mem TO '1GB'", {"work_mem"}},
      {"ALTER FUNCTION f() SET search_path = x", {"search_path"}},
      {"CREATE FUNCTION f() RETURNS int LANGUAGE sql "
       "SET session_replication_role = replica AS 'SELECT 1'",
       {"session_replication_role"}},
      {"SELECT set_config('session_replication_role', 'replica', false)",
       {"session_replication_role"}},
      {"SELECT pg_catalog.set_config('Search_Path'::text, 'x', true)",
       {"search_path"}},
      {"SELECT 1 FROM t WHERE id IN (SELECT 1 WHERE "
       "set_config('work_mem', '1GB', false) IS NOT NULL)",
       {"work_mem"}},
      {"SELECT set_config(lower('X'), 'y', false)", {"*"}},
      {"UPDATE pg_settings SET setting = 'replica' "
       "WHERE name = 'session_replication_role'",
       {"session_replication_role"}},
      {"UPDATE pg_catalog.pg_settings s SET setting = '1' "
       "WHERE 'work_mem' = s.name AND 1 = 1",
       {"work_mem"}},
      {"UPDATE pg_settings SET setting = '1' WHERE name IN ('a', 'b')",
       {"a", "b"}},
      {"UPDATE pg_settings SET setting = 'replica'", {"*"}},
      {"UPDATE pg_settings SET setting = '1' WHERE name LIKE 'session%'",
       {"*"}},
      {"UPDATE pg_settings SET setting = '1' WHERE name = 'a' OR true", {"*"}},
      {"UPDATE my_settings SET setting = '1'", {}},
      {"SHOW session_replication_role", {}},
      {"SELECT current_setting('session_replication_role')", {}},
      {"SELECT 'set_config(''x'', 1)'", {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(One(c.sql).settings, c.settings) << c.sql;
  }
  EXPECT_TRUE(
      One("SELECT set_config(lower('X'), 'y', false)").unresolved_dynamic_sql);
  EXPECT_FALSE(
      One("SELECT set_config('x', 'y', false)").unresolved_dynamic_sql);
  // Inside a DO block: on the nested statement.
  const StatementFacts d = One(
      "DO $$ BEGIN PERFORM set_config('session_replication_role', 'replica', "
      "false); END $$");
  ASSERT_FALSE(d.nested.empty());
  EXPECT_THAT(d.nested[0].settings, ElementsAre("session_replication_role"));
}

TEST(SqlFactsTest, CopyDirections) {
  EXPECT_EQ(One("COPY t FROM STDIN").copy, "stdio");
  EXPECT_EQ(One("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv)").copy, "stdio");
  EXPECT_EQ(One("COPY t TO '/tmp/t.csv'").copy, "file");
  EXPECT_EQ(One("COPY t FROM '/etc/passwd'").copy, "file");
  EXPECT_EQ(One("COPY t TO PROGRAM 'curl -d @- x'").copy, "program");
  EXPECT_EQ(One("COPY t FROM PROGRAM 'id'").copy, "program");
  EXPECT_EQ(One("SELECT 1").copy, "");
  // COPY (DELETE ... RETURNING) TO runs the DELETE.
  EXPECT_THAT(NestedOf("COPY (DELETE FROM t RETURNING *) TO STDOUT"),
              ElementsAre("copy:DELETE"));
}

TEST(SqlFactsTest, Subcommands) {
  EXPECT_THAT(One("ALTER TABLE t DROP COLUMN a, ADD COLUMN b int, "
                  "DROP COLUMN c")
                  .subcommands,
              ElementsAre("DROP COLUMN", "ADD COLUMN"));
  EXPECT_THAT(One("ALTER TABLE t ALTER COLUMN a TYPE bigint").subcommands,
              ElementsAre("ALTER COLUMN TYPE"));
  EXPECT_THAT(One("ALTER TABLE t ALTER COLUMN a SET NOT NULL").subcommands,
              ElementsAre("ALTER COLUMN SET NOT NULL"));
  EXPECT_THAT(One("ALTER TABLE t DROP CONSTRAINT c").subcommands,
              ElementsAre("DROP CONSTRAINT"));
  EXPECT_THAT(One("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)").subcommands,
              ElementsAre("ADD CONSTRAINT"));
  EXPECT_THAT(One("ALTER TABLE t DISABLE TRIGGER ALL").subcommands,
              ElementsAre("DISABLE TRIGGER"));
  EXPECT_THAT(One("ALTER TABLE t OWNER TO bob").subcommands,
              ElementsAre("OWNER TO"));
  EXPECT_THAT(One("ALTER TABLE t RENAME COLUMN a TO b").subcommands,
              ElementsAre("RENAME COLUMN"));
  EXPECT_THAT(One("ALTER TABLE t RENAME TO u").subcommands,
              ElementsAre("RENAME"));
  EXPECT_THAT(One("ALTER TABLE t SET SCHEMA s").subcommands,
              ElementsAre("SET SCHEMA"));
  EXPECT_THAT(One("ALTER TABLE t DETACH PARTITION p").subcommands,
              ElementsAre("DETACH PARTITION"));
  EXPECT_TRUE(One("DROP TABLE t").subcommands.empty());
  // CASCADE, lock modes, VACUUM FULL, what REINDEX covers (issue 13).
  EXPECT_THAT(One("DROP TYPE s.status CASCADE").subcommands,
              ElementsAre("CASCADE"));
  EXPECT_THAT(One("ALTER TABLE t DROP COLUMN a CASCADE").subcommands,
              ElementsAre("DROP COLUMN", "CASCADE"));
  EXPECT_TRUE(One("DROP TYPE s.status RESTRICT").subcommands.empty());
  EXPECT_THAT(One("LOCK t").subcommands, ElementsAre("ACCESS EXCLUSIVE"));
  EXPECT_THAT(One("LOCK TABLE t IN ROW SHARE MODE").subcommands,
              ElementsAre("ROW SHARE"));
  EXPECT_THAT(One("VACUUM FULL t").subcommands, ElementsAre("FULL"));
  EXPECT_THAT(One("VACUUM (FULL false) t").subcommands, ElementsAre());
  EXPECT_THAT(One("REINDEX SYSTEM db").subcommands, ElementsAre("SYSTEM"));
  EXPECT_THAT(One("REINDEX INDEX CONCURRENTLY i").subcommands,
              ElementsAre("INDEX"));
}

// A foreign table read through file_fdw's program or filename option is
// COPY ... PROGRAM / FILE; a transform extension is its language.
TEST(SqlFactsTest, HiddenProgramsAndLanguages) {
  EXPECT_EQ(One("CREATE FOREIGN TABLE f (a text) SERVER s "
                "OPTIONS (program 'id')")
                .copy,
            "program");
  EXPECT_EQ(One("CREATE FOREIGN TABLE f (a text) SERVER s "
                "OPTIONS (FILENAME '/etc/passwd')")
                .copy,
            "file");
  EXPECT_EQ(One("ALTER FOREIGN TABLE f OPTIONS (ADD program 'id')").copy,
            "program");
  EXPECT_EQ(One("ALTER FOREIGN TABLE f OPTIONS (DROP program)").copy, "");
  EXPECT_EQ(One("CREATE FOREIGN TABLE f (a text) SERVER s "
                "OPTIONS (format 'csv')")
                .copy,
            "");
  EXPECT_THAT(One("CREATE EXTENSION jsonb_plperlu").nested_languages,
              ElementsAre("jsonb_plperlu", "plperlu"));
  EXPECT_THAT(One("CREATE EXTENSION ltree_plpython3u").nested_languages,
              ElementsAre("ltree_plpython3u", "plpython3u"));
  EXPECT_THAT(One("CREATE EXTENSION hstore").nested_languages,
              ElementsAre("hstore"));
}

TEST(SqlFactsTest, LanguagesInstalled) {
  EXPECT_THAT(One("CREATE EXTENSION plpython3u").nested_languages,
              ElementsAre("plpython3u"));
  EXPECT_THAT(One("CREATE LANGUAGE plperlu").nested_languages,
              ElementsAre("plperlu"));
  EXPECT_THAT(One("CREATE FUNCTION f() RETURNS int LANGUAGE C AS 'lib', "
                  "'sym'")
                  .nested_languages,
              ElementsAre("c"));
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
      {"SELECT * FROM t", true},
      {"MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", false},
      {"MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN UPDATE SET a = 1",
       false},
      {"MERGE INTO t USING s ON true WHEN MATCHED AND t.a = 1 THEN DELETE",
       true},
      {"MERGE INTO t USING s ON true WHEN NOT MATCHED THEN INSERT VALUES (1)",
       true},
      // Filters, by the positive definition: a target column against a
      // value, whatever the value is.
      {"DELETE FROM t WHERE id = $1", true},
      {"DELETE FROM t WHERE $1 = id", true},
      {"DELETE FROM t WHERE id IN (1, $2)", true},
      {"DELETE FROM t WHERE id = ANY($1)", true},
      {"DELETE FROM t WHERE id IS NULL", true},
      {"DELETE FROM t WHERE id IS NOT DISTINCT FROM 3", true},
      {"DELETE FROM t WHERE id BETWEEN 1 AND 5", true},
      {"DELETE FROM t WHERE created < now() - interval '1 day'", true},
      {"DELETE FROM t WHERE name LIKE 'abc%'", true},
      {"DELETE FROM t WHERE (id)::int = 2", false},  // a cast can merge
      // The red team's finds (issue 13): casts, whole rows, set-returning
      // VALUES, weak exclusions.
      {"DELETE FROM t WHERE id::bool = true", false},
      {"UPDATE t SET a = 1 WHERE CAST(id AS boolean) IN (true)", false},
      {"DELETE FROM t o WHERE o::text LIKE '(abc'", false},
      {"DELETE FROM t WHERE t::text >= '('", false},
      {"UPDATE t p SET a = 0 WHERE p IS NULL", false},
      {"DELETE FROM t WHERE id <> 0", false},
      {"DELETE FROM t WHERE id NOT IN (0)", false},
      {"DELETE FROM t WHERE id IS DISTINCT FROM NULL", false},
      {"INSERT INTO t (id) VALUES (unnest(ARRAY(SELECT id FROM t))) ON "
       "CONFLICT (id) DO UPDATE SET a = 0",
       false},
      {"INSERT INTO t (id) VALUES (generate_series(1, 1000)) ON CONFLICT (id) "
       "DO UPDATE SET a = 0",
       false},
      {"INSERT INTO t (id, a) VALUES ($1, DEFAULT) ON CONFLICT (id) DO UPDATE "
       "SET a = 0",
       true},
      {"DELETE FROM t WHERE name COLLATE \"C\" = 'x'", true},
      {"DELETE FROM t WHERE t.id = 1", true},
      {"DELETE FROM public.t WHERE public.t.id = 1", true},
      {"DELETE FROM t x WHERE x.id = 1", true},
      {"DELETE FROM t WHERE id = 1 OR id = 2", true},
      {"DELETE FROM t WHERE id = 1 OR id IN (4, 5)", true},
      {"DELETE FROM t WHERE CURRENT OF c", true},
      {"DELETE FROM t WHERE archived", true},
      {"UPDATE t SET a = v.a FROM (VALUES (1, 2)) AS v(id, a) WHERE t.id = v.id",
       true},
      {"MERGE INTO t USING (VALUES (1)) s(id) ON t.id = s.id WHEN MATCHED "
       "THEN DELETE",
       true},
      {"MERGE INTO t USING s ON t.id = 7 WHEN MATCHED THEN DELETE", true},
      {"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1", true},
      {"INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING", true},
      {"INSERT INTO t SELECT * FROM u", true},
      // Not filters: nothing constrains a target column against a value
      // (issue 13's classes, each in more than one spelling).
      {"DELETE FROM t WHERE $1", false},
      {"UPDATE t SET a = 1 WHERE $1::boolean", false},
      {"DELETE FROM t WHERE 1::int = 1", false},
      {"DELETE FROM t WHERE 't'::boolean", false},
      {"DELETE FROM t WHERE id = id", false},
      {"DELETE FROM t WHERE t.id = t.id", false},
      {"DELETE FROM t WHERE ctid = ctid", false},
      {"DELETE FROM t WHERE id IS NOT NULL", false},
      {"DELETE FROM t WHERE EXISTS (SELECT 1)", false},
      {"DELETE FROM t WHERE (SELECT true)", false},
      {"DELETE FROM t WHERE CASE WHEN true THEN true END", false},
      {"DELETE FROM t WHERE coalesce(true)", false},
      {"DELETE FROM t WHERE coalesce($1, true)", false},
      {"DELETE FROM t WHERE id = 1 OR id <> 1", false},
      {"DELETE FROM t WHERE id = 1 OR true", false},
      {"DELETE FROM t WHERE id = coalesce($1, id)", false},
      {"DELETE FROM t WHERE id = (SELECT max(id) FROM t) OR true", false},
      {"DELETE FROM t WHERE NOT (id = 1)", false},
      {"DELETE FROM t WHERE name LIKE '%'", false},
      {"DELETE FROM t WHERE name LIKE $1", false},
      {"DELETE FROM t WHERE id IN (SELECT id FROM t)", false},
      {"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM s)", false},
      {"DELETE FROM t WHERE id = ANY(ARRAY(SELECT id FROM t))", false},
      {"UPDATE t SET a = 1 FROM u WHERE u.id = 1", false},
      {"UPDATE t SET a = 1 FROM u WHERE id = 1", false},  // whose id?
      {"DELETE FROM t USING u WHERE u.id = 1", false},
      {"DELETE FROM t USING u WHERE t.id = u.id", false},
      {"DELETE FROM t x WHERE t.id = 1", false},  // t is not in scope
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", false},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.a = 1 THEN "
       "UPDATE SET a = 1",
       false},
      {"INSERT INTO t SELECT * FROM u ON CONFLICT (id) DO UPDATE SET a = 1",
       false},
      {"INSERT INTO t SELECT * FROM u ON CONFLICT (id) DO UPDATE SET a = 1 "
       "WHERE t.id = 5",
       true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(One(c.sql).has_effective_filter, c.filtered) << c.sql;
  }
}

// Names that are values where the statement runs: a rule's NEW and OLD,
// a function's parameters, PL/pgSQL variables; and a writable CTE is
// judged on its own.
TEST(SqlFactsTest, EffectiveFilterOfNestedWrites) {
  auto nested_filter = [](const char* sql) {
    const StatementFacts f = One(sql);
    EXPECT_FALSE(f.nested.empty()) << sql;
    return f.nested.empty() || f.nested[0].has_effective_filter;
  };
  EXPECT_TRUE(nested_filter(
      "CREATE RULE r AS ON INSERT TO o DO ALSO DELETE FROM a WHERE id = NEW.id"));
  EXPECT_FALSE(nested_filter(
      "CREATE RULE r AS ON INSERT TO o DO ALSO DELETE FROM a WHERE NEW.id = 1"));
  EXPECT_TRUE(nested_filter(
      "CREATE FUNCTION f(i int) RETURNS void LANGUAGE sql AS "
      "'DELETE FROM t WHERE id = i'"));
  EXPECT_TRUE(nested_filter(
      "CREATE PROCEDURE p(i int) LANGUAGE plpgsql AS $$ BEGIN "
      "DELETE FROM t WHERE id = i; END $$"));
  EXPECT_TRUE(nested_filter(
      "CREATE FUNCTION tg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "DELETE FROM t WHERE t.id = OLD.id; RETURN OLD; END $$"));
  EXPECT_FALSE(nested_filter(
      "CREATE PROCEDURE p(i int) LANGUAGE plpgsql AS $$ BEGIN "
      "DELETE FROM t WHERE i = i; END $$"));
  // A variable named like the column could be read as the column.
  EXPECT_FALSE(nested_filter(
      "CREATE PROCEDURE p(id int) LANGUAGE plpgsql AS $$ BEGIN "
      "DELETE FROM t WHERE t.id = id; END $$"));
  EXPECT_FALSE(nested_filter(
      "CREATE PROCEDURE p(i int) LANGUAGE plpgsql AS $$ "
      "#variable_conflict use_column\n BEGIN DELETE FROM t WHERE id = i; END $$"));
  EXPECT_FALSE(nested_filter("WITH d AS (DELETE FROM t WHERE $1 RETURNING *) "
                             "SELECT * FROM d"));
  EXPECT_FALSE(nested_filter("PREPARE p(bool) AS UPDATE t SET a = 0 WHERE $1"));
  EXPECT_TRUE(nested_filter("PREPARE p(int) AS UPDATE t SET a = 0 WHERE id = $1"));
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

TEST(SqlFactsTest, TargetRelationsOfWritesAndDdl) {
  // The table a statement writes or changes is a relation it touches, or
  // an `objects:` rule would miss exactly the statements it is for.
  struct Case {
    const char* sql;
    std::vector<Relation> relations;
  };
  const Case cases[] = {
      {"DELETE FROM sales.orders WHERE id = 1", {{"sales", "orders"}}},
      {"DELETE FROM orders USING customers c WHERE c.id = 1",
       {{"", "orders"}, {"", "customers"}}},
      {"INSERT INTO audit_copy SELECT * FROM orders",
       {{"", "audit_copy"}, {"", "orders"}}},
      {"UPDATE orders SET total = 0 WHERE id = 1", {{"", "orders"}}},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
       {{"", "t"}, {"", "s"}}},
      {"COPY orders TO STDOUT", {{"", "orders"}}},
      {"ALTER TABLE public.orders DROP COLUMN total", {{"public", "orders"}}},
      {"CREATE INDEX ON orders (total)", {{"", "orders"}}},
      {"SELECT * INTO backup FROM orders", {{"", "backup"}, {"", "orders"}}},
      {"DROP TABLE orders, sales.payments",
       {{"", "orders"}, {"sales", "payments"}}},
      {"DROP VIEW IF EXISTS v_orders", {{"", "v_orders"}}},
      {"TRUNCATE orders", {{"", "orders"}}},
  };
  for (const Case& c : cases) {
    const StatementFacts f = One(c.sql);
    EXPECT_EQ(f.relations.size(), c.relations.size()) << c.sql;
    for (const Relation& r : c.relations) {
      EXPECT_NE(std::find(f.relations.begin(), f.relations.end(), r),
                f.relations.end())
          << c.sql << " lacks " << r.schema << "." << r.name;
    }
  }
  EXPECT_TRUE(One("DROP SCHEMA s CASCADE").relations.empty());
}

TEST(SqlFactsTest, PreparedStatementNames) {
  auto facts = Analyze(
      "PREPARE wipe AS DELETE FROM t; EXECUTE wipe; EXPLAIN EXECUTE other(1); "
      "CREATE TABLE c AS EXECUTE third; DEALLOCATE wipe; DEALLOCATE ALL");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->size(), 6u);
  EXPECT_EQ((*facts)[0].prepared_name, "wipe");
  EXPECT_TRUE((*facts)[0].executed.empty());
  EXPECT_THAT((*facts)[1].executed, ElementsAre("wipe"));
  EXPECT_THAT((*facts)[2].executed, ElementsAre("other"));
  EXPECT_THAT((*facts)[3].executed, ElementsAre("third"));
  EXPECT_EQ((*facts)[4].prepared_name, "wipe");
  EXPECT_EQ((*facts)[5].command, "DEALLOCATE ALL");
  EXPECT_EQ((*facts)[5].prepared_name, "");
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

TEST(SqlFactsTest, DmlInCtesWhereverTheWithIs) {
  EXPECT_THAT(NestedOf("CREATE TABLE x AS WITH d AS (DELETE FROM t RETURNING "
                       "*) SELECT * FROM d"),
              ElementsAre("cte:DELETE"));
  EXPECT_THAT(NestedOf("INSERT INTO x WITH d AS (DELETE FROM t RETURNING *) "
                       "SELECT * FROM d"),
              ElementsAre("cte:DELETE"));
  // A CTE's own CTEs are found once, below it.
  EXPECT_THAT(NestedOf("WITH a AS (WITH b AS (DELETE FROM t RETURNING *) "
                       "SELECT * FROM b) SELECT * FROM a"),
              ElementsAre("cte:SELECT", "cte:DELETE"));
  // Plain EXPLAIN does not run what it explains.
  EXPECT_TRUE(NestedOf("EXPLAIN WITH d AS (DELETE FROM t RETURNING *) "
                       "SELECT * FROM d")
                  .empty());
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

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Statements too deep or too costly for libpg_query are refused with the
// reason before it sees them: it recurses without a depth check (100,000
// "+1" terms crashed the proxy), and its lexer is quadratic in runs of
// operator characters (nested comments stalled a worker for minutes).
TEST(SqlFactsTest, TooComplexStatementsAreRefusedBeforeParsing) {
  const int n = 100000;
  for (const std::string& sql :
       {"SELECT 1" + Repeat("+1", n),
        "SELECT " + Repeat("(", n) + "1" + Repeat(")", n),
        "SELECT 1" + Repeat("::int", n), "SELECT " + Repeat("NOT ", n) + "true",
        "SELECT " + Repeat("- ", n) + "1", "SELECT true" + Repeat(" IS TRUE", n),
        "SELECT 1" + Repeat(" OPERATOR(pg_catalog.+) 1", n),
        "SELECT 1" + Repeat(" UNION SELECT 1", n / 10),
        "SELECT 1 FROM t" + Repeat(" JOIN t USING (a)", n / 10),
        "SELECT " + Repeat("ARRAY[", n / 10) + "1" + Repeat("]", n / 10),
        Repeat("/*", n) + Repeat("*/", n) + "SELECT 1"}) {
    const auto facts = Analyze(sql);
    ASSERT_FALSE(facts.ok()) << sql.substr(0, 60);
    EXPECT_EQ(facts.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(facts.status().message()),
                ::testing::HasSubstr("too complex for Warden to judge"))
        << sql.substr(0, 60);
  }
  // Nested blocks and SQL as text are read by the same bounds: what cannot
  // be read is dynamic SQL, which the production policy refuses.
  for (const std::string& sql :
       {"DO $$ " + Repeat("BEGIN ", 20000) + "NULL; " + Repeat("END; ", 20000) +
            "$$",
        "DO $$ " + Repeat("BEGIN PERFORM 1; ", 20000) + Repeat("END; ", 20000) +
            "$$",
        "DO $$ BEGIN EXECUTE 'SELECT 1" + Repeat("+1", n) + "'; END $$"}) {
    const auto facts = Analyze(sql);
    ASSERT_TRUE(facts.ok()) << facts.status();
    EXPECT_TRUE((*facts)[0].unresolved_dynamic_sql) << sql.substr(0, 60);
  }
}

TEST(SqlFactsTest, LargeButShallowStatementsAreAnalyzed) {
  std::string values = "INSERT INTO items (id, amount) VALUES ";
  std::string ors = "SELECT * FROM orders WHERE ";
  std::string arms = "SELECT CASE";
  for (int i = 0; i < 20000; ++i) {
    values += (i ? ", (" : "(") + std::to_string(i) + ", -" +
              std::to_string(i) + ")";
    ors += (i ? " OR (id = " : "(id = ") + std::to_string(i) +
           " AND quantity = -1)";
    if (i < 2000) {
      arms += " WHEN id = " + std::to_string(i) + " THEN " + std::to_string(i);
    }
  }
  arms += " END FROM orders";
  for (const std::string& sql :
       {values, ors, arms, "SELECT 1" + Repeat("+1", 500),
        "SELECT " + Repeat("(", 300) + "1" + Repeat(")", 300),
        "-- " + Repeat("-", 200) + "\nSELECT 1 /* " + Repeat("*", 200) + " */"}) {
    const auto facts = Analyze(sql);
    EXPECT_TRUE(facts.ok()) << sql.substr(0, 60) << ": " << facts.status();
  }
}

// Row locks wherever they are taken; "UNFILTERED LOCK" when they may cover
// every row (red-team pass 2 found each of the first group allowed).
TEST(SqlFactsTest, RowLocksThatMayCoverEveryRow) {
  auto has = [](const std::string& sql, const std::string& sub) {
    const auto facts = Analyze(sql);
    EXPECT_TRUE(facts.ok()) << sql;
    if (!facts.ok()) return false;
    const auto& s = (*facts)[0].subcommands;
    return std::find(s.begin(), s.end(), sub) != s.end();
  };
  for (const char* sql :
       {"SELECT * FROM orders FOR UPDATE", "SELECT * FROM orders WHERE true FOR SHARE",
        "SELECT * FROM orders LIMIT ALL FOR UPDATE",
        "SELECT * FROM orders LIMIT NULL FOR UPDATE",
        "SELECT * FROM orders LIMIT 1000000 FOR UPDATE",
        "SELECT * FROM orders LIMIT $1 FOR UPDATE",
        "SELECT * FROM (SELECT * FROM orders FOR UPDATE) s",
        "SELECT * FROM orders WHERE id = 1 AND id IN (SELECT id FROM orders FOR UPDATE)",
        "DECLARE c CURSOR FOR SELECT * FROM orders FOR UPDATE",
        "CREATE TEMP TABLE t AS SELECT * FROM orders FOR UPDATE",
        "INSERT INTO pg_temp.t SELECT * FROM orders FOR KEY SHARE",
        "SELECT o.* FROM orders o JOIN c ON c.id = o.c WHERE o.id = 1 FOR UPDATE"}) {
    EXPECT_TRUE(has(sql, "UNFILTERED LOCK")) << sql;
  }
  for (const char* sql :
       {"SELECT * FROM orders WHERE id = 1 FOR UPDATE",
        "SELECT * FROM orders ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED",
        "DECLARE c CURSOR FOR SELECT * FROM orders WHERE id = $1 FOR UPDATE",
        "SELECT * FROM pg_temp.t FOR UPDATE", "SELECT * FROM orders"}) {
    EXPECT_FALSE(has(sql, "UNFILTERED LOCK")) << sql;
  }
  EXPECT_TRUE(has("SELECT * FROM orders WHERE id = 1 FOR UPDATE SKIP LOCKED",
                  "SKIP LOCKED"));
  EXPECT_TRUE(has("SELECT * FROM orders WHERE id = 1 FOR NO KEY UPDATE NOWAIT",
                  "FOR NO KEY UPDATE"));
}

// The session's own temporary objects (issue 13 item 9): what a statement
// creates, changes or writes is temporary only when it says so.
TEST(SqlFactsTest, TemporaryObjects) {
  for (const char* sql :
       {"CREATE TEMP TABLE t (a int)", "CREATE TEMPORARY TABLE t AS SELECT 1",
        "SELECT 1 AS a INTO TEMP t", "CREATE TEMP VIEW v AS SELECT 1",
        "CREATE TEMP VIEW v AS SELECT * FROM pg_temp.t",
        "CREATE TEMP SEQUENCE s", "DELETE FROM pg_temp.t",
        "UPDATE pg_temp.t SET a = 1", "INSERT INTO pg_temp.t VALUES (1)",
        "DROP TABLE pg_temp.t", "TRUNCATE pg_temp.t",
        "CREATE INDEX ON pg_temp.t (a)", "ALTER TABLE pg_temp.t ADD b int"}) {
    EXPECT_TRUE(One(sql).temporary) << sql;
  }
  for (const char* sql :
       {"CREATE TABLE t (a int)", "CREATE UNLOGGED TABLE t (a int)",
        "DELETE FROM t", "DROP TABLE pg_temp.t, orders",
        "TRUNCATE pg_temp.t, orders", "DROP SCHEMA pg_temp",
        "SELECT 1 AS a INTO t", "CREATE TABLE public.pg_temp (a int)",
        // A temporary view over a permanent table writes through to it.
        "CREATE TEMP VIEW v AS SELECT * FROM orders",
        "CREATE TEMP VIEW v AS SELECT * FROM pg_temp.t JOIN orders USING (id)",
        "CREATE TEMP VIEW v AS SELECT * FROM pg_temp.t WHERE id IN "
        "(SELECT id FROM orders)"}) {
    EXPECT_FALSE(One(sql).temporary) << sql;
  }
  // A CTE's write is a statement of its own.
  const auto f = One(
      "WITH d AS (DELETE FROM orders RETURNING *) "
      "INSERT INTO pg_temp.t SELECT * FROM d");
  EXPECT_TRUE(f.temporary);
  ASSERT_EQ(f.nested.size(), 1u);
  EXPECT_FALSE(f.nested[0].temporary);
}

// Definitions that make PostgreSQL call a function later are judged as
// calling it (issue 13 item 7).
TEST(SqlFactsTest, DefinitionsNameTheFunctionsTheyCall) {
  struct Case {
    const char* sql;
    const char* function;
  };
  const Case cases[] = {
      {"CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, "
       "FUNCTION = pg_catalog.pg_terminate_backend)",
       "pg_catalog.pg_terminate_backend"},
      {"CREATE OPERATOR === (LEFTARG = int, PROCEDURE = lo_unlink)",
       "lo_unlink"},
      {"CREATE CAST (int AS text) WITH FUNCTION pg_read_file(int)",
       "pg_read_file"},
      {"CREATE AGGREGATE a(int) (SFUNC = lo_unlink, STYPE = int)",
       "lo_unlink"},
      {"CREATE AGGREGATE a(int) (SFUNC = int4pl, STYPE = int, "
       "FINALFUNC = pg_reload_conf)",
       "pg_reload_conf"},
      {"CREATE TRIGGER t AFTER INSERT ON orders EXECUTE FUNCTION "
       "pg_reload_conf()",
       "pg_reload_conf"},
      {"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION "
       "pg_reload_conf()",
       "pg_reload_conf"},
      {"CREATE CONVERSION c FOR 'UTF8' TO 'LATIN1' FROM lo_unlink",
       "lo_unlink"},
      {"CREATE TYPE box2 (INPUT = lo_import, OUTPUT = textout)", "lo_import"},
      {"ALTER OPERATOR === (int, int) SET (RESTRICT = pg_reload_conf)",
       "pg_reload_conf"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(One(c.sql).functions, ::testing::Contains(c.function))
        << c.sql;
  }
  // Types named in a definition are not calls.
  EXPECT_THAT(One("CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, "
                  "FUNCTION = int4eq)")
                  .functions,
              ElementsAre("int4eq"));
}

// PL/pgSQL statements that run a query given as a string (issue 13 item
// 7): RETURN QUERY EXECUTE and OPEN ... FOR EXECUTE are EXECUTE; their
// static forms are plain SQL, not dynamic.
TEST(SqlFactsTest, PlpgsqlStringQueriesAreExecute) {
  const std::string returns =
      "CREATE FUNCTION f() RETURNS SETOF t LANGUAGE plpgsql AS $$ BEGIN "
      "RETURN QUERY EXECUTE 'DELETE FROM t RETURNING *'; END $$";
  EXPECT_THAT(NestedOf(returns), ::testing::Contains("execute:DELETE"));
  EXPECT_FALSE(One(returns).unresolved_dynamic_sql);
  EXPECT_TRUE(One("CREATE FUNCTION f(q text) RETURNS SETOF t LANGUAGE "
                  "plpgsql AS $$ BEGIN RETURN QUERY EXECUTE q; END $$")
                  .unresolved_dynamic_sql);
  EXPECT_TRUE(One("DO $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE "
                  "'SELECT ' || 1; END $$")
                  .unresolved_dynamic_sql);
  // libpg_query's PL/pgSQL parser has no catalog to type a cursor
  // variable, so any body that declares one does not parse: it fails
  // closed as unresolved (docs/policy.md says so).
  EXPECT_TRUE(One("DO $$ DECLARE c refcursor; BEGIN OPEN c FOR SELECT a "
                  "FROM t; END $$")
                  .unresolved_dynamic_sql);
  const std::string return_static =
      "CREATE FUNCTION f() RETURNS SETOF t LANGUAGE plpgsql AS $$ BEGIN "
      "RETURN QUERY SELECT * FROM t; END $$";
  EXPECT_FALSE(One(return_static).unresolved_dynamic_sql);
}

}  // namespace
}  // namespace warden::policy::sql
