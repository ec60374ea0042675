// Runs the guardrail corpus over JDBC (pgjdbc: extended protocol always,
// statements with several commands split by the driver and pipelined) and
// prints what the server (or Warden in front of it) answered to each step.
//
// Usage: java -cp <classes>:postgresql.jar CorpusRunner <url> <user> <password> <input>
//
// Input, one record per line, fields separated by a space, text in base64:
//   S <name> <mode> <startup parameters: base64 of name=value lines, or ->
//       mode T: every step in its own BEGIN ... ROLLBACK;
//       mode C: the whole session in one transaction, a savepoint per step
//   Q <id> <sql> [<type>:<value> ...]   type b (boolean), i (integer), t (text)
//   E                                   end of the session (rolled back)
// Output:
//   C <name> OK | C <name> ERR <sqlstate> <message>
//   R <id> OK   | R <id> ERR <sqlstate> <message>
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;

public class CorpusRunner {
  static String dec(String b64) {
    return new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
  }

  static String enc(String s) {
    return Base64.getEncoder().encodeToString(
        (s == null ? "" : s).getBytes(StandardCharsets.UTF_8));
  }

  static String state(SQLException e) {
    return e.getSQLState() == null ? "-" : e.getSQLState();
  }

  static void quietly(Connection c, String sql) {
    try (Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (SQLException e) {
      // The transaction may already be gone (the step ended it).
    }
  }

  public static void main(String[] args) throws Exception {
    String url = args[0];
    List<String> lines = Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8);
    Connection conn = null;
    String mode = "T";
    for (String line : lines) {
      String[] f = line.split(" ");
      if (f[0].equals("S")) {
        mode = f[2];
        Properties p = new Properties();
        p.setProperty("user", args[1]);
        p.setProperty("password", args[2]);
        p.setProperty("sslmode", "disable");
        p.setProperty("prepareThreshold", "1");
        if (!f[3].equals("-")) {
          for (String kv : dec(f[3]).split("\n")) {
            int eq = kv.indexOf('=');
            p.setProperty(kv.substring(0, eq), kv.substring(eq + 1));
          }
        }
        try {
          conn = DriverManager.getConnection(url, p);
          conn.setAutoCommit(true);
          System.out.println("C " + f[1] + " OK");
          if (mode.equals("C")) quietly(conn, "BEGIN");
        } catch (SQLException e) {
          conn = null;
          System.out.println("C " + f[1] + " ERR " + state(e) + " " + enc(e.getMessage()));
        }
      } else if (f[0].equals("Q")) {
        if (conn == null) {
          System.out.println("R " + f[1] + " ERR - " + enc("no connection"));
          continue;
        }
        String sql = dec(f[2]);
        quietly(conn, mode.equals("T") ? "BEGIN" : "SAVEPOINT corpus_step");
        try {
          if (f.length > 3) {
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
              for (int i = 3; i < f.length; i++) {
                String type = f[i].substring(0, 1);
                String value = dec(f[i].substring(2));
                if (type.equals("b")) {
                  ps.setBoolean(i - 2, Boolean.parseBoolean(value));
                } else if (type.equals("i")) {
                  ps.setInt(i - 2, Integer.parseInt(value));
                } else {
                  ps.setString(i - 2, value);
                }
              }
              ps.execute();
            }
          } else {
            try (Statement s = conn.createStatement()) {
              s.execute(sql);
            }
          }
          System.out.println("R " + f[1] + " OK");
          quietly(conn, mode.equals("T") ? "ROLLBACK" : "RELEASE SAVEPOINT corpus_step");
        } catch (SQLException e) {
          System.out.println("R " + f[1] + " ERR " + state(e) + " " + enc(e.getMessage()));
          quietly(conn, mode.equals("T") ? "ROLLBACK" : "ROLLBACK TO SAVEPOINT corpus_step");
        }
      } else if (f[0].equals("E")) {
        if (conn != null) {
          quietly(conn, "ROLLBACK");
          conn.close();
          conn = null;
        }
      }
      System.out.flush();
    }
  }
}
