#!/usr/bin/env bash
# psql client suite. Connection settings from the standard PG* env vars
# (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE), which psql
# reads itself.
#
# Notes:
#  * psql 15 speaks only the simple-query protocol (\bind arrives in psql 16),
#    so case bind_params uses psql variables (\set / -v and :'var'), which psql
#    interpolates client-side as quoted literals.
#  * prepared_reuse uses SQL PREPARE / EXECUTE.
#  * Each case runs in its own psql session (own connection).
#  * cancel: psql sends a CancelRequest when it receives SIGINT.
set -u

SUITE=psql
PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/warden-psql-suite.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose)
export PGAPPNAME=warden-suite-psql
export PGCONNECT_TIMEOUT=10
export PGOPTIONS="${PGOPTIONS:-} -c statement_timeout=60s"

pass() { PASSED=$((PASSED + 1)); echo "PASS $SUITE $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $SUITE $1: $(printf '%s' "$2" | tr '\n' ' ' | cut -c1-500)"; }

# run_psql CASE [psql args...] < script ; stdout -> $TMP/CASE.out, stderr -> $TMP/CASE.err
run_psql() {
    local c=$1; shift
    timeout 60 "${PSQL[@]}" "$@" >"$TMP/$c.out" 2>"$TMP/$c.err"
}

# expect CASE WANT : compares $TMP/CASE.out with WANT
expect() {
    local c=$1 want=$2 got
    got=$(cat "$TMP/$c.out")
    if [[ "$got" == "$want" ]]; then
        pass "$c"
    else
        fail "$c" "got [$got] want [$want] stderr [$(head -c 300 "$TMP/$c.err")]"
    fi
}

# a. parameters via psql variables (client-side interpolation, simple protocol)
TRICKY=$'O\'Reilly "quoted" back\\slash; -- ünïcødé ✓ 🐘 $1 %s :foo'
case_bind() {
    if ! run_psql bind_params -v "s=$TRICKY" <<'SQL'; then
\set a 2
\set b 3
SELECT :'a'::int + :'b'::int;
SELECT :'s';
SELECT length(:'s');
SQL
        fail bind_params "psql rc!=0: $(cat "$TMP/bind_params.err")"; return
    fi
    expect bind_params "5
$TRICKY
$(printf '%s' "$TRICKY" | /usr/bin/python3 -c 'import sys; print(len(sys.stdin.read()))')"
}

# b. PREPARE / EXECUTE three times
case_prepared() {
    if ! run_psql prepared_reuse <<'SQL'; then
PREPARE w_ps (int, text) AS SELECT $1 * 2, $2 || '!';
EXECUTE w_ps (1, 'x1');
EXECUTE w_ps (2, 'x2');
EXECUTE w_ps (3, 'x3');
SELECT count(*) FROM pg_prepared_statements WHERE name = 'w_ps';
DEALLOCATE w_ps;
SELECT count(*) FROM pg_prepared_statements WHERE name = 'w_ps';
SQL
        fail prepared_reuse "psql rc!=0: $(cat "$TMP/prepared_reuse.err")"; return
    fi
    expect prepared_reuse "2|x1!
4|x2!
6|x3!
1
0"
}

# c. transaction rolled back
case_rollback() {
    if ! run_psql tx_rollback <<'SQL'; then
CREATE TEMP TABLE t_psql (id int, name text, data bytea, amount numeric, ts timestamptz);
BEGIN;
INSERT INTO t_psql (id, name) VALUES (1, 'gone');
SELECT count(*) FROM t_psql;
ROLLBACK;
SELECT count(*) FROM t_psql;
SQL
        fail tx_rollback "psql rc!=0: $(cat "$TMP/tx_rollback.err")"; return
    fi
    expect tx_rollback "1
0"
}

# d. NULL / bytea / timestamptz / numeric
case_types() {
    if ! run_psql types_roundtrip <<'SQL'; then
\pset null '<NULL>'
SET TimeZone = 'UTC';
CREATE TEMP TABLE t_psql (id int, name text, data bytea, amount numeric, ts timestamptz);
INSERT INTO t_psql VALUES (7, NULL, '\x00ff017f80275c616263'::bytea, 12345678901234567890.123456789,
                           '2024-03-05 12:34:56.789012+05:30');
SELECT name, name IS NULL, data, amount, ts,
       ts = '2024-03-05 07:04:56.789012Z'::timestamptz, length(data)
FROM t_psql;
SET TimeZone = 'Asia/Kolkata';
SELECT ts FROM t_psql;
SQL
        fail types_roundtrip "psql rc!=0: $(cat "$TMP/types_roundtrip.err")"; return
    fi
    expect types_roundtrip '<NULL>|t|\x00ff017f80275c616263|12345678901234567890.123456789|2024-03-05 07:04:56.789012+00|t|10
2024-03-05 12:34:56.789012+05:30'
}

# e. COPY FROM STDIN (inline data) / COPY TO STDOUT
case_copy() {
    local i
    for ((i = 1; i <= 1000; i++)); do
        printf '%d\tname-ü-%d\t%d.%02d\n' "$i" "$i" $((i * 7)) $((i % 100))
    done >"$TMP/copy.data"
    {
        echo "CREATE TEMP TABLE t_psql (id int, name text, data bytea, amount numeric, ts timestamptz);"
        echo "COPY t_psql (id, name, amount) FROM STDIN;"
        cat "$TMP/copy.data"
        echo '\.'
        echo "\\echo rows=:ROW_COUNT"
        echo "COPY (SELECT id, name, amount FROM t_psql ORDER BY id) TO STDOUT;"
    } >"$TMP/copy.sql"
    if ! run_psql copy_in_out -f "$TMP/copy.sql"; then
        fail copy_in_out "psql rc!=0: $(cat "$TMP/copy_in_out.err")"; return
    fi
    { echo "rows=1000"; cat "$TMP/copy.data"; } >"$TMP/copy.want"
    if cmp -s "$TMP/copy.want" "$TMP/copy_in_out.out"; then
        pass copy_in_out
    else
        fail copy_in_out "output differs: $(diff "$TMP/copy.want" "$TMP/copy_in_out.out" | head -5)"
    fi
}

# f. error then more work in the same session
case_error() {
    # no ON_ERROR_STOP here: the session must continue after the error
    timeout 60 psql -X -q -A -t -v VERBOSITY=verbose \
        >"$TMP/error_recovery.out" 2>"$TMP/error_recovery.err" <<'SQL'
SELECT 1/0;
\echo sqlstate=:SQLSTATE
BEGIN;
SELECT 1/0;
SELECT 1;
\echo sqlstate=:SQLSTATE
ROLLBACK;
SELECT 40 + 2;
SQL
    if ! grep -q "22012: division by zero" "$TMP/error_recovery.err"; then
        fail error_recovery "no '22012: division by zero' on stderr: $(cat "$TMP/error_recovery.err")"
        return
    fi
    expect error_recovery "sqlstate=22012
sqlstate=25P02
42"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# g. cancel: SIGINT makes psql send a CancelRequest
case_cancel() {
    local t0 el pid rc i
    t0=$(now_ms)
    # psql installs its own SIGINT handler, so this works in a background job.
    psql -X -q -A -t -c "SELECT pg_sleep(10)" >"$TMP/cancel.out" 2>"$TMP/cancel.err" &
    pid=$!
    sleep 1
    kill -INT "$pid" 2>/dev/null
    # wait at most 20 s, then kill it (only this psql, by pid)
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid"; rc=$?
    el=$(( $(now_ms) - t0 ))
    if ! grep -q "canceling statement due to user request" "$TMP/cancel.err"; then
        fail cancel "rc=$rc after ${el}ms, stderr: $(cat "$TMP/cancel.err")"; return
    fi
    if (( el >= 5000 )); then
        fail cancel "cancel took ${el}ms"; return
    fi
    pass cancel
}

# h. 100k-row result, count and checksum
case_large() {
    if ! run_psql large_result -c "SELECT g, md5(g::text) FROM generate_series(1,100000) g ORDER BY g"; then
        fail large_result "psql rc!=0: $(cat "$TMP/large_result.err")"; return
    fi
    local n sum first last
    n=$(wc -l <"$TMP/large_result.out")
    # md5 of the lines "g|md5(g)\n" for g = 1..100000, computed independently of the server
    sum=$(md5sum <"$TMP/large_result.out" | cut -d' ' -f1)
    first=$(head -1 "$TMP/large_result.out")
    last=$(tail -1 "$TMP/large_result.out")
    if [[ "$n" != 100000 ]]; then fail large_result "row count $n"; return; fi
    if [[ "$first" != "1|c4ca4238a0b923820dcc509a6f75849b" || "$last" != "100000|$(printf 100000 | md5sum | cut -d' ' -f1)" ]]; then
        fail large_result "first/last row: [$first] [$last]"; return
    fi
    if [[ "$sum" != 254f31ceade0ecd8bc151c23af526bd4 ]]; then fail large_result "checksum $sum"; return; fi
    pass large_result
}

# i. Warden refusals (only with WARDEN_POLICY_CASES=1: the proxy with the
# client-suite policy in front). One session, no ON_ERROR_STOP: the refused
# DELETE aborts the transaction (next statement 25P02), ROLLBACK, the row is
# gone and the session works; DROP TABLE in autocommit is refused too.
case_policy() {
    local id=$(( (RANDOM << 15 | RANDOM) + 1000000 )) got line want i
    timeout 60 psql -X -q -A -t -v VERBOSITY=verbose -v "id=$id" \
        >"$TMP/policy_refusal.out" 2>"$TMP/policy_refusal.err" <<'SQL'
BEGIN;
INSERT INTO items (id, name) VALUES (:id, 'warden-policy-psql');
SELECT count(*) FROM items WHERE id = :id;
DELETE FROM items;
\echo delete=:SQLSTATE :LAST_ERROR_MESSAGE
SELECT count(*) FROM items WHERE id = :id;
\echo next=:SQLSTATE
ROLLBACK;
SELECT count(*) FROM items WHERE id = :id;
DROP TABLE items;
\echo drop=:SQLSTATE :LAST_ERROR_MESSAGE
SELECT to_regclass('public.items') IS NOT NULL;
SQL
    got=$(cat "$TMP/policy_refusal.out")
    # line patterns, in order
    want=('1'
          'delete=42501 Warden*"no-unfiltered-writes"*'
          'next=25P02'
          '0'
          'drop=42501 Warden*"no-drop-table"*'
          't')
    i=0
    while IFS= read -r line; do
        # shellcheck disable=SC2053
        if (( i >= ${#want[@]} )) || [[ "$line" != ${want[i]} ]]; then
            fail policy_refusal "line $((i + 1)) [$line] want [${want[i]:-<end>}]; out [$got] stderr [$(head -c 300 "$TMP/policy_refusal.err")]"
            return
        fi
        i=$((i + 1))
    done <<<"$got"
    if (( i != ${#want[@]} )); then
        fail policy_refusal "$i lines, want ${#want[@]}: [$got] stderr [$(head -c 300 "$TMP/policy_refusal.err")]"
        return
    fi
    pass policy_refusal
}

case_bind
case_prepared
case_rollback
case_types
case_copy
case_error
case_cancel
case_large
# policy_refusal needs the Warden proxy with the client-suite policy.
if [[ "${WARDEN_POLICY_CASES:-}" == 1 ]]; then
    case_policy
fi

[[ $FAILED -eq 0 ]]
