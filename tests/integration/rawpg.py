"""A byte-level PostgreSQL client for protocol tests: it can send anything,
including what no driver would, and reads back raw messages."""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct


def startup_packet(params, version=196608):
    body = struct.pack("!i", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def message(type_byte, body=b""):
    return type_byte + struct.pack("!i", len(body) + 4) + body


def query(sql):
    return message(b"Q", sql.encode() + b"\0")


def parse(sql, name=b""):
    """Parse of `sql` (bytes) as prepared statement `name`, no parameter types."""
    return message(b"P", name + b"\0" + sql + b"\0" + struct.pack("!h", 0))


def bind(portal=b"", statement=b""):
    """Bind of `statement` to `portal`, no parameters, text results."""
    return message(b"B", portal + b"\0" + statement + b"\0" + struct.pack("!hhh", 0, 0, 0))


def execute(portal=b""):
    return message(b"E", portal + b"\0" + struct.pack("!i", 0))


SYNC = message(b"S")


def read_to_ready(conn):
    """Messages up to and including ReadyForQuery, as (type, body)."""
    out = []
    while True:
        t, body = conn.read_message()
        out.append((t, body))
        if t == b"Z":
            return out


def errors(replies):
    """The ErrorResponses among (type, body) replies, as parse_error dicts."""
    return [parse_error(body) for t, body in replies if t == b"E"]


def parse_error(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


class RawConn:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()
        self.pos = 0
        self.backend_key = None
        self.params = {}

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("connection closed")
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def read_exact(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def read_message(self):
        header = self.read_exact(5)
        length = struct.unpack("!i", header[1:])[0]
        return header[:1], self.read_exact(length - 4)

    def read_until_eof(self):
        """Reads messages until the peer closes; returns them."""
        out = []
        try:
            while True:
                out.append(self.read_message())
        except (EOFError, ConnectionResetError):
            return out

    def starttls(self, cafile=None):
        self.send(struct.pack("!ii", 8, 80877103))
        answer = self.read_exact(1)
        if answer != b"S":
            raise RuntimeError("TLS refused: %r" % answer)
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
        if not cafile:
            ctx.check_hostname = False
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def login(self, user, password, database):
        """Startup + SCRAM-SHA-256 (or cleartext) login; reads to ReadyForQuery."""
        self.send(startup_packet({"user": user, "database": database}))
        scram = None
        while True:
            t, body = self.read_message()
            if t == b"E":
                raise RuntimeError(parse_error(body))
            if t == b"R":
                code = struct.unpack("!i", body[:4])[0]
                if code == 10:
                    nonce = base64.b64encode(os.urandom(18)).decode()
                    scram = {"first_bare": "n=,r=" + nonce, "nonce": nonce}
                    data = ("n,," + scram["first_bare"]).encode()
                    self.send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data))
                elif code == 11:
                    server_first = body[4:].decode()
                    attrs = dict(a.split("=", 1) for a in server_first.split(","))
                    salt = base64.b64decode(attrs["s"])
                    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(attrs["i"]))
                    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
                    stored = hashlib.sha256(client_key).digest()
                    without_proof = "c=biws,r=" + attrs["r"]
                    auth_msg = ",".join([scram["first_bare"], server_first, without_proof]).encode()
                    sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
                    proof = bytes(a ^ b for a, b in zip(client_key, sig))
                    final = without_proof + ",p=" + base64.b64encode(proof).decode()
                    self.send(message(b"p", final.encode()))
                elif code == 3:
                    self.send(message(b"p", password.encode() + b"\0"))
                elif code in (0, 12):
                    pass
                else:
                    raise RuntimeError("unsupported auth %d" % code)
            elif t == b"K":
                self.backend_key = struct.unpack("!ii", body)
            elif t == b"S":
                k, v, _ = body.split(b"\0")
                self.params[k.decode()] = v.decode()
            elif t == b"Z":
                return

    def simple_query(self, sql):
        """Runs one simple query; returns (rows, error_fields_or_None)."""
        self.send(query(sql))
        rows, error = [], None
        while True:
            t, body = self.read_message()
            if t == b"D":
                n = struct.unpack("!h", body[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", body[pos:pos + 4])[0]
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + ln].decode())
                        pos += ln
                rows.append(row)
            elif t == b"E":
                error = parse_error(body)
            elif t == b"Z":
                return rows, error

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def scram_salt(port, user, database="shop", host="127.0.0.1"):
    """The salt and iteration count a SCRAM listener answers `user`'s
    client-first message with (no password needed), as (salt_b64, iters)."""
    conn = RawConn(port, host)
    try:
        conn.send(startup_packet({"user": user, "database": database}))
        t, body = conn.read_message()
        if t != b"R" or struct.unpack("!i", body[:4])[0] != 10:
            raise RuntimeError("not a SCRAM listener: %r %r" % (t, body[:64]))
        first = b"n,,n=,r=" + base64.b64encode(os.urandom(18))
        conn.send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
        t, body = conn.read_message()
        if t != b"R" or struct.unpack("!i", body[:4])[0] != 11:
            raise RuntimeError("no server-first message: %r %r" % (t, body[:64]))
        attrs = dict(a.split("=", 1) for a in body[4:].decode().split(","))
        return attrs["s"], int(attrs["i"])
    finally:
        conn.close()


def send_cancel(port, pid, secret, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(struct.pack("!iiii", 16, 80877102, pid, secret))
        s.settimeout(5)
        try:
            s.recv(1)
        except OSError:
            pass
