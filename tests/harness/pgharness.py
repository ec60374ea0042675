"""Minimal harness for running a throwaway PostgreSQL 15 on 127.0.0.1.

Standard library only. Shared by integration tests, client tests, the demo and
benchmarks.

    from pgharness import PostgresServer, setup_sample
    with PostgresServer() as pg:
        setup_sample(pg)
        print(pg.host, pg.port, pg.pid, pg.socket_dir)

The PostgreSQL binaries refuse to run as root, so when running as root every
server-side command is run as the ``postgres`` OS user (``runuser -u postgres``).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("WARDEN_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_OS_USER = os.environ.get("WARDEN_PG_OS_USER", "postgres")

__all__ = ["free_port", "PostgresServer", "setup_sample", "SAMPLE_ROLES",
           "SAMPLE_DATABASES", "psql"]

# role -> password (None = no password)
SAMPLE_ROLES = {
    "warden_svc": "svc-scram-pw",   # scram-sha-256
    "warden_md5": "svc-md5-pw",     # md5
    "warden_trust": None,           # trust
}
SAMPLE_DATABASES = ("shop", "shop_staging")


def free_port() -> int:
    """Bind 127.0.0.1:0 and return the port the kernel picked."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_OS_USER, "--"] + list(cmd)
    return list(cmd)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


HBA_CONF = """\
# Written by tests/harness/pgharness.py
# TYPE  DATABASE  USER          ADDRESS        METHOD
local   all       postgres                     trust
local   all       all                          reject
host    all       postgres      127.0.0.1/32   trust
host    all       warden_svc    127.0.0.1/32   scram-sha-256
host    all       warden_md5    127.0.0.1/32   md5
host    all       warden_trust  127.0.0.1/32   trust
host    all       +warden_mapped 127.0.0.1/32  scram-sha-256
host    all       all           127.0.0.1/32   reject
host    all       all           ::1/128        reject
"""


class PostgresServer:
    """A PostgreSQL cluster in a fresh temp dir, listening on 127.0.0.1 only."""

    host = "127.0.0.1"

    def __init__(self, base_dir=None, port=None, extra_conf=None, log_to_file=True,
                 ssl=False):
        """ssl=True: generate a self-signed cert (openssl CLI, SAN IP:127.0.0.1)
        and turn ssl on; clients then may use sslmode=require (the cert is at
        .ssl_cert_file for verify-ca)."""
        self._ssl = ssl
        self._base_dir = base_dir
        self._want_port = port
        self._extra_conf = dict(extra_conf or {})
        self._log_to_file = log_to_file
        self.dir = None
        self.data_dir = None
        self._port = None
        self._pid = None
        self._proc = None

    # -- properties -------------------------------------------------------
    @property
    def port(self):
        return self._port

    @property
    def pid(self):
        return self._pid

    @property
    def socket_dir(self):
        return self.dir

    @property
    def ssl_cert_file(self):
        if self._ssl and self.data_dir:
            return os.path.join(self.data_dir, "server.crt")
        return None

    @property
    def log_file(self):
        return os.path.join(self.dir, "postgres.log") if self.dir else None

    def dsn(self, user="postgres", dbname="postgres", password=None):
        parts = ["host=%s" % self.host, "port=%d" % self._port,
                 "user=%s" % user, "dbname=%s" % dbname]
        if password:
            parts.append("password=%s" % password)
        return " ".join(parts)

    # -- lifecycle --------------------------------------------------------
    def start(self, timeout=30.0):
        if self._pid is not None:
            raise RuntimeError("already started")
        if self._base_dir:
            os.makedirs(self._base_dir, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="warden-pg-", dir=self._base_dir)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout):
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_OS_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data_dir = os.path.join(self.dir, "data")
        r = subprocess.run(
            _as_pg_user([os.path.join(PG_BIN, "initdb"), "-D", self.data_dir,
                         "-A", "trust", "-U", "postgres", "-E", "UTF8",
                         "--locale=C.UTF-8", "--no-sync"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            # Some locales may be missing: retry with plain C.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            r = subprocess.run(
                _as_pg_user([os.path.join(PG_BIN, "initdb"), "-D", self.data_dir,
                             "-A", "trust", "-U", "postgres", "-E", "UTF8",
                             "--locale=C", "--no-sync"]),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if r.returncode != 0:
                raise RuntimeError("initdb failed:\n" + r.stdout.decode(errors="replace"))

        self._port = self._want_port or free_port()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self._port),
            "unix_socket_directories": "'%s'" % self.dir,
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "ssl": "off",
            "password_encryption": "'scram-sha-256'",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        if self._ssl:
            self._make_cert()
            conf["ssl"] = "on"
            conf["ssl_cert_file"] = "'server.crt'"
            conf["ssl_key_file"] = "'server.key'"
        for k, v in self._extra_conf.items():
            conf[k] = v if isinstance(v, str) else str(v)
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# pgharness\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write(HBA_CONF)

        out = open(self.log_file, "ab") if self._log_to_file else subprocess.DEVNULL
        try:
            # Run postgres directly (no pg_ctl) so we own the postmaster process.
            self._proc = subprocess.Popen(
                _as_pg_user([os.path.join(PG_BIN, "postgres"), "-D", self.data_dir]),
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

        deadline = time.monotonic() + timeout
        pidfile = os.path.join(self.data_dir, "postmaster.pid")
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError("postgres exited with %s; log:\n%s"
                                   % (self._proc.returncode, self._read_log()))
            pid = None
            try:
                with open(pidfile) as f:
                    lines = f.read().splitlines()
                # line 8 (index 7) is the status: "ready" once accepting
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    pid = int(lines[0])
            except (OSError, ValueError):
                pass
            if pid and self._can_connect():
                self._pid = pid
                return
            if time.monotonic() > deadline:
                raise RuntimeError("postgres not ready after %.0fs; log:\n%s"
                                   % (timeout, self._read_log()))
            time.sleep(0.1)

    def _make_cert(self):
        crt = os.path.join(self.data_dir, "server.crt")
        key = os.path.join(self.data_dir, "server.key")
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", key, "-out", crt],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl failed:\n" + r.stdout.decode(errors="replace"))
        os.chmod(key, 0o600)
        os.chmod(crt, 0o644)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_OS_USER)
            for f in (crt, key):
                os.chown(f, pw.pw_uid, pw.pw_gid)

    def _can_connect(self):
        try:
            with socket.create_connection((self.host, self._port), timeout=1):
                return True
        except OSError:
            return False

    def _read_log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    def stop(self, timeout=15.0):
        pid = self._pid
        if pid is None and self._proc is not None:
            pid = self._proc.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)  # fast shutdown
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                if self._proc is not None:
                    self._proc.poll()
                time.sleep(0.05)
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self._proc = None
        self._pid = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self.data_dir = None

    def __enter__(self):
        if self._pid is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            if self._pid is not None or self._proc is not None:
                self.stop()
        except Exception:
            pass

    # -- SQL --------------------------------------------------------------
    def psql(self, sql, dbname="postgres", check=True, timeout=60):
        return psql(self, sql, dbname=dbname, check=check, timeout=timeout)


def psql(server, sql, dbname="postgres", check=True, timeout=60):
    """Run SQL as postgres over the unix socket; returns stdout (text)."""
    cmd = _as_pg_user(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t",
                       "-h", server.socket_dir, "-p", str(server.port),
                       "-U", "postgres", "-d", dbname, "-f", "-"])
    env = dict(os.environ)
    for k in ("PGPASSWORD", "PGSSLMODE", "PGSERVICE", "PGOPTIONS", "PGHOSTADDR"):
        env.pop(k, None)
    r = subprocess.run(cmd, input=sql.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env,
                       cwd="/")
    if check and r.returncode != 0:
        raise RuntimeError("psql failed (rc=%d) on db %s:\n%s\n--- sql ---\n%s"
                           % (r.returncode, dbname, r.stderr.decode(errors="replace"), sql))
    return r.stdout.decode(errors="replace")


_ROLES_SQL = """
SET password_encryption = 'scram-sha-256';
CREATE ROLE warden_svc LOGIN PASSWORD 'svc-scram-pw';
SET password_encryption = 'md5';
CREATE ROLE warden_md5 LOGIN PASSWORD 'svc-md5-pw';
RESET password_encryption;
CREATE ROLE warden_trust LOGIN;
"""

_SCHEMA_SQL = """
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text,
    email text,
    created_at timestamptz DEFAULT now()
);
CREATE TABLE products (
    id serial PRIMARY KEY,
    name text,
    price numeric(10,2)
);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int REFERENCES customers,
    product_id int REFERENCES products,
    quantity int,
    total numeric(12,2),
    placed_at timestamptz DEFAULT now()
);
CREATE TABLE items (
    id int,
    name text,
    data bytea,
    amount numeric,
    ts timestamptz
);
INSERT INTO customers (name, email) VALUES
    ('Alice Adams',   'alice@example.com'),
    ('Bob Brown',     'bob@example.com'),
    ('Carol Clark',   'carol@example.com'),
    ('Dave Davis',    'dave@example.com'),
    ('Eve Evans',     'eve@example.com'),
    ('Frank Foster',  'frank@example.com'),
    ('Grace Green',   'grace@example.com'),
    ('Heidi Hill',    'heidi@example.com'),
    ('Ivan Irwin',    'ivan@example.com'),
    ('Judy Jones',    'judy@example.com');
INSERT INTO products (name, price) VALUES
    ('Widget',      9.99),
    ('Gadget',     24.50),
    ('Gizmo',     199.00),
    ('Doohickey',   4.25),
    ('Thingamajig', 57.75);
INSERT INTO orders (customer_id, product_id, quantity, total)
SELECT c, p, q, (SELECT price FROM products WHERE id = p) * q
FROM (SELECT ((g - 1) % 10) + 1 AS c, ((g * 3) % 5) + 1 AS p, (g % 4) + 1 AS q
      FROM generate_series(1, 20) g) s;
GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO warden_svc, warden_md5, warden_trust;
GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO warden_svc, warden_md5, warden_trust;
GRANT ALL PRIVILEGES ON SCHEMA public TO warden_svc, warden_md5, warden_trust;
"""


def setup_sample(server):
    """Create the sample roles and the shop / shop_staging databases."""
    server.psql(_ROLES_SQL)
    for db in SAMPLE_DATABASES:
        server.psql("CREATE DATABASE %s;" % db)
        server.psql("GRANT ALL PRIVILEGES ON DATABASE %s TO warden_svc, warden_md5, warden_trust;" % db)
        server.psql(_SCHEMA_SQL, dbname=db)
    return server


if __name__ == "__main__":
    # Manual smoke: start, set up the sample, print details, stop on Enter/EOF.
    import sys
    with PostgresServer() as pg:
        setup_sample(pg)
        print("postgres pid=%d host=%s port=%d socket_dir=%s"
              % (pg.pid, pg.host, pg.port, pg.socket_dir))
        if sys.stdin.isatty():
            try:
                input("press Enter to stop... ")
            except EOFError:
                pass
