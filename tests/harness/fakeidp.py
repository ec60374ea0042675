"""A fake OpenID Connect identity provider for tests: signing keys made at
test time (RSA 2048 and EC P-256, python3-cryptography), its JWKS, and
tokens minted with them, including every malformed kind an attacker would
try (alg none, HS256 signed with the public key, expired, wrong audience).
Nothing here is ever committed; keys live only in the test process."""

import base64
import json
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


class SigningKey:
    def __init__(self, kid, alg="RS256"):
        self.kid = kid
        self.alg = alg
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self):
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64(_int_bytes(pub.n)), "e": b64(_int_bytes(pub.e))}
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64(_int_bytes(pub.x, 32)), "y": b64(_int_bytes(pub.y, 32))}

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data):
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return _int_bytes(r, 32) + _int_bytes(s, 32)


class FakeIdp:
    def __init__(self, issuer="https://idp.test/oauth2/default", audience="warden"):
        self.issuer = issuer
        self.audience = audience
        self.keys = [SigningKey("k1", "RS256"), SigningKey("e1", "ES256")]

    def jwks(self):
        return {"keys": [k.jwk() for k in self.keys]}

    def write_jwks(self, path):
        with open(path + ".tmp", "w") as f:
            json.dump(self.jwks(), f)
        import os
        os.replace(path + ".tmp", path)

    def rotate(self, kid="k2"):
        """A new RSA key replaces every old one; returns the retired key."""
        old = self.keys[0]
        self.keys = [SigningKey(kid, "RS256")]
        return old

    def provider_yaml(self, name, environments=None, groups_claims=("groups",)):
        """This provider as a policy file (kind: IdentityProvider) for
        warden-control to fetch its keys from."""
        lines = ["apiVersion: warden/v1", "kind: IdentityProvider",
                 "metadata: { name: %s }" % name, "spec:",
                 "  issuer: %s" % self.issuer, "  audiences: [%s]" % self.audience]
        if environments:
            lines.append("  environments: [%s]" % ", ".join(environments))
        if groups_claims:
            lines.append("  groups_claims: [%s]" % ", ".join(groups_claims))
        return "\n".join(lines) + "\n"

    def claims(self, user, groups=(), lifetime=600, **extra):
        now = int(time.time())
        c = {"iss": self.issuer, "sub": "sub-" + user, "aud": self.audience, "email": user,
             "groups": list(groups), "iat": now, "exp": now + lifetime}
        c.update(extra)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, user, groups=(), key=None, header=None, **claims):
        key = key or self.keys[0]
        h = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        h.update(header or {})
        signing_input = (b64(json.dumps(h)) + "." + b64(json.dumps(self.claims(user, groups, **claims)))).encode()
        return signing_input.decode() + "." + b64(key.sign(signing_input))

    def unsigned_token(self, user):
        h = {"alg": "none", "kid": self.keys[0].kid}
        return b64(json.dumps(h)) + "." + b64(json.dumps(self.claims(user))) + "."

    def hs256_with_public_key(self, user):
        """The classic confusion attack: HMAC keyed with the RSA public key."""
        h = {"alg": "HS256", "kid": self.keys[0].kid}
        signing_input = (b64(json.dumps(h)) + "." + b64(json.dumps(self.claims(user)))).encode()
        mac = hmac.HMAC(self.keys[0].public_pem(), hashes.SHA256())
        mac.update(signing_input)
        return signing_input.decode() + "." + b64(mac.finalize())

    def tampered(self, user, as_user):
        """A valid token for `user` whose payload is swapped for `as_user`'s."""
        header, _, sig = self.token(user).split(".")
        payload = b64(json.dumps(self.claims(as_user)))
        return header + "." + payload + "." + sig


def code_hint(device):
    return device["user_code"].lower()


class IdpServer:
    """Serves a FakeIdp over HTTPS on 127.0.0.1 (a thread of the test):
    its OpenID discovery document and its current JWKS, as an identity
    provider does; `issuer` is https://localhost:PORT.

    It also runs the OAuth device authorization grant (RFC 8628) as
    `wardenctl login` uses it: POST /device/authorize (client_id, scope)
    answers a device_code and user_code (interval 1 s); POST /token with
    grant_type urn:ietf:params:oauth:grant-type:device_code answers
    authorization_pending until the test approves the code with
    GET /device/approve?user_code=C&user=U&groups=G1,G2 (or denies it with
    &deny=1), then an ID token for U whose `aud` is the client id. With
    `slow_down_once` set, the first poll of each code answers slow_down."""

    DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

    def __init__(self, cert, key, port):
        import html
        import http.server
        import secrets
        import ssl
        import threading
        from urllib.parse import parse_qs, urlsplit

        self.port = port
        self.idp = FakeIdp(issuer="https://localhost:%d" % port)
        self.requests = []
        self.devices = {}  # device_code -> state
        self.slow_down_once = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                outer.requests.append("POST " + self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/device/authorize":
                    if not form.get("client_id"):
                        return self.answer(400, {"error": "invalid_client"})
                    code = secrets.token_urlsafe(16)
                    user_code = secrets.token_hex(4).upper()
                    outer.devices[code] = {"user_code": user_code, "client_id": form["client_id"],
                                           "scope": form.get("scope", ""), "state": "pending",
                                           "expires": time.time() + 300, "polls": 0}
                    uri = outer.idp.issuer + "/device"
                    return self.answer(200, {"device_code": code, "user_code": user_code,
                                             "verification_uri": uri,
                                             "verification_uri_complete": uri + "?user_code=" + user_code,
                                             "expires_in": 300, "interval": 1})
                if self.path == "/token":
                    if form.get("grant_type") != outer.DEVICE_GRANT:
                        return self.answer(400, {"error": "unsupported_grant_type"})
                    d = outer.devices.get(form.get("device_code", ""))
                    if d is None or d["client_id"] != form.get("client_id"):
                        return self.answer(400, {"error": "invalid_grant"})
                    d["polls"] += 1
                    if time.time() > d["expires"]:
                        return self.answer(400, {"error": "expired_token"})
                    if outer.slow_down_once and d["polls"] == 1:
                        return self.answer(400, {"error": "slow_down"})
                    if d["state"] == "pending":
                        return self.answer(400, {"error": "authorization_pending"})
                    if d["state"] == "denied":
                        return self.answer(400, {"error": "access_denied"})
                    d["state"] = "used"  # a device code is good once
                    token = outer.idp.token(d["user"], d["groups"], aud=d["client_id"])
                    return self.answer(200, {"id_token": token, "access_token": "at-" + code_hint(d),
                                             "token_type": "Bearer", "expires_in": 600})
                self.send_error(404)

            def page(self, status, html):
                data = html.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.requests.append(self.path)
                if self.path == "/device" or self.path.startswith("/device?"):
                    # The page a person opens (verification_uri): enter the
                    # code, say who you are (this test provider has no
                    # passwords), approve or deny.
                    q = parse_qs(urlsplit(self.path).query)
                    code = html.escape(q.get("user_code", [""])[0], quote=True)
                    return self.page(200, f"""<!doctype html>
<html><head><title>Demo identity provider: device login</title></head>
<body><h1>Sign in a device</h1>
<form method="get" action="/device/approve">
<p><label>Code <input name="user_code" value="{code}" required></label></p>
<p><label>User <input name="user" value="alice@example.com" required></label></p>
<p><label>Groups <input name="groups" value="engineers,dba"></label></p>
<p><button type="submit">Approve</button>
<button type="submit" name="deny" value="1">Deny</button></p>
</form></body></html>
""")
                if self.path.startswith("/device/approve?"):
                    q = parse_qs(urlsplit(self.path).query)
                    user_code = q.get("user_code", [""])[0]
                    found = [d for d in outer.devices.values()
                             if d["user_code"] == user_code and d["state"] == "pending"]
                    if not found:
                        return self.answer(404, {"error": "no pending code " + user_code})
                    d = found[0]
                    if q.get("deny", [""])[0]:
                        d["state"] = "denied"
                    else:
                        d["user"] = q.get("user", [""])[0]
                        d["groups"] = [g for g in q.get("groups", [""])[0].split(",") if g]
                        d["state"] = "approved"
                    if "text/html" in self.headers.get("Accept", ""):
                        return self.page(200, "<!doctype html><p>Device login %s. You can "
                                              "close this page.</p>" % d["state"])
                    return self.answer(200, {"state": d["state"]})
                if self.path.startswith("/token?"):
                    # A test provider's convenience (loopback only): a
                    # token for whoever asks, as after a login.
                    q = parse_qs(urlsplit(self.path).query)
                    user = q.get("user", [""])[0]
                    groups = [g for g in q.get("groups", [""])[0].split(",") if g]
                    if not user:
                        self.send_error(400, "user= is required")
                        return
                    data = (outer.idp.token(user, groups, lifetime=8 * 3600) + "\n").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": outer.idp.issuer, "jwks_uri": outer.idp.issuer + "/keys",
                            "token_endpoint": outer.idp.issuer + "/token",
                            "device_authorization_endpoint": outer.idp.issuer + "/device/authorize",
                            "grant_types_supported": [outer.DEVICE_GRANT]}
                elif self.path == "/keys":
                    body = outer.idp.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
