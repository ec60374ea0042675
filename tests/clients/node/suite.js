'use strict'
// node-pg client suite. Connection settings from PG* env vars.
// Run: (cd tests/clients/node && npm install --no-audit --no-fund && node suite.js)
//
// node-pg sends every parameterised query over the extended protocol
// (unnamed statement); a query config with `name` is parsed once per
// connection as a named server-side statement and then only bound/executed.
// node-pg has no cancel API, so case "cancel" sends a real CancelRequest
// (16 bytes: len 16, code 80877102, pid, secret) on a fresh TCP connection
// using client.processID / client.secretKey from BackendKeyData.
//
// PGSSLMODE: node-pg cannot fall back from TLS to plaintext ("prefer"), so
// unset/disable/allow/prefer -> no TLS; require/no-verify -> TLS without
// certificate verification; verify-ca/verify-full -> verified TLS.

const net = require('net')
const crypto = require('crypto')
const { Readable, Writable } = require('stream')
const { pipeline } = require('stream/promises')
const { Client } = require('pg')
const copyStreams = require('pg-copy-streams')

const SUITE = 'node-pg'
const TABLE = 't_nodepg'
const TRICKY_TEXT = 'O\'Reilly "quoted" back\\slash; -- ünïcødé ✓ 🐘 $1 %s'
const BYTEA = Buffer.from([0x00, 0xff, 0x01, 0x7f, 0x80, 0x27, 0x22, 0x5c, 0x61, 0x62, 0x63, 0x00])
const NUMERIC_TEXT = '12345678901234567890.123456789'
const TS_TEXT = '2024-03-05 12:34:56.789012+05:30'
const TS_UTC_TEXT = '2024-03-05 07:04:56.789012+00'
const LARGE_N = 100000
const RAW_TYPES = { getTypeParser: () => (v) => v } // keep every column as server text

let passed = 0
let failed = 0

class CaseFailed extends Error {}
function check (cond, msg) { if (!cond) throw new CaseFailed(msg) }
function eq (got, want, what) {
  if (got !== want) throw new CaseFailed(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
}
function withTimeout (p, ms, what) {
  let t
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((resolve, reject) => { t = setTimeout(() => reject(new CaseFailed(`${what}: timed out after ${ms}ms`)), ms) })
  ])
}

function sslConfig () {
  switch (process.env.PGSSLMODE || '') {
    case 'require':
    case 'no-verify':
      return { rejectUnauthorized: false }
    case 'verify-ca':
    case 'verify-full':
      return true
    default:
      return false
  }
}

function config () {
  return {
    host: process.env.PGHOST || '127.0.0.1',
    port: parseInt(process.env.PGPORT || '5432', 10),
    user: process.env.PGUSER || 'postgres',
    password: process.env.PGPASSWORD || undefined,
    database: process.env.PGDATABASE || process.env.PGUSER || 'postgres',
    ssl: sslConfig(),
    application_name: 'warden-suite-node-pg',
    connectionTimeoutMillis: 10000,
    statement_timeout: 60000
  }
}

async function count (c) {
  const r = await c.query(`SELECT count(*)::int AS n FROM ${TABLE}`)
  return r.rows[0].n
}

// a. bind parameters
async function caseBind (c) {
  let r = await c.query('SELECT $1::int + $2::int AS s', [2, 3])
  eq(r.rows[0].s, 5, '2+3')
  r = await c.query('SELECT $1::text AS t, length($1::text) AS n', [TRICKY_TEXT])
  eq(r.rows[0].t, TRICKY_TEXT, 'text round trip')
  eq(r.rows[0].n, [...TRICKY_TEXT].length, 'server-side char length')
}

// b. named (server-side) prepared statement reused three times
async function casePrepared (c) {
  const text = "SELECT $1::int * 2 AS d, $2::text || '!' AS t /* warden prepared */"
  for (let i = 1; i <= 3; i++) {
    const r = await c.query({ name: 'w_node_prep', text, values: [i, `x${i}`] })
    eq(r.rows[0].d, i * 2, `execute #${i} col1`)
    eq(r.rows[0].t, `x${i}!`, `execute #${i} col2`)
  }
  const r = await c.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE NOT from_sql AND statement LIKE '%warden prepared%'")
  eq(r.rows[0].n, 1, 'one server-side prepared statement')
}

// c. transaction rolled back
async function caseRollback (c) {
  await c.query(`DELETE FROM ${TABLE} WHERE id >= 0`)
  await c.query('BEGIN')
  try {
    await c.query(`INSERT INTO ${TABLE} (id, name) VALUES ($1, $2)`, [1, 'gone'])
    eq(await count(c), 1, 'count inside tx')
  } finally {
    await c.query('ROLLBACK')
  }
  eq(await count(c), 0, 'count after rollback')
}

// d. NULL / bytea / timestamptz / numeric round trip
async function caseTypes (c) {
  await c.query(`DELETE FROM ${TABLE} WHERE id >= 0`)
  await c.query("SET TimeZone = 'UTC'")
  try {
    const jsDate = new Date('2024-03-05T12:34:56.789+05:30') // JS Date: millisecond precision
    await c.query(`INSERT INTO ${TABLE} (id, name, data, amount, ts) VALUES ($1, $2, $3, $4, $5)`,
      [7, null, BYTEA, NUMERIC_TEXT, TS_TEXT])
    await c.query(`INSERT INTO ${TABLE} (id, name, data, amount, ts) VALUES ($1, $2, $3, $4, $5)`,
      [8, null, BYTEA, NUMERIC_TEXT, jsDate])
    let r = await c.query(`SELECT name, data, amount, ts, encode(data, 'hex') AS hex, ts = $1::timestamptz AS same
                           FROM ${TABLE} WHERE id = 7`, [TS_TEXT])
    let row = r.rows[0]
    eq(row.name, null, 'NULL')
    check(Buffer.isBuffer(row.data) && row.data.equals(BYTEA), `bytea: got ${row.data && row.data.toString('hex')}`)
    eq(row.hex, BYTEA.toString('hex'), 'bytea hex on server')
    eq(row.amount, NUMERIC_TEXT, 'numeric (node-pg returns numeric as exact text)')
    eq(row.same, true, 'timestamptz equal server-side')
    r = await c.query({ text: `SELECT ts FROM ${TABLE} WHERE id = 7`, types: RAW_TYPES })
    eq(r.rows[0].ts, TS_UTC_TEXT, 'timestamptz text (UTC)')
    r = await c.query(`SELECT ts FROM ${TABLE} WHERE id = 8`)
    check(r.rows[0].ts instanceof Date && r.rows[0].ts.getTime() === jsDate.getTime(),
      `timestamptz Date: got ${r.rows[0].ts}, want ${jsDate.toISOString()}`)
  } finally {
    await c.query('RESET TimeZone')
  }
}

function copyPayload (n) {
  let s = ''
  for (let i = 1; i <= n; i++) s += `${i}\tname-ü-${i}\t${i * 7}.${String(i % 100).padStart(2, '0')}\n`
  return s
}

// e. COPY FROM STDIN / COPY TO STDOUT
async function caseCopy (c) {
  await c.query(`DELETE FROM ${TABLE} WHERE id >= 0`)
  const payload = Buffer.from(copyPayload(1000))
  const chunks = []
  for (let i = 0; i < payload.length; i += 4096) chunks.push(payload.subarray(i, i + 4096))
  const inStream = c.query(copyStreams.from(`COPY ${TABLE} (id, name, amount) FROM STDIN`))
  await withTimeout(pipeline(Readable.from(chunks), inStream), 30000, 'COPY FROM')
  eq(inStream.rowCount, 1000, 'COPY FROM rowcount')
  eq(await count(c), 1000, 'rows after COPY FROM')
  const out = []
  const outStream = c.query(copyStreams.to(`COPY (SELECT id, name, amount FROM ${TABLE} ORDER BY id) TO STDOUT`))
  await withTimeout(pipeline(outStream, new Writable({
    write (chunk, enc, cb) { out.push(Buffer.from(chunk)); cb() }
  })), 30000, 'COPY TO')
  check(Buffer.concat(out).equals(payload), 'COPY TO output differs from input')
  eq(outStream.rowCount, 1000, 'COPY TO rowcount')
}

// f. server error, then more work
async function caseError (c) {
  try {
    await c.query('SELECT 1/0')
    throw new CaseFailed('no error raised')
  } catch (e) {
    if (e instanceof CaseFailed) throw e
    eq(e.code, '22012', 'SQLSTATE')
  }
  let r = await c.query('SELECT 40 + $1::int AS v', [2])
  eq(r.rows[0].v, 42, 'after error')
  await c.query('BEGIN')
  try {
    await c.query('SELECT $1::int / 0', [1])
    throw new CaseFailed('no error raised (tx, extended)')
  } catch (e) {
    if (e instanceof CaseFailed) throw e
    eq(e.code, '22012', 'SQLSTATE (tx, extended)')
  }
  try {
    await c.query('SELECT 1')
    throw new CaseFailed('aborted transaction accepted a query')
  } catch (e) {
    if (e instanceof CaseFailed) throw e
    eq(e.code, '25P02', 'SQLSTATE in aborted tx')
  }
  await c.query('ROLLBACK')
  r = await c.query('SELECT 41 + 1 AS v')
  eq(r.rows[0].v, 42, 'after rollback')
}

function sendCancelRequest (host, port, pid, secret) {
  return new Promise((resolve, reject) => {
    const buf = Buffer.alloc(16)
    buf.writeInt32BE(16, 0)
    buf.writeInt32BE(80877102, 4)
    buf.writeInt32BE(pid, 8)
    buf.writeInt32BE(secret, 12)
    const sock = net.connect({ host, port })
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error('CancelRequest socket timeout')) })
    sock.on('error', reject)
    sock.on('connect', () => sock.end(buf))
    // The server closes the connection without replying.
    sock.on('close', () => resolve())
    sock.resume()
  })
}

// g. cancel via a raw CancelRequest
async function caseCancel (c, cfg) {
  check(Number.isInteger(c.processID) && Number.isInteger(c.secretKey), 'no BackendKeyData')
  const t0 = Date.now()
  const q = c.query('SELECT pg_sleep(10)')
  const timer = setTimeout(() => {
    sendCancelRequest(cfg.host, cfg.port, c.processID, c.secretKey)
      .catch((e) => console.error('cancel request failed:', e.message))
  }, 1000)
  try {
    await withTimeout(q, 20000, 'pg_sleep(10)')
    throw new CaseFailed(`query was not cancelled (${(Date.now() - t0) / 1000}s)`)
  } catch (e) {
    if (e instanceof CaseFailed) throw e
    const el = (Date.now() - t0) / 1000
    eq(e.code, '57014', 'SQLSTATE')
    check(el >= 0.8 && el < 5, `cancel took ${el}s`)
  } finally {
    clearTimeout(timer)
  }
  const r = await c.query('SELECT 1 AS one')
  eq(r.rows[0].one, 1, 'session usable after cancel')
}

function checkLarge (rows) {
  const all = crypto.createHash('sha256')
  const want = crypto.createHash('sha256')
  let n = 0
  for (const row of rows) {
    n++
    const g = Number(row[0])
    if (g !== n) throw new CaseFailed(`row ${n} has g=${row[0]}`)
    all.update(`${g}|${row[1]}\n`)
    want.update(`${n}|${crypto.createHash('md5').update(String(n)).digest('hex')}\n`)
  }
  eq(n, LARGE_N, 'row count')
  eq(all.digest('hex'), want.digest('hex'), 'checksum')
}

// h. 100k-row result
async function caseLarge (c) {
  const text = `SELECT g, md5(g::text) FROM generate_series(1,${LARGE_N}) g ORDER BY g`
  let r = await c.query({ text, rowMode: 'array' })
  checkLarge(r.rows)
  // again with a bind parameter (extended protocol)
  r = await c.query({
    text: 'SELECT g, md5(g::text) FROM generate_series(1, $1::int) g ORDER BY g',
    values: [LARGE_N],
    rowMode: 'array'
  })
  checkLarge(r.rows)
}

function checkRefusal (e, rule, what) {
  if (e instanceof CaseFailed) throw e
  eq(e.code, '42501', `${what} SQLSTATE`)
  const m = String(e.message || '')
  check(m.includes('Warden') && m.includes(rule), `${what}: message does not name Warden and rule ${rule}: ${m}`)
}

// i. Warden refusals (only with WARDEN_POLICY_CASES=1: the proxy with the
// client-suite policy in front). The INSERT has bound parameters and the
// DELETE is forced onto the extended protocol; the DROP is a simple query.
async function casePolicy (c) {
  const id = crypto.randomInt(1000000, 2 ** 31 - 1)
  const countItem = async () => (await c.query('SELECT count(*)::int AS n FROM items WHERE id = $1', [id])).rows[0].n
  await c.query('BEGIN')
  try {
    await c.query('INSERT INTO items (id, name) VALUES ($1, $2)', [id, 'warden-policy-node-pg'])
    eq(await countItem(), 1, 'inserted row inside tx')
    try {
      const r = await c.query({ text: 'DELETE FROM items', queryMode: 'extended' })
      throw new CaseFailed(`unfiltered DELETE was not refused (${r.rowCount} rows deleted)`)
    } catch (e) {
      checkRefusal(e, 'no-unfiltered-writes', 'DELETE')
    }
    try {
      await c.query('SELECT 1')
      throw new CaseFailed('aborted transaction accepted a query')
    } catch (e) {
      if (e instanceof CaseFailed) throw e
      eq(e.code, '25P02', 'SQLSTATE in aborted tx')
    }
  } finally {
    await c.query('ROLLBACK')
  }
  eq(await countItem(), 0, 'inserted row after rollback')
  try {
    await c.query('DROP TABLE items')
    throw new CaseFailed('DROP TABLE was not refused')
  } catch (e) {
    checkRefusal(e, 'no-drop-table', 'DROP TABLE')
  }
  const r = await c.query("SELECT to_regclass('public.items') IS NOT NULL AS present")
  eq(r.rows[0].present, true, 'items still exists')
}

async function main () {
  const names = ['bind_params', 'prepared_reuse', 'tx_rollback', 'types_roundtrip',
    'copy_in_out', 'error_recovery', 'cancel', 'large_result']
  const cases = [caseBind, casePrepared, caseRollback, caseTypes, caseCopy, caseError, caseCancel, caseLarge]
  // policy_refusal needs the Warden proxy with the client-suite policy.
  if (process.env.WARDEN_POLICY_CASES === '1') {
    names.push('policy_refusal')
    cases.push(casePolicy)
  }
  const cfg = config()
  const c = new Client(cfg)
  c.on('error', (e) => console.error('client error:', e.message))
  try {
    await withTimeout(c.connect(), 15000, 'connect')
    await c.query(`CREATE TEMP TABLE ${TABLE} (id int, name text, data bytea, amount numeric, ts timestamptz)`)
  } catch (e) {
    for (const n of names) fail(n, `connect/setup: ${e.message}`)
    process.exit(1)
  }
  for (let i = 0; i < names.length; i++) {
    try {
      await withTimeout(cases[i](c, cfg), 60000, names[i])
      passed++
      console.log(`PASS ${SUITE} ${names[i]}`)
    } catch (e) {
      fail(names[i], (e instanceof CaseFailed ? '' : `${e.code || e.name}: `) + e.message)
    }
  }
  await withTimeout(c.end(), 5000, 'end').catch(() => {})
  process.exit(failed > 0 ? 1 : 0)
}

function fail (name, reason) {
  failed++
  console.log(`FAIL ${SUITE} ${name}: ${String(reason).replace(/\n/g, ' ').slice(0, 500)}`)
}

main().catch((e) => { console.log(`FAIL ${SUITE} main: ${e.stack}`); process.exit(1) })
