// JDBC (pgjdbc) client suite. Connection settings from PG* env vars.
// Compile: javac -cp /usr/share/java/postgresql.jar -d OUT ClientSuite.java
// Run:     java -cp OUT:/usr/share/java/postgresql.jar ClientSuite
//
// pgjdbc always uses the extended protocol (Parse/Bind/Execute). With
// prepareThreshold=1 it switches to named server-side statements (S_n) from
// the first execution. Statement.cancel() opens a new connection and sends a
// CancelRequest carrying the BackendKeyData it got at startup.

import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.*;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.Properties;

import org.postgresql.PGConnection;
import org.postgresql.PGStatement;
import org.postgresql.copy.CopyManager;

public class ClientSuite {
    static final String SUITE = "jdbc";
    static final String TABLE = "t_jdbc";
    static final String TRICKY_TEXT = "O'Reilly \"quoted\" back\\slash; -- ünïcødé ✓ 🐘 $1 ?";
    static final byte[] BYTEA = {0x00, (byte) 0xff, 0x01, 0x7f, (byte) 0x80, '\'', '"', '\\', 'a', 'b', 'c', 0x00};
    static final String NUMERIC_TEXT = "12345678901234567890.123456789";
    static final String TS_TEXT = "2024-03-05 12:34:56.789012+05:30";
    static final int LARGE_N = 100000;

    static int passed = 0, failed = 0;

    static class CaseFailed extends Exception {
        CaseFailed(String m) { super(m); }
    }

    interface Case { void run(Connection c) throws Exception; }

    static void check(boolean cond, String msg) throws CaseFailed {
        if (!cond) throw new CaseFailed(msg);
    }

    static void eq(Object got, Object want, String what) throws CaseFailed {
        boolean same = (got == null) ? want == null : got.equals(want);
        if (!same) throw new CaseFailed(what + ": got " + got + ", want " + want);
    }

    static String env(String k, String def) {
        String v = System.getenv(k);
        return (v == null || v.isEmpty()) ? def : v;
    }

    static Connection connect() throws SQLException {
        String host = env("PGHOST", "127.0.0.1");
        String port = env("PGPORT", "5432");
        String user = env("PGUSER", "postgres");
        String db = env("PGDATABASE", user);
        String sslmode = System.getenv("PGSSLMODE");
        StringBuilder url = new StringBuilder("jdbc:postgresql://" + host + ":" + port + "/" + db);
        url.append("?ApplicationName=warden-suite-jdbc&connectTimeout=10&socketTimeout=60");
        if (sslmode != null && !sslmode.isEmpty()) {
            if (sslmode.equals("require")) url.append("&ssl=true&sslmode=require");
            else url.append("&sslmode=").append(sslmode);
        }
        Properties p = new Properties();
        p.setProperty("user", user);
        String pw = System.getenv("PGPASSWORD");
        if (pw != null) p.setProperty("password", pw);
        return DriverManager.getConnection(url.toString(), p);
    }

    static long count(Connection c) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM " + TABLE)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) { st.execute(sql); }
    }

    // a. bind parameters
    static void caseBind(Connection c) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::int + ?::int")) {
            ps.setInt(1, 2);
            ps.setInt(2, 3);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "no row");
                eq(rs.getInt(1), 5, "2+3");
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::text, length(?::text)")) {
            ps.setString(1, TRICKY_TEXT);
            ps.setString(2, TRICKY_TEXT);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "no row");
                eq(rs.getString(1), TRICKY_TEXT, "text round trip");
                eq(rs.getInt(2), TRICKY_TEXT.codePointCount(0, TRICKY_TEXT.length()), "server-side char length");
            }
        }
    }

    // b. server-side prepared statement reused three times
    static void casePrepared(Connection c) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2, ?::text || '!' /* warden prepared */")) {
            PGStatement pgs = ps.unwrap(PGStatement.class);
            pgs.setPrepareThreshold(1);
            for (int i = 1; i <= 3; i++) {
                ps.setInt(1, i);
                ps.setString(2, "x" + i);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "no row");
                    eq(rs.getInt(1), i * 2, "execute #" + i + " col1");
                    eq(rs.getString(2), "x" + i + "!", "execute #" + i + " col2");
                }
                check(pgs.isUseServerPrepare(), "not using server-side prepare after #" + i);
            }
            try (Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM pg_prepared_statements " +
                         "WHERE NOT from_sql AND statement LIKE '%warden prepared%'")) {
                rs.next();
                eq(rs.getLong(1), 1L, "one server-side prepared statement");
            }
        }
    }

    // c. transaction rolled back
    static void caseRollback(Connection c) throws Exception {
        exec(c, "DELETE FROM " + TABLE + " WHERE id >= 0");
        c.setAutoCommit(false);
        try {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE + " (id, name) VALUES (?, ?)")) {
                ps.setInt(1, 1);
                ps.setString(2, "gone");
                eq(ps.executeUpdate(), 1, "insert count");
            }
            eq(count(c), 1L, "count inside tx");
            c.rollback();
        } finally {
            c.setAutoCommit(true);
        }
        eq(count(c), 0L, "count after rollback");
    }

    // d. NULL / bytea / timestamptz / numeric round trip
    static void caseTypes(Connection c) throws Exception {
        OffsetDateTime ts = OffsetDateTime.of(2024, 3, 5, 12, 34, 56, 789012000, ZoneOffset.ofHoursMinutes(5, 30));
        BigDecimal num = new BigDecimal(NUMERIC_TEXT);
        exec(c, "DELETE FROM " + TABLE + " WHERE id >= 0");
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO " + TABLE + " (id, name, data, amount, ts) VALUES (?,?,?,?,?)")) {
            ps.setInt(1, 7);
            ps.setNull(2, Types.VARCHAR);
            ps.setBytes(3, BYTEA);
            ps.setBigDecimal(4, num);
            ps.setObject(5, ts);
            ps.executeUpdate();
        }
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT name, data, amount, ts, amount::text, ts = ?::timestamptz, encode(data, 'hex') FROM "
                        + TABLE + " WHERE id = 7")) {
            ps.setString(1, TS_TEXT);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "no row");
                eq(rs.getString(1), null, "NULL");
                check(rs.wasNull(), "wasNull false");
                byte[] got = rs.getBytes(2);
                check(Arrays.equals(got, BYTEA), "bytea: got " + Arrays.toString(got));
                eq(rs.getBigDecimal(3), num, "numeric");
                OffsetDateTime gotTs = rs.getObject(4, OffsetDateTime.class);
                check(gotTs != null && gotTs.isEqual(ts), "timestamptz: got " + gotTs + ", want " + ts);
                eq(rs.getString(5), NUMERIC_TEXT, "numeric text");
                eq(rs.getBoolean(6), true, "timestamptz equal server-side");
                StringBuilder hex = new StringBuilder();
                for (byte b : BYTEA) hex.append(String.format("%02x", b & 0xff));
                eq(rs.getString(7), hex.toString(), "bytea hex on server");
            }
        }
    }

    static String copyPayload(int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i <= n; i++) sb.append(String.format("%d\tname-ü-%d\t%d.%02d\n", i, i, i * 7, i % 100));
        return sb.toString();
    }

    // e. COPY FROM STDIN / COPY TO STDOUT
    static void caseCopy(Connection c) throws Exception {
        exec(c, "DELETE FROM " + TABLE + " WHERE id >= 0");
        String payload = copyPayload(1000);
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        long n = cm.copyIn("COPY " + TABLE + " (id, name, amount) FROM STDIN", new StringReader(payload));
        eq(n, 1000L, "COPY FROM rowcount");
        eq(count(c), 1000L, "rows after COPY FROM");
        StringWriter w = new StringWriter();
        long m = cm.copyOut("COPY (SELECT id, name, amount FROM " + TABLE + " ORDER BY id) TO STDOUT", w);
        eq(m, 1000L, "COPY TO rowcount");
        check(w.toString().equals(payload), "COPY TO output differs from input");
    }

    // f. server error, then more work
    static void caseError(Connection c) throws Exception {
        try (Statement st = c.createStatement()) {
            try {
                st.executeQuery("SELECT 1/0");
                throw new CaseFailed("no error raised");
            } catch (SQLException e) {
                eq(e.getSQLState(), "22012", "SQLSTATE");
            }
        }
        // inside an explicit transaction: needs rollback
        c.setAutoCommit(false);
        try {
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int / 0")) {
                ps.setInt(1, 1);
                ps.executeQuery();
                throw new CaseFailed("no error raised (tx)");
            } catch (SQLException e) {
                eq(e.getSQLState(), "22012", "SQLSTATE (tx)");
            }
            c.rollback();
        } finally {
            c.setAutoCommit(true);
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT 40 + ?")) {
            ps.setInt(1, 2);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                eq(rs.getInt(1), 42, "after error");
            }
        }
    }

    // g. cancel
    static void caseCancel(Connection c) throws Exception {
        try (Statement st = c.createStatement()) {
            Thread t = new Thread(() -> {
                try {
                    Thread.sleep(1000);
                    st.cancel();
                } catch (Exception e) {
                    System.err.println("cancel thread: " + e);
                }
            });
            long t0 = System.nanoTime();
            t.setDaemon(true);
            t.start();
            try {
                st.executeQuery("SELECT pg_sleep(10)");
                throw new CaseFailed(String.format("query was not cancelled (%.1fs)", (System.nanoTime() - t0) / 1e9));
            } catch (SQLException e) {
                double el = (System.nanoTime() - t0) / 1e9;
                eq(e.getSQLState(), "57014", "SQLSTATE");
                check(el >= 0.8 && el < 5, String.format("cancel took %.2fs", el));
            } finally {
                t.join(5000);
            }
        }
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            rs.next();
            eq(rs.getInt(1), 1, "session usable after cancel");
        }
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x & 0xff));
        return sb.toString();
    }

    static void checkLarge(ResultSet rs) throws Exception {
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        MessageDigest all = MessageDigest.getInstance("SHA-256");
        MessageDigest want = MessageDigest.getInstance("SHA-256");
        int n = 0;
        while (rs.next()) {
            n++;
            int g = rs.getInt(1);
            String m = rs.getString(2);
            if (g != n) throw new CaseFailed("row " + n + " has g=" + g);
            all.update((g + "|" + m + "\n").getBytes(StandardCharsets.UTF_8));
            String exp = hex(md5.digest(Integer.toString(n).getBytes(StandardCharsets.UTF_8)));
            want.update((n + "|" + exp + "\n").getBytes(StandardCharsets.UTF_8));
        }
        eq(n, LARGE_N, "row count");
        eq(hex(all.digest()), hex(want.digest()), "checksum");
    }

    // h. 100k-row result
    static void caseLarge(Connection c) throws Exception {
        String sql = "SELECT g, md5(g::text) FROM generate_series(1," + LARGE_N + ") g ORDER BY g";
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            checkLarge(rs);
        }
        // and fetched in batches through a portal (Execute with row limit)
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setFetchSize(7000);
            try (ResultSet rs = ps.executeQuery()) {
                checkLarge(rs);
            }
            c.commit();
        } finally {
            c.setAutoCommit(true);
        }
    }

    static void checkRefusal(SQLException e, String rule, String what) throws CaseFailed {
        eq(e.getSQLState(), "42501", what + " SQLSTATE");
        String m = e.getMessage() == null ? "" : e.getMessage();
        check(m.contains("Warden") && m.contains(rule),
                what + ": message does not name Warden and rule " + rule + ": " + m);
    }

    static long countItem(Connection c, int id) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM items WHERE id = ?")) {
            ps.setInt(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    // i. Warden refusals (only with WARDEN_POLICY_CASES=1: the proxy with the
    // client-suite policy in front). Everything here is extended protocol;
    // with autocommit off pgjdbc pipelines BEGIN ahead of the INSERT.
    static void casePolicy(Connection c) throws Exception {
        int id = 1000000 + new java.util.Random().nextInt(Integer.MAX_VALUE - 1000000);
        c.setAutoCommit(false);
        try {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO items (id, name) VALUES (?, ?)")) {
                ps.setInt(1, id);
                ps.setString(2, "warden-policy-jdbc");
                eq(ps.executeUpdate(), 1, "insert count");
            }
            eq(countItem(c, id), 1L, "inserted row inside tx");
            try (Statement st = c.createStatement()) {
                int n = st.executeUpdate("DELETE FROM items");
                throw new CaseFailed("unfiltered DELETE was not refused (" + n + " rows deleted)");
            } catch (SQLException e) {
                checkRefusal(e, "no-unfiltered-writes", "DELETE");
            }
            try {
                countItem(c, id);
                throw new CaseFailed("aborted transaction accepted a query");
            } catch (SQLException e) {
                eq(e.getSQLState(), "25P02", "SQLSTATE in aborted tx");
            }
            c.rollback();
            eq(countItem(c, id), 0L, "inserted row after rollback");
            c.rollback();
        } finally {
            c.setAutoCommit(true);
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE items");
            throw new CaseFailed("DROP TABLE was not refused");
        } catch (SQLException e) {
            checkRefusal(e, "no-drop-table", "DROP TABLE");
        }
        try (ResultSet rs = c.getMetaData().getTables(null, "public", "items", new String[] {"TABLE"})) {
            check(rs.next(), "items no longer exists");
        }
    }

    public static void main(String[] args) {
        String[] names = {"bind_params", "prepared_reuse", "tx_rollback", "types_roundtrip",
                "copy_in_out", "error_recovery", "cancel", "large_result", "policy_refusal"};
        Case[] cases = {ClientSuite::caseBind, ClientSuite::casePrepared, ClientSuite::caseRollback,
                ClientSuite::caseTypes, ClientSuite::caseCopy, ClientSuite::caseError,
                ClientSuite::caseCancel, ClientSuite::caseLarge, ClientSuite::casePolicy};
        // policy_refusal needs the Warden proxy with the client-suite policy.
        if (!"1".equals(System.getenv("WARDEN_POLICY_CASES"))) {
            names = Arrays.copyOf(names, names.length - 1);
        }
        Connection c;
        try {
            c = connect();
            exec(c, "SET statement_timeout = '60s'");
            exec(c, "CREATE TEMP TABLE " + TABLE + " (id int, name text, data bytea, amount numeric, ts timestamptz)");
        } catch (Exception e) {
            for (String n : names) fail(n, "connect/setup: " + e);
            System.exit(1);
            return;
        }
        for (int i = 0; i < names.length; i++) {
            try {
                cases[i].run(c);
                passed++;
                System.out.println("PASS " + SUITE + " " + names[i]);
            } catch (CaseFailed e) {
                fail(names[i], e.getMessage());
            } catch (Exception e) {
                fail(names[i], e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            System.out.flush();
            try {
                if (!c.getAutoCommit()) { c.rollback(); c.setAutoCommit(true); }
            } catch (SQLException ignored) {
            }
        }
        try { c.close(); } catch (SQLException ignored) { }
        System.exit(failed > 0 ? 1 : 0);
    }

    static void fail(String name, String reason) {
        failed++;
        if (reason == null) reason = "(no message)";
        reason = reason.replace('\n', ' ');
        if (reason.length() > 500) reason = reason.substring(0, 500);
        System.out.println("FAIL " + SUITE + " " + name + ": " + reason);
    }
}
