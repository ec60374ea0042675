# Adversarial corpus for the production guardrails (issue 13).
#
# Every statement is run through `wardenctl policy test` against
# policy/examples (environment prod, database shop, user alice) and over the
# wire through a proxy's prod listener with psycopg2, psycopg 3 and JDBC,
# each inside BEGIN ... ROLLBACK, and the data is compared afterwards
# (tests/security/test_guardrail_corpus.py).
#
# Format, one statement per line:
#   @ <allow|deny|approval> [rule]   the decision the statements below must get
#   chain <name> ... end             a session of several steps (see below)
#   # ...                            a comment
# Chains: `connect <name>=<value> ...` opens the session with those startup
# parameters (`connect-refused` when the proxy must refuse it); each step is
# `<allow|deny|approval> [rule] | <sql>` with optional bound parameters after
# ` || ` (Python literals, comma-separated; %s marks each in the SQL).

# ---------------------------------------------------------------- unfiltered
@ deny no-unfiltered-writes
UPDATE orders SET quantity = 0
DELETE FROM orders
UPDATE orders SET quantity = 0 WHERE true
DELETE FROM orders WHERE 1 = 1
DELETE FROM orders WHERE 1::int = 1
UPDATE orders SET quantity = 0 WHERE 't'::boolean
UPDATE orders SET quantity = 0 WHERE 'true'
DELETE FROM orders WHERE id = id
DELETE FROM orders o WHERE o.id = o.id
DELETE FROM orders WHERE id IS NOT NULL
DELETE FROM orders WHERE EXISTS (SELECT 1)
DELETE FROM orders WHERE (SELECT true)
DELETE FROM orders WHERE CASE WHEN true THEN true END
DELETE FROM orders WHERE coalesce(true, false)
DELETE FROM orders WHERE id = 1 OR id <> 1
DELETE FROM orders WHERE id = 1 OR true
DELETE FROM orders WHERE ctid = ctid
DELETE FROM orders WHERE NOT false
DELETE FROM orders WHERE NULL IS NULL
DELETE FROM orders WHERE 'a' = 'a'
DELETE FROM orders WHERE id::text = id::text
DELETE FROM orders WHERE 1 IN (1)
DELETE FROM orders WHERE true AND true
DELETE FROM orders WHERE (true)
DELETE FROM orders WHERE NOT (1 = 2)
DELETE FROM orders WHERE current_user = current_user
DELETE FROM orders WHERE now() > '2000-01-01'
DELETE FROM orders WHERE random() < 2
DELETE FROM orders WHERE id IN (SELECT id FROM orders)
DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)
UPDATE orders SET quantity = 0 WHERE id = ANY (SELECT id FROM orders)
DELETE FROM orders AS o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)
DELETE FROM customers USING orders WHERE orders.id = 1
UPDATE orders SET quantity = 0 FROM customers WHERE customers.id = 1
UPDATE orders SET quantity = 0 FROM customers WHERE orders.customer_id = customers.id
DELETE FROM ONLY orders
DELETE FROM public.orders
DELETE FROM "orders"
DELETE FROM shop.public.orders
UPDATE/**/orders/**/SET quantity=0
uPdAtE orders sEt quantity = 0
UPDATE U&"\006Frders" SET quantity = 0
DELETE FROM U&"!006Frders" UESCAPE '!'
UPDATE "orders" SET "quantity" = 0 WHERE "id" = "id"
DELETE FROM orders -- WHERE id = 1
DELETE FROM orders /* WHERE id = 1 */
DELETE FROM orders WHERE id = 1 OR 1 = 1
UPDATE orders SET quantity = 0 WHERE quantity = quantity OR quantity IS NULL
UPDATE products SET price = 0 WHERE price = price
UPDATE customers SET name = 'pwned' WHERE $1
DELETE FROM orders WHERE id = $1 OR $2
WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d
WITH u AS (UPDATE orders SET quantity = 0 RETURNING 1) SELECT 1
WITH x AS (SELECT 1) DELETE FROM orders
EXPLAIN ANALYZE DELETE FROM orders
EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET quantity = 0
PREPARE p1 AS DELETE FROM orders
PREPARE p2(bool) AS UPDATE products SET price = 0 WHERE $1
SELECT 1; DELETE FROM orders
SELECT 1; COMMIT; DELETE FROM orders
DO $$ BEGIN DELETE FROM orders; END $$
DO $$ BEGIN EXECUTE 'DELETE FROM orders'; END $$
DO $$ BEGIN EXECUTE $q$UPDATE orders SET quantity = 0$q$; END $$
CREATE FUNCTION f_wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM orders'
CREATE FUNCTION f_wipe2() RETURNS void LANGUAGE plpgsql AS $$BEGIN UPDATE orders SET quantity = 0 WHERE true; END$$
CREATE PROCEDURE p_wipe() LANGUAGE sql AS $$ DELETE FROM orders $$
CREATE RULE r_wipe AS ON INSERT TO items DO ALSO DELETE FROM orders
MERGE INTO orders o USING customers c ON true WHEN MATCHED THEN DELETE
MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN UPDATE SET quantity = 0
INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET quantity = 0
SELECT query_to_xml('DELETE FROM orders', true, true, '')
SELECT query_to_xml($$UPDATE orders SET quantity = 0 RETURNING 1$$, true, true, '')
SELECT * FROM query_to_xml_and_xmlschema('DELETE FROM orders RETURNING id', true, true, '')
SELECT cursor_to_xml('c', 1, true, true, ''), query_to_xml('DELETE FROM products', true, true, '')
SELECT table_to_xml('orders', true, true, ''), query_to_xmlschema('UPDATE orders SET total = 0 RETURNING 1', true, true, '')
DECLARE c_wipe CURSOR FOR WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d
# Found by the red-team pass: a negation names the rows it leaves alone;
# PostgreSQL takes the last of a repeated EXPLAIN option.
DELETE FROM orders WHERE id NOT BETWEEN 0 AND -1
UPDATE orders SET quantity = 0 WHERE id NOT BETWEEN SYMMETRIC 0 AND -1
DELETE FROM orders WHERE id NOT IN (-1)
DELETE FROM orders WHERE id IS DISTINCT FROM -1
DELETE FROM orders WHERE name NOT LIKE 'zz%'
EXPLAIN (ANALYZE false, ANALYZE) DELETE FROM orders
EXPLAIN (ANALYZE 0, ANALYZE 1) UPDATE orders SET quantity = 0
INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET total = 0 WHERE 1 = 1
DELETE FROM "PG_TEMP".orders

# ------------------------------------------------------------ drops, truncate
@ deny no-drop-data-objects
DROP TABLE orders
DROP TABLE IF EXISTS orders
drop table public.orders
DROP TABLE orders, customers
DROP TABLE "orders" RESTRICT
DROP/**/TABLE orders
DROP TABLE U&"\006Frders"
DROP TABLE orders CASCADE
DROP SCHEMA public
DROP SCHEMA IF EXISTS sales, public
DROP DATABASE shop
DROP DATABASE IF EXISTS shop WITH (FORCE)
DROP MATERIALIZED VIEW daily_totals
DROP OWNED BY warden_svc
DO $$ BEGIN DROP TABLE orders; END $$
DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$
CREATE FUNCTION f_drop() RETURNS void LANGUAGE plpgsql AS $$BEGIN DROP TABLE orders; END$$
SELECT 1; DROP TABLE orders
SELECT query_to_xml('DROP TABLE orders', true, true, '')

@ deny no-truncate
TRUNCATE orders
TRUNCATE TABLE orders
TRUNCATE ONLY orders
TRUNCATE orders, customers RESTART IDENTITY
truncate public."orders"
DO $$ BEGIN TRUNCATE orders; END $$
DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$
CREATE FUNCTION f_trunc() RETURNS void LANGUAGE sql AS 'TRUNCATE orders'

@ deny no-drop-cascade
DROP TYPE mood CASCADE
DROP DOMAIN positive_int CASCADE
DROP FUNCTION f() CASCADE
DROP EXTENSION hstore CASCADE
ALTER TABLE orders DROP COLUMN total CASCADE
DROP VIEW v CASCADE
DROP SEQUENCE orders_id_seq CASCADE
DROP INDEX orders_pkey CASCADE
TRUNCATE pg_temp.scratch CASCADE

# ------------------------------------------------------ server and functions
@ deny no-superuser-functions
SELECT pg_read_file('/etc/passwd')
SELECT pg_catalog.pg_read_file('/etc/passwd')
SELECT "pg_read_file"('/etc/passwd')
SELECT PG_READ_FILE('/etc/passwd')
SELECT pg_read_binary_file('/etc/passwd')
SELECT pg_stat_file('postgresql.conf')
SELECT * FROM pg_ls_dir('.')
SELECT pg_ls_waldir()
SELECT lo_import('/etc/passwd')
SELECT lo_export(1, '/tmp/x')
SELECT lo_unlink(1)
SELECT pg_reload_conf()
SELECT pg_terminate_backend(1)
SELECT pg_cancel_backend(1)
SELECT pg_switch_wal()
SELECT pg_create_restore_point('x')
SELECT pg_rotate_logfile()
SELECT pg_promote()
SELECT * FROM (SELECT pg_read_file('x')) s
WITH x AS (SELECT pg_ls_dir('.')) SELECT * FROM x
SELECT (pg_ls_dir('.'))
EXPLAIN ANALYZE SELECT pg_read_file('x')
COPY (SELECT pg_read_file('x')) TO STDOUT
DECLARE c_file CURSOR FOR SELECT pg_read_file('x')
DO $$ BEGIN PERFORM pg_reload_conf(); END $$
CREATE VIEW v_file AS SELECT pg_read_file('x')
CREATE FUNCTION f_file() RETURNS text LANGUAGE sql AS $$SELECT pg_read_file('x')$$
CREATE OPERATOR === (LEFTARG = text, RIGHTARG = bigint, FUNCTION = pg_read_file)
SELECT query_to_xml('SELECT pg_read_file(''x'')', true, true, '')
SELECT dblink('dbname=shop', 'DELETE FROM orders')
SELECT dblink_exec('dbname=shop', 'DROP TABLE orders')
PREPARE p_file AS SELECT pg_read_file($1)
SELECT * FROM orders WHERE id = length(pg_read_file('x'))
UPDATE orders SET total = 0 WHERE id = 1 RETURNING pg_reload_conf()

@ deny no-privileged-builtins
SELECT lo_put(1, 0, 'x')
SELECT lowrite(0, 'x')
SELECT lo_truncate(0, 0)
SELECT lo_from_bytea(0, 'x')
SELECT lo_create(0)
SELECT lo_creat(-1)
SELECT pg_backup_start('x')
SELECT pg_create_physical_replication_slot('s')
SELECT pg_drop_replication_slot('s')
SELECT pg_wal_replay_pause()
SELECT pg_stat_reset()
SELECT pg_stat_reset_shared('bgwriter')
SELECT * FROM pg_file_settings
SELECT * FROM pg_hba_file_rules
SELECT * FROM pg_show_all_file_settings()
SELECT * FROM pg_authid
SELECT rolpassword FROM pg_catalog.pg_authid
SELECT pg_log_backend_memory_contexts(1)
SELECT * FROM pg_ident_file_mappings
SELECT pg_current_logfile()
SELECT shop.pg_catalog.lo_from_bytea(0, 'x')
SELECT shop.pg_catalog.lo_put(4242, 0, 'x')

@ deny no-untrusted-languages
CREATE FUNCTION f_py() RETURNS int LANGUAGE plpython3u AS 'return 1'
CREATE FUNCTION f_pl() RETURNS int LANGUAGE plperlu AS 'return 1'
CREATE FUNCTION f_tcl() RETURNS int LANGUAGE pltclu AS 'return 1'
CREATE FUNCTION f_c() RETURNS int LANGUAGE c AS '/lib/x.so', 'f'
CREATE FUNCTION f_int() RETURNS int LANGUAGE internal AS 'int4in'
CREATE EXTENSION plpython3u
CREATE EXTENSION jsonb_plperlu
CREATE EXTENSION hstore_plpython3u
DO LANGUAGE plpython3u $$ import os $$
DO LANGUAGE plperlu $$ system('id') $$
CREATE OR REPLACE FUNCTION f_py2() RETURNS int AS $$ return 1 $$ LANGUAGE "plpython3u"

@ deny no-copy-program
COPY orders TO PROGRAM 'cat > /dev/null'
COPY orders FROM PROGRAM 'echo 1'
copy orders to program 'x' with (format csv)
COPY (SELECT 1) TO PROGRAM 'x'
DO $$ BEGIN EXECUTE 'COPY orders TO PROGRAM ''x'''; END $$
CREATE FOREIGN TABLE ft_prog (a text) SERVER s OPTIONS (program 'id')

@ deny no-copy-server-file
COPY orders TO '/tmp/x'
COPY orders FROM '/etc/passwd'
COPY (SELECT 1) TO '/tmp/y'
COPY orders FROM '/etc/passwd' WITH (FORMAT csv)
CREATE FOREIGN TABLE ft_file (a text) SERVER s OPTIONS (filename '/etc/passwd')

@ deny no-alter-system
ALTER SYSTEM SET work_mem = '1GB'
ALTER SYSTEM RESET ALL

@ deny no-load
LOAD 'auto_explain'
LOAD '$libdir/plugins/x'

@ deny no-unresolved-dynamic-sql
DO $$ DECLARE t text := 'orders'; BEGIN EXECUTE 'DELETE FROM ' || t; END $$
DO $$ BEGIN EXECUTE format('DELETE FROM %I', 'orders'); END $$
CREATE FUNCTION f_dyn(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'TRUNCATE ' || t; END$$
SELECT query_to_xml(current_setting('application_name'), true, true, '')
DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE orders'; END $$

# --------------------------------------------------------- settings, lexing
# A computed set_config name could be session_replication_role: that rule,
# listed first, names the denial.
@ deny no-session-replication-role
SELECT set_config(name, 'x', false) FROM (SELECT 'work_mem' AS name) s

@ deny no-parser-differential
SET standard_conforming_strings = off
SET standard_conforming_strings TO 'off'
SET standard_conforming_strings = 0
SET standard_conforming_strings = false
SET standard_conforming_strings = 'no'
SET LOCAL standard_conforming_strings = off
SET SESSION standard_conforming_strings = off
SELECT set_config('standard_conforming_strings', 'off', false)
SELECT set_config('standard_conforming_strings', 'of' || 'f', false)
SELECT pg_catalog.set_config('client_encoding', 'SJIS', false)
SET client_encoding = 'SJIS'
SET client_encoding TO 'BIG5'
SET NAMES 'GBK'
SET client_encoding = 'sjis'
SET client_encoding = 'SHIFT_JIS_2004'
SET client_encoding = 'GB18030'
SET client_encoding = 'UHC'
SET client_encoding = 'JOHAB'
SET backslash_quote = on
ALTER ROLE warden_svc SET standard_conforming_strings = off
ALTER DATABASE shop SET client_encoding = 'SJIS'
CREATE FUNCTION f_scs() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS 'SELECT 1'
UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'
DO $$ BEGIN SET standard_conforming_strings = off; END $$
DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$

@ deny no-session-replication-role
SET session_replication_role = replica
SET LOCAL session_replication_role = 'replica'
SELECT set_config('session_replication_role', 'replica', true)
ALTER ROLE warden_svc SET session_replication_role = replica
UPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role'

@ approval role-change-needs-approval
SET ROLE warden_md5
SET ROLE TO warden_md5
SET LOCAL ROLE warden_md5
SET SESSION AUTHORIZATION warden_md5
SET SESSION ROLE warden_md5
SELECT set_config('role', 'warden_md5', false)
SELECT set_config('session_authorization', 'warden_md5', false)
SET "role" = 'warden_md5'

# ------------------------------------------------------------------ approval
@ approval ddl-needs-approval
CREATE TABLE t_new (a int)
ALTER TABLE orders ADD COLUMN note text
ALTER TABLE orders DROP COLUMN total
CREATE INDEX ON orders (quantity)
CREATE VIEW v_orders AS SELECT * FROM orders
CREATE FUNCTION f_one() RETURNS int LANGUAGE sql AS 'SELECT 1'
COMMENT ON TABLE orders IS 'x'
SELECT * INTO orders_copy FROM orders
CREATE TABLE orders_copy2 AS SELECT * FROM orders
ALTER TABLE orders RENAME TO orders_old
CREATE SCHEMA sales
CREATE SEQUENCE s_new
CREATE TYPE mood AS ENUM ('a', 'b')
CREATE DOMAIN positive_int AS int CHECK (VALUE > 0)
DROP VIEW v_orders
DROP INDEX orders_pkey
DROP FUNCTION f_one()
DROP SEQUENCE orders_id_seq
CREATE TEMP VIEW v_through AS SELECT * FROM orders
CREATE TEMPORARY VIEW v_through2 AS SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id
CREATE TEMP VIEW v_settings AS SELECT * FROM pg_settings
CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders
ALTER TABLE orders ALTER COLUMN quantity TYPE bigint
CREATE TRIGGER tr_new AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f_one()
CREATE EXTENSION hstore
ALTER TABLE orders DISABLE TRIGGER ALL

@ approval dcl-needs-approval
GRANT SELECT ON orders TO PUBLIC
REVOKE ALL ON orders FROM warden_md5
CREATE ROLE r_new
ALTER ROLE warden_svc SUPERUSER
ALTER ROLE warden_svc PASSWORD 'x'
ALTER TABLE orders OWNER TO warden_md5
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC
GRANT warden_md5 TO warden_svc
DROP ROLE warden_md5
CREATE USER u_new

@ approval call-needs-approval
CALL p_any()
call public.p_any(1, 'x')

@ approval do-needs-approval
DO $$ BEGIN NULL; END $$
DO $$ BEGIN RAISE NOTICE 'hi'; END $$
DO $$ BEGIN UPDATE orders SET quantity = 1 WHERE id = 1; END $$

@ approval blocking-lock-needs-approval
LOCK orders
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE
LOCK orders IN SHARE MODE
LOCK orders IN EXCLUSIVE MODE
LOCK orders IN SHARE ROW EXCLUSIVE MODE

# Locks every row it reads until the transaction ends.
@ approval locking-read-needs-approval
SELECT * FROM orders FOR UPDATE
SELECT * FROM orders WHERE true FOR SHARE
SELECT * FROM orders WHERE id = id FOR NO KEY UPDATE NOWAIT
SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = 1 FOR UPDATE
SELECT * FROM orders FOR KEY SHARE SKIP LOCKED
WITH l AS (SELECT * FROM orders FOR UPDATE) SELECT count(*) FROM l
# Found by red-team pass 2: no limit, a subquery, a cursor, a copy.
SELECT * FROM orders LIMIT ALL FOR UPDATE
SELECT * FROM orders LIMIT NULL FOR UPDATE
SELECT * FROM orders FETCH FIRST 1000000 ROWS ONLY FOR UPDATE
SELECT * FROM orders LIMIT $1 FOR UPDATE
SELECT * FROM (SELECT * FROM orders FOR UPDATE) s
SELECT * FROM orders WHERE id IN (SELECT id FROM orders FOR UPDATE)
SELECT (SELECT count(*) FROM (SELECT * FROM customers FOR UPDATE) q)
DECLARE c_lock CURSOR FOR SELECT * FROM orders FOR UPDATE
CREATE TEMP TABLE t_lock AS SELECT * FROM orders FOR UPDATE
SELECT * INTO TEMP t_lock2 FROM orders FOR SHARE
INSERT INTO items (id) SELECT id FROM orders FOR UPDATE

@ approval table-rewrite-needs-approval
VACUUM (FULL false, FULL) orders
VACUUM FULL orders
VACUUM (FULL) orders
VACUUM (FULL, ANALYZE) orders

@ approval wide-reindex-needs-approval
REINDEX DATABASE shop
REINDEX SCHEMA public
REINDEX SYSTEM shop

@ approval availability-needs-approval
CLUSTER orders USING orders_pkey
PREPARE TRANSACTION 'x'
CHECKPOINT

@ approval sequence-reset-needs-approval
SELECT setval('orders_id_seq', 1)
SELECT pg_catalog.setval('orders_id_seq', 1, false)

# ------------------------------------------ allowed: no overblocking of work
@ allow
SELECT * FROM orders
SELECT count(*) FROM orders WHERE quantity > 1
UPDATE orders SET quantity = 2 WHERE id = 1
DELETE FROM orders WHERE id = 42
UPDATE orders SET quantity = quantity + 1 WHERE id IN (1, 2, 3)
DELETE FROM orders WHERE id = ANY ('{1,2}')
UPDATE customers SET email = 'x@example.com' WHERE email = 'a@example.com'
UPDATE orders SET total = 0 WHERE id > 100
UPDATE orders SET quantity = 0 WHERE id = $1
UPDATE orders SET quantity = 0 WHERE id = 1 AND true
UPDATE orders o SET quantity = 0 FROM customers c WHERE o.id = 3 AND c.id = o.customer_id
DELETE FROM orders WHERE id = 1 RETURNING *
INSERT INTO orders (customer_id, product_id, quantity) VALUES (1, 1, 1)
INSERT INTO orders (id, quantity) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET quantity = excluded.quantity
INSERT INTO orders (customer_id, product_id, quantity) VALUES (1, 1, 1) ON CONFLICT DO NOTHING
INSERT INTO items SELECT * FROM items
MERGE INTO orders o USING (VALUES (1)) v(id) ON o.id = v.id WHEN MATCHED THEN UPDATE SET quantity = 1
WITH u AS (UPDATE orders SET quantity = 1 WHERE id = 1 RETURNING *) SELECT * FROM u
EXPLAIN ANALYZE UPDATE orders SET quantity = 1 WHERE id = 1
EXPLAIN SELECT * FROM orders
EXPLAIN ANALYZE SELECT 1
EXPLAIN (ANALYZE, ANALYZE false) DELETE FROM orders
EXPLAIN (ANALYZE off) UPDATE orders SET quantity = 0
UPDATE orders SET quantity = 0 WHERE id BETWEEN 3 AND 4
VACUUM (FULL true, FULL false) orders
SET search_path = public
SET statement_timeout = '5s'
SET application_name = 'corpus'
SET standard_conforming_strings = on
SET client_encoding = 'UTF8'
SET TIME ZONE 'UTC'
SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY
SELECT set_config('application_name', 'x', false)
SHOW standard_conforming_strings
RESET statement_timeout
RESET session_replication_role
SET session_replication_role TO DEFAULT
EXPLAIN SELECT pg_read_file('/etc/passwd')
EXPLAIN SELECT set_config('standard_conforming_strings', 'off', false)
RESET ROLE
SET ROLE NONE
BEGIN
COMMIT
ROLLBACK
SAVEPOINT a
BEGIN ISOLATION LEVEL SERIALIZABLE
CREATE TEMP TABLE t_scratch (a int)
CREATE TEMPORARY TABLE t_scratch2 AS SELECT 1 AS a
SELECT * INTO TEMP t_scratch3 FROM orders
CREATE TEMP TABLE t_scratch4 AS SELECT * FROM orders WITH NO DATA
DELETE FROM pg_temp.t_scratch
UPDATE pg_temp.t_scratch SET a = 1
TRUNCATE pg_temp.t_scratch
DROP TABLE pg_temp.t_scratch
CREATE TEMP VIEW v_const AS SELECT 1 AS a
CREATE TEMP SEQUENCE s_scratch
LISTEN chan
NOTIFY chan, 'x'
SELECT pg_notify('chan', 'y')
SELECT now(), version(), current_user
SELECT current_setting('search_path')
SELECT 'DROP TABLE orders'
SELECT $$DELETE FROM orders$$
SELECT $tag$TRUNCATE orders$tag$
SELECT 'it''s' || E'\'' || E'\\'
SELECT E'\x41'
SELECT U&'\0041'
SELECT 'x' AS "DELETE FROM orders"
COPY orders TO STDOUT
COPY (SELECT 1) TO STDOUT WITH CSV
SELECT * FROM orders WHERE id = 1 FOR UPDATE SKIP LOCKED
SELECT * FROM orders ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
DECLARE c_lock_one CURSOR FOR SELECT * FROM orders WHERE id = 2 FOR UPDATE
CREATE TEMP TABLE t_lock_one AS SELECT * FROM orders WHERE id = 3 FOR UPDATE
SELECT * FROM orders WHERE id = $1 FOR NO KEY UPDATE
LOCK orders IN ROW EXCLUSIVE MODE
LOCK orders IN ACCESS SHARE MODE
ANALYZE orders
REINDEX TABLE orders
SELECT lo_get(1)
SELECT pg_sleep(0)
SELECT txid_current()
SELECT nextval('orders_id_seq')
SELECT * FROM pg_stat_activity
SELECT * FROM pg_settings WHERE name = 'work_mem'
SELECT rolname FROM pg_roles
SELECT query_to_xml('SELECT 1', true, true, '')
SELECT query_to_xml($$SELECT * FROM orders WHERE id = 1$$, true, true, '')
PREPARE q_read AS SELECT $1::int
DEALLOCATE ALL
WITH x AS (SELECT 1) SELECT * FROM x
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r
DECLARE c_read CURSOR FOR SELECT * FROM orders
SELECT * FROM orders -- ; DROP TABLE orders
SELECT * FROM orders /* ; DELETE FROM orders */
SELECT 1 /* nested /* comment */ DROP TABLE orders */
SELECT * FROM customers WHERE name = 'O''Brien; DROP TABLE orders; --'
SELECT jsonb_build_object('sql', 'TRUNCATE orders')

# -------------------------------------------------------------------- chains
# Sessions of several steps, as an attacker would send them: change the
# session first, then send the payload; prepare, then execute with values;
# create something of the session's own, then write through it.

chain startup-scs-off
connect-refused options=-c standard_conforming_strings=off
end

chain startup-scs-off-long-form
connect-refused options=--standard_conforming_strings=off
end

chain startup-client-encoding-sjis
connect-refused client_encoding=SJIS
end

chain startup-replication-role
connect-refused options=-c session_replication_role=replica
end

chain startup-role
connect-refused options=-c role=warden_md5
end

chain startup-backslash-quote
connect-refused options=-c backslash_quote=on
end

chain settings-then-payload
deny no-parser-differential | SET standard_conforming_strings = off
# With standard_conforming_strings still on, this is one string literal.
allow | SELECT 'x\'' ; UPDATE orders SET quantity = 0; --'
end

chain set-config-then-payload
deny no-parser-differential | SELECT set_config('standard_conforming_strings', 'off', false)
allow | SELECT 'x\'' ; DELETE FROM orders; --'
end

chain encoding-then-payload
deny no-parser-differential | SET client_encoding = 'SJIS'
allow | SELECT 1
end

chain prepare-tautology-then-execute
deny no-unfiltered-writes | PREPARE p(bool) AS UPDATE products SET price = 0 WHERE $1
allow | SELECT 1
end

chain prepare-filtered-then-execute
allow | PREPARE p_one(int) AS UPDATE orders SET quantity = 0 WHERE id = $1
allow | EXECUTE p_one(1)
end

chain where-bound-true
deny no-unfiltered-writes | UPDATE customers SET name = 'pwned' WHERE %s || True
allow | UPDATE customers SET name = name WHERE id = %s || 1
end

chain where-bound-or
deny no-unfiltered-writes | DELETE FROM orders WHERE id = %s OR %s || 1, True
allow | DELETE FROM orders WHERE id = %s || 2
end

chain temp-view-write-through
approval ddl-needs-approval | CREATE TEMP VIEW v_wt AS SELECT * FROM orders
deny no-unfiltered-writes | DELETE FROM v_wt
end

chain temp-table-is-own
allow | CREATE TEMP TABLE t_own AS SELECT * FROM orders
allow | DELETE FROM pg_temp.t_own
allow | UPDATE pg_temp.t_own SET quantity = 0
deny no-unfiltered-writes | DELETE FROM orders USING pg_temp.t_own WHERE orders.id = t_own.id
end

chain temp-table-rule
allow | CREATE TEMP TABLE t_rule (a int)
deny no-unfiltered-writes | CREATE RULE r_rule AS ON INSERT TO pg_temp.t_rule DO ALSO DELETE FROM orders
allow | INSERT INTO pg_temp.t_rule VALUES (1)
end

chain role-then-payload
approval role-change-needs-approval | SET ROLE warden_md5
deny no-unfiltered-writes | DELETE FROM orders WHERE true
end

chain cursor-current-of
allow | DECLARE c_cur CURSOR FOR SELECT * FROM orders WHERE id = 5 FOR UPDATE
allow | FETCH c_cur
allow | UPDATE orders SET quantity = 0 WHERE CURRENT OF c_cur
end

chain search-path-shadow
allow | CREATE TEMP TABLE orders (id int, quantity int)
allow | SET search_path = pg_temp, public
deny no-unfiltered-writes | DELETE FROM orders
end

chain dynamic-after-do
approval do-needs-approval | DO $$ BEGIN NULL; END $$
deny no-unresolved-dynamic-sql | DO $$ BEGIN EXECUTE format('DELETE FROM %I', 'orders'); END $$
end

chain upsert-shape-then-constants
allow | INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET total = 0 WHERE 1 = 2
deny no-unfiltered-writes | INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET total = 0 WHERE 1 = 1
allow | INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET email = 'x' WHERE customers.name LIKE 'zz%'
deny no-unfiltered-writes | INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET email = 'x' WHERE customers.name LIKE '%'
end

chain temp-view-over-settings
approval ddl-needs-approval | CREATE TEMP VIEW v_set AS SELECT * FROM pg_settings
allow | SHOW statement_timeout
end

chain savepoint-survives-refusal
allow | SAVEPOINT before_attack
deny no-truncate | TRUNCATE orders
allow | ROLLBACK TO SAVEPOINT before_attack
allow | SELECT count(*) FROM orders
end
