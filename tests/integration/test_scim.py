"""SCIM 2.0 provisioning, end to end with real processes: warden-control
serves SCIM over HTTPS; requests shaped exactly as Okta's and Entra ID's
provisioning send them create users and groups, change group membership
and deactivate users. Those changes reach a real warden-proxy in the next
policy revision and change what a connected psycopg2 client may do (at its
next statement), close a deactivated user's open session, and refuse their
new connections with SQLSTATE 28000. Tokens come from a fake identity
provider whose keys the test generates."""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from fakeidp import IdpServer  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: contractors }
spec:
  environments: [prod]
  rules:
    - name: contractors-read-only
      match: { identity: { groups: [contractors] }, classes: [write, ddl] }
      action: deny
      message: contractors may only read
    - name: finance-reads-only
      match: { identity: { attributes: { department: "Fin*" } }, classes: [write, ddl] }
      action: deny
      message: finance reads only
"""

WRITE = "UPDATE customers SET name = name WHERE false"


class ScimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-scim-")
        cls.proxy = cls.control = cls.server = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            cls.server = IdpServer(cls.certs["cert"], cls.certs["key"], free_port())
            cls.idp = cls.server.idp
            cls.scim_port = free_port()
            cls.control = ControlPlane(cls.work, extra_args=[
                "--idp-ca-file", cls.certs["ca"],
                "--scim-listen", "127.0.0.1:%d" % cls.scim_port]).start()
            assert wait_until(lambda: "SCIM endpoint ready" in cls.control.log()), \
                cls.control.log()
            cls.control.push_files({"prod.yaml": POLICY,
                                    "idp.yaml": cls.idp.provider_yaml("corp")})
            cls.scim_token = cls.control.create_token("okta-provisioning", "--scope", "scim")
            cls.reader_token = cls.control.create_token("reader", "--scope", "policy:read")
            cls.port, cls.cert_port = free_port(), free_port()
            config = f"""
proxy: {{ workers: 2, log_level: info }}
{cls.control.proxy_policy(os.path.join(cls.work, 'state'), "prod", "scim-p1")}
audit: {{ mode: async, spool_dir: {os.path.join(cls.work, 'spool')} }}
listeners:
  - name: main
    port: {cls.port}
    environment: prod
    auth: token
    tls: {{ mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']} }}
  - name: certs
    port: {cls.cert_port}
    environment: prod
    auth: cert
    tls: {{ mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream:
          host: 127.0.0.1
          port: {cls.pg.port}
          database: shop
          user: warden_svc
          password: svc-scram-pw
users:
  - name: breakglass
    password: breakglass-pw-not-used-here
"""
            cls.proxy = WardenProxy(config, cls.work, {"main": cls.port,
                                                       "certs": cls.cert_port}).start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for part in (cls.proxy, cls.control):
            if part:
                part.stop()
        if cls.server:
            cls.server.stop()
        cls.pg.stop()

    def scim(self, method, path, body=None, token=None, query=None):
        """One HTTPS request as a provisioning client sends it: returns
        (status, parsed body or None, headers)."""
        url = "https://localhost:%d/scim/v2%s" % (self.scim_port, path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/scim+json")
        if token != "":
            req.add_header("Authorization", "Bearer " + (token or self.scim_token))
        ctx = ssl.create_default_context(cafile=self.control.ca_file)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None, resp.headers
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None, e.headers

    def connect(self, user, groups=()):
        return psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=user,
                                password=self.idp.token(user, list(groups)),
                                sslmode="verify-full", sslrootcert=self.certs["ca"],
                                connect_timeout=10)

    @staticmethod
    def write_refused(conn):
        """True if the policy refuses the write on this open session."""
        with conn.cursor() as cur:
            try:
                cur.execute(WRITE)
            except psycopg2.Error as e:
                conn.rollback()
                if e.pgcode == "42501" and "contractors may only read" in str(e):
                    return True
                raise
        conn.rollback()
        return False

    def test_0_the_endpoint_requires_a_scim_token(self):
        status, body, _ = self.scim("GET", "/Users", token="")
        self.assertEqual(status, 401)
        self.assertIn("Bearer", body["detail"])
        status, body, _ = self.scim("GET", "/Users", token="wdn_0000000000000000_" + "0" * 64)
        self.assertEqual(status, 401)
        status, body, _ = self.scim("GET", "/Users", token=self.reader_token)
        self.assertEqual(status, 403)
        self.assertIn("lacks the scim scope", body["detail"])
        self.assertEqual(body["schemas"], ["urn:ietf:params:scim:api:messages:2.0:Error"])
        # Nor does the operator's admin token work there (red team).
        status, body, _ = self.scim("GET", "/Users", token=self.control.admin_token())
        self.assertEqual(status, 403, body)
        self.assertIn("lacks the scim scope", body["detail"])
        status, body, _ = self.scim("GET", "/ServiceProviderConfig")
        self.assertEqual(status, 200)
        self.assertTrue(body["patch"]["supported"])

    def test_1_okta_provisioning_changes_what_a_connected_user_may_do(self):
        name = "alice@example.com"
        # Okta looks the user up first, then creates it.
        status, body, _ = self.scim("GET", "/Users",
                                    query={"filter": 'userName eq "%s"' % name,
                                           "startIndex": "1", "count": "100"})
        self.assertEqual((status, body["totalResults"]), (200, 0))
        status, user, headers = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": name,
            "name": {"givenName": "Alice", "familyName": "Anders"},
            "emails": [{"primary": True, "value": name, "type": "work"}],
            "displayName": "Alice Anders", "locale": "en-US", "externalId": "00u1abcd",
            "groups": [], "active": True})
        self.assertEqual(status, 201, user)
        alice = user["id"]
        self.assertEqual(headers["Location"], user["meta"]["location"])
        self.assertEqual(user["name"]["givenName"], "Alice")
        status, again, _ = self.scim("POST", "/Users", {"schemas": [USER], "userName": name})
        self.assertEqual((status, again["scimType"]), (409, "uniqueness"))
        status, body, _ = self.scim("GET", "/Users",
                                    query={"filter": 'userName eq "ALICE@example.com"'})
        self.assertEqual([r["id"] for r in body["Resources"]], [alice])

        conn = self.connect(name)  # her token carries no groups
        self.assertFalse(self.write_refused(conn))

        status, group, _ = self.scim("POST", "/Groups", {
            "schemas": [GROUP], "displayName": "contractors", "members": []})
        self.assertEqual(status, 201, group)
        gid = group["id"]
        status, _, _ = self.scim("PATCH", "/Groups/" + gid, {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members",
                            "value": [{"value": alice, "display": name}]}]})
        self.assertEqual(status, 204)
        # The same open session: refused from its next statement on, once
        # the new revision reached the proxy.
        self.assertTrue(wait_until(lambda: self.write_refused(conn)), self.proxy.log()[-2000:])
        status, body, _ = self.scim("GET", "/Groups/" + gid)
        self.assertEqual([m["value"] for m in body["members"]], [alice])

        status, _, _ = self.scim("PATCH", "/Groups/" + gid, {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": 'members[value eq "%s"]' % alice}]})
        self.assertEqual(status, 204)
        self.assertTrue(wait_until(lambda: not self.write_refused(conn)))

        # Deactivation: the idle session is closed by the proxy, and new
        # connections are refused with the reason.
        status, body, _ = self.scim("PATCH", "/Users/" + alice, {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual((status, body["active"]), (200, False))
        self.assertTrue(wait_until(
            lambda: "alice@example.com is deactivated in Warden's directory: deactivated "
                    "by the identity provider (SCIM); closing it" in self.proxy.log()),
            self.proxy.log()[-2000:])
        with self.assertRaises(psycopg2.Error):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        conn.close()
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(name).close()
        self.assertIn("alice@example.com is deactivated", str(cm.exception))

        # Okta reactivates with a PUT of the whole user.
        user["active"] = True
        status, body, _ = self.scim("PUT", "/Users/" + alice, user)
        self.assertEqual((status, body["active"]), (200, True))
        self.assertTrue(wait_until(lambda: self.try_connect(name)))

    def try_connect(self, name):
        try:
            self.connect(name).close()
            return True
        except psycopg2.OperationalError:
            return False

    def test_2_entra_id_provisioning_changes_what_a_connected_user_may_do(self):
        name = "bob@example.com"
        status, body, _ = self.scim("GET", "/Users",
                                    query={"filter": 'userName eq "%s"' % name})
        self.assertEqual(body["totalResults"], 0)
        status, user, _ = self.scim("POST", "/Users", {
            "schemas": [USER, ENTERPRISE], "externalId": "bob", "userName": name,
            "active": True, "displayName": "Bob Berg",
            "emails": [{"primary": True, "type": "work", "value": name}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Bob Berg", "familyName": "Berg", "givenName": "Bob"},
            ENTERPRISE: {"department": "Operations"}})
        self.assertEqual(status, 201, user)
        bob = user["id"]
        self.assertIn(ENTERPRISE, user["schemas"])
        # Entra ID's attribute updates: paths, a value filter, a schema URN.
        status, user, _ = self.scim("PATCH", "/Users/" + bob, {
            "schemas": [PATCH], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Bobby Berg"},
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "bob.berg@example.com"},
                {"op": "Replace", "path": ENTERPRISE + ":department", "value": "Security"},
                {"op": "Replace", "path": "name.givenName", "value": "Bobby"}]})
        self.assertEqual(status, 200, user)
        self.assertEqual(user["displayName"], "Bobby Berg")
        self.assertEqual(user["emails"][0]["value"], "bob.berg@example.com")
        self.assertEqual(user[ENTERPRISE]["department"], "Security")
        self.assertEqual(user["name"]["givenName"], "Bobby")
        status, body, _ = self.scim("GET", "/Users",
                                    query={"filter": 'externalId eq "bob"'})
        self.assertEqual([r["id"] for r in body["Resources"]], [bob])

        status, body, _ = self.scim("GET", "/Groups",
                                    query={"filter": 'displayName eq "contractors"',
                                           "excludedAttributes": "members"})
        self.assertEqual(body["totalResults"], 1)
        self.assertNotIn("members", body["Resources"][0])
        gid = body["Resources"][0]["id"]

        conn = self.connect(name)
        self.assertFalse(self.write_refused(conn))
        status, _, _ = self.scim("PATCH", "/Groups/" + gid, {
            "schemas": [PATCH],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": bob}]}]})
        self.assertEqual(status, 204)
        self.assertTrue(wait_until(lambda: self.write_refused(conn)))
        status, _, _ = self.scim("PATCH", "/Groups/" + gid, {
            "schemas": [PATCH],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": bob}]}]})
        self.assertEqual(status, 204)
        self.assertTrue(wait_until(lambda: not self.write_refused(conn)))

        # Entra ID disables with the string "False".
        status, body, _ = self.scim("PATCH", "/Users/" + bob, {
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        self.assertEqual((status, body["active"]), (200, False))
        self.assertTrue(wait_until(lambda: conn.closed or not self.alive(conn)))
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(name).close()
        self.assertIn("bob@example.com is deactivated", str(cm.exception))
        # A deleted user stays refused (their token is still valid).
        status, _, _ = self.scim("DELETE", "/Users/" + bob)
        self.assertEqual(status, 204)
        status, _, _ = self.scim("GET", "/Users/" + bob)
        self.assertEqual(status, 404)
        with self.assertRaises(psycopg2.OperationalError):
            self.connect(name).close()

    @staticmethod
    def alive(conn):
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except psycopg2.Error:
            return False

    def test_3_changes_are_in_the_audit_log(self):
        def admin_events():
            r = subprocess.run([WARDENCTL, "audit", "search", "--kind", "admin",
                                "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            return [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
        events = admin_events()
        actions = [(e["admin"]["action"], e["admin"].get("target")) for e in events]
        self.assertIn(("directory.user.create", "alice@example.com"), actions)
        self.assertIn(("directory.user.deactivate", "alice@example.com"), actions)
        self.assertIn(("directory.user.reactivate", "alice@example.com"), actions)
        self.assertIn(("directory.user.delete", "bob@example.com"), actions)
        self.assertIn(("directory.group.update", "contractors"), actions)
        deactivate = next(e for e in events if e["admin"]["action"] == "directory.user.deactivate")
        self.assertEqual(deactivate["admin"].get("actor", deactivate["identity"]["user"]),
                         "token:okta-provisioning")
        # The proxy audited the refused logins with the reason (its sender
        # is asynchronous: wait for delivery).
        def refused_reasons():
            r = subprocess.run([WARDENCTL, "audit", "search", "--kind", "authentication",
                                "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            events = [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
            return [e["authentication"].get("reason", "") for e in events
                    if not e["authentication"].get("success")]
        self.assertTrue(wait_until(lambda: any(
            "deactivated in Warden's directory" in reason
            for reason in refused_reasons())))
        # One AUTHENTICATION event per login: a refused deactivated user's
        # session has its failure and no success (red team: "authentication
        # ok" then "FAILED" read as a deactivated user logging in).
        r = subprocess.run([WARDENCTL, "audit", "search", "--kind", "authentication",
                            "--limit", "100000", "--format", "json"], env=self.control.env(),
                           capture_output=True, text=True, timeout=60)
        by_session = {}
        for line in r.stdout.splitlines():
            if line.strip():
                e = json.loads(line)["leaf"]["event"]
                by_session.setdefault(e.get("session_id"), []).append(e["authentication"])
        refused = [auths for auths in by_session.values()
                   if any("deactivated in Warden's directory" in a.get("reason", "")
                          for a in auths)]
        self.assertTrue(refused)
        for auths in refused:
            self.assertEqual(len(auths), 1, auths)

    def test_4_wardenctl_cuts_off_a_user_the_directory_never_saw(self):
        name = "carol@example.com"  # not provisioned: her token is enough
        conn = self.connect(name, ["engineers"])
        self.assertTrue(self.alive(conn))

        def ctl(*args):
            return subprocess.run([WARDENCTL, "identities", *args], env=self.control.env(),
                                  capture_output=True, text=True, timeout=60)
        r = ctl("deactivate", name, "--reason", "laptop stolen")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deactivated carol@example.com (not in the directory before)", r.stdout)
        self.assertTrue(wait_until(lambda: not self.alive(conn)), self.proxy.log()[-2000:])
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(name).close()
        # The refusal names who cut her off: an administrator, not the
        # identity provider (issue 15).
        self.assertIn("carol@example.com is deactivated in Warden's directory: deactivated "
                      "by an administrator (", str(cm.exception))
        self.assertIn(") with wardenctl identities deactivate", str(cm.exception))
        r = ctl("list", "--format", "json")
        listed = {i["user_name"]: i for i in json.loads(r.stdout)["identities"]}
        self.assertFalse(listed[name]["active"])
        self.assertTrue(listed["alice@example.com"]["active"])
        self.assertNotIn("bob@example.com", listed)  # deleted
        # SCIM sees her too (an Okta push would find and link her).
        status, body, _ = self.scim("GET", "/Users", query={"filter": 'userName eq "%s"' % name})
        self.assertEqual(body["Resources"][0]["active"], False)
        r = ctl("activate", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: self.try_connect(name)))
        # A policy:read token may list but not deactivate.
        r = subprocess.run([WARDENCTL, "identities", "deactivate", name],
                           env=self.control.env(self.reader_token),
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("scope", r.stderr.lower())

    def test_5_directory_attributes_are_what_policies_match(self):
        name = "fay@example.com"
        status, user, _ = self.scim("POST", "/Users", {
            "schemas": [USER, ENTERPRISE], "userName": name, "active": True,
            ENTERPRISE: {"department": "Finance"}, "title": "Analyst"})
        self.assertEqual(status, 201, user)
        conn = self.connect(name)

        def finance_refused():
            with conn.cursor() as cur:
                try:
                    cur.execute(WRITE)
                except psycopg2.Error as e:
                    conn.rollback()
                    self.assertIn("finance reads only", str(e))
                    return True
            conn.rollback()
            return False
        self.assertTrue(wait_until(finance_refused), self.proxy.log()[-2000:])
        # Entra ID moves her to another department: the same session may
        # write at its next statement.
        status, _, _ = self.scim("PATCH", "/Users/" + user["id"], {
            "schemas": [PATCH], "Operations": [
                {"op": "Replace", "path": ENTERPRISE + ":department", "value": "Engineering"}]})
        self.assertEqual(status, 200)
        self.assertTrue(wait_until(lambda: not finance_refused()))
        conn.close()
        # The audit trail shows what the policy saw (once the proxy's
        # asynchronous sender has delivered the last statements).
        def events():
            r = subprocess.run([WARDENCTL, "audit", "search", "--user", name, "--kind",
                                "statement", "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            return [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]

        def departments():
            return {e["identity"].get("attributes", {}).get("department") for e in events()}
        self.assertTrue(wait_until(lambda: {"Finance", "Engineering"} <= departments()),
                        departments())
        # (Statements before the directory reached the proxy had none.)
        self.assertTrue(all(e["identity"]["attributes"].get("title") == "Analyst"
                            for e in events() if e["identity"].get("attributes")))

    def test_6_an_alias_cannot_borrow_another_entry(self):
        """Issue 14, item 4, over the wire: a deactivated user does not get
        back in through an active user who carries their e-mail, and an
        e-mail two active users carry names no one."""
        def post(body):
            status, user, _ = self.scim("POST", "/Users", dict({"schemas": [USER]}, **body))
            self.assertEqual(status, 201, user)
            return user["id"]

        def refusal(name):
            try:
                self.connect(name).close()
                return None
            except psycopg2.OperationalError as e:
                return str(e)

        dave_mail = "dave@example.com"
        dave = post({"userName": "dave", "active": True,
                     "emails": [{"primary": True, "value": dave_mail, "type": "work"}]})
        # His token names him by e-mail: the alias finds his entry.
        self.assertTrue(wait_until(lambda: self.try_connect(dave_mail)), self.proxy.log()[-2000:])
        status, body, _ = self.scim("PATCH", "/Users/" + dave, {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual((status, body["active"]), (200, False))
        self.assertTrue(wait_until(lambda: refusal(dave_mail) is not None))
        # Someone else, active, with Dave's e-mail, in a group (contractors,
        # whose writes the policy refuses: that tells when the proxy has her).
        status, found, _ = self.scim("GET", "/Groups",
                                     query={"filter": 'displayName eq "contractors"'})
        if found["totalResults"]:
            gid = found["Resources"][0]["id"]
        else:
            status, group, _ = self.scim("POST", "/Groups", {
                "schemas": [GROUP], "displayName": "contractors", "members": []})
            self.assertEqual(status, 201, group)
            gid = group["id"]
        mallory = post({"userName": "mallory", "active": True,
                        "emails": [{"value": dave_mail, "type": "home"}]})
        status, _, _ = self.scim("PATCH", "/Groups/" + gid, {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": mallory}]}]})
        self.assertEqual(status, 204)
        conn = self.connect("mallory")
        self.assertTrue(wait_until(lambda: self.write_refused(conn)), self.proxy.log()[-2000:])
        conn.close()
        # The proxy has her entry and group: Dave stays out, under any
        # spelling of his e-mail.
        for spelling in (dave_mail, "Dave@Example.COM"):
            message = refusal(spelling)
            self.assertIsNotNone(message, spelling)
            self.assertIn("is deactivated in Warden's directory", message)
        # Mallory herself is fine under her own name.
        self.assertTrue(self.try_connect("mallory"))

        # Two active users carrying one e-mail: it names no one for sure.
        shared = "ops@example.com"
        post({"userName": "olga", "active": True, "emails": [{"value": shared}]})
        self.assertTrue(wait_until(lambda: self.try_connect(shared)))
        post({"userName": "oscar", "active": True, "emails": [{"value": shared}]})
        self.assertTrue(wait_until(lambda: refusal(shared) is not None))
        self.assertIn("alias of more than one user", refusal(shared))
        self.assertTrue(self.try_connect("olga"))

        # The refusals are in the audit trail, under the name that was tried.
        def refused_logins():
            r = subprocess.run([WARDENCTL, "audit", "search", "--user", dave_mail,
                                "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            return [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
        self.assertTrue(wait_until(lambda: any(
            "deactivated" in json.dumps(e) for e in refused_logins())))

    def test_7_a_large_directory_still_reaches_the_proxies(self):
        """Red team: users with 5 MB attributes made the bundle larger than
        gRPC's default 4 MiB; every proxy then kept its last revision, so a
        deactivation never arrived. A user is now at most 64 KiB (refused
        with the reason), the attributes proxies receive at most 256 bytes
        each, and proxies accept bundles above 4 MiB."""
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER, ENTERPRISE], "userName": "huge@example.com",
            "nickName": "d" * 5000000})
        self.assertEqual(status, 400, body)
        self.assertIn("larger than 64 KiB", body["detail"])
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "many@example.com",
            "emails": [{"value": "m%d@example.com" % i} for i in range(40)]})
        self.assertEqual(status, 400, body)
        self.assertIn("at most 16 emails", body["detail"])
        # What every proxy receives of a user is bounded too: the
        # attributes policies match are short strings (red team pass 5:
        # 30 KB titles made a 78 MB bundle).
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER, ENTERPRISE], "userName": "long@example.com",
            ENTERPRISE: {"department": "d" * 257}})
        self.assertEqual(status, 400, body)
        self.assertIn("department is longer than 256 bytes", body["detail"])
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "long@example.com", "title": "t" * 257})
        self.assertEqual(status, 400, body)
        self.assertIn("title is longer than 256 bytes", body["detail"])
        # 800 users at those limits (16 e-mails and 7 attributes each): a
        # directory of about 4.7 MB in the bundle, over gRPC's default.
        attrs = {k: "a" * 256 for k in ("department", "organization", "division",
                                        "costCenter", "employeeNumber")}
        for i in range(800):
            status, body, _ = self.scim("POST", "/Users", {
                "schemas": [USER, ENTERPRISE], "userName": "bulk%d@example.com" % i,
                "title": "t" * 256, "userType": "u" * 256,
                "emails": [{"value": ("b%d-%d-" % (i, j)).ljust(240, "x") + "@example.com"}
                           for j in range(16)],
                ENTERPRISE: attrs})
            self.assertEqual(status, 201, body)
        name = "late@example.com"
        conn = self.connect(name)
        conn.close()
        r = subprocess.run([WARDENCTL, "identities", "deactivate", name, "--reason", "test"],
                           env=self.control.env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: not self.try_connect(name), timeout=30),
                        self.proxy.log()[-2000:])
        self.assertNotIn("larger than max", self.proxy.log())
        bundle = os.path.join(self.work, "state", "last-known-good.bundle")
        self.assertGreater(os.path.getsize(bundle), 4 << 20)

    def test_8_a_rename_or_a_new_account_does_not_lift_a_deactivation(self):
        """Red team: an admin's deactivation was undone by a SCIM rename of
        the user, or by DELETE and POST of the same userName; a SCIM
        deactivation by a rename. The hold is on the name now, and a
        deactivated user's old name stays refused."""
        def ctl(*args):
            r = subprocess.run([WARDENCTL, "identities", *args], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)

        def post(name, active=True):
            status, user, _ = self.scim("POST", "/Users", {
                "schemas": [USER], "userName": name, "active": active})
            self.assertEqual(status, 201, user)
            return user

        def rename(user, new_name):
            status, body, _ = self.scim("PATCH", "/Users/" + user["id"], {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "userName", "value": new_name}]})
            self.assertEqual(status, 200, body)

        # Admin hold, then a rename.
        ian = post("ian@example.com")
        ctl("deactivate", "ian@example.com", "--reason", "incident 43")
        self.assertTrue(wait_until(lambda: not self.try_connect("ian@example.com")))
        rename(ian, "old.ian@example.com")
        post("marker1@example.com", active=False)  # a later revision
        self.assertTrue(wait_until(lambda: not self.try_connect("marker1@example.com")))
        self.assertFalse(self.try_connect("ian@example.com"))
        self.assertFalse(self.try_connect("old.ian@example.com"))

        # Admin hold, then DELETE and POST of the same name.
        henry = post("henry@example.com")
        ctl("deactivate", "henry@example.com", "--reason", "incident 44")
        self.assertTrue(wait_until(lambda: not self.try_connect("henry@example.com")))
        status, _, _ = self.scim("DELETE", "/Users/" + henry["id"])
        self.assertEqual(status, 204)
        post("henry@example.com")
        post("marker2@example.com", active=False)
        self.assertTrue(wait_until(lambda: not self.try_connect("marker2@example.com")))
        self.assertFalse(self.try_connect("henry@example.com"))
        # Only an admin lifts it.
        ctl("activate", "henry@example.com")
        self.assertTrue(wait_until(lambda: self.try_connect("henry@example.com")),
                        self.proxy.log()[-2000:])

        # Deactivated by the identity provider, then renamed: tokens for
        # the old name (still valid for a while) stay refused.
        kim = post("kim@example.com")
        status, _, _ = self.scim("PATCH", "/Users/" + kim["id"], {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual(status, 200)
        self.assertTrue(wait_until(lambda: not self.try_connect("kim@example.com")))
        rename(kim, "kim.renamed@example.com")
        post("marker3@example.com", active=False)
        self.assertTrue(wait_until(lambda: not self.try_connect("marker3@example.com")))
        self.assertFalse(self.try_connect("kim@example.com"))
        self.assertFalse(self.try_connect("kim.renamed@example.com"))

        # Deactivated, then the e-mail alias his tokens carry is removed.
        status, lena, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "lena", "active": True,
            "emails": [{"value": "lena.mail@example.com", "primary": True}]})
        self.assertEqual(status, 201, lena)
        self.assertTrue(wait_until(lambda: self.try_connect("lena.mail@example.com")))
        status, _, _ = self.scim("PATCH", "/Users/" + lena["id"], {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual(status, 200)
        self.assertTrue(wait_until(lambda: not self.try_connect("lena.mail@example.com")))
        status, body, _ = self.scim("PATCH", "/Users/" + lena["id"], {
            "schemas": [PATCH], "Operations": [{"op": "remove", "path": "emails"}]})
        self.assertEqual(status, 200, body)
        post("marker4@example.com", active=False)
        self.assertTrue(wait_until(lambda: not self.try_connect("marker4@example.com")))
        self.assertFalse(self.try_connect("lena.mail@example.com"))

    def test_8b_a_credential_of_a_names_earlier_holder_is_refused(self):
        """Red team pass 7: the provider deleted nora and later created a new
        user named nora; a token (or a certificate, valid for hours) issued
        to the first nora passed as the new one. A credential issued before
        the name became its current user's is refused."""
        name = "nora@example.com"
        status, nora, _ = self.scim("POST", "/Users", {"schemas": [USER], "userName": name})
        self.assertEqual(status, 201, nora)
        self.assertTrue(wait_until(lambda: self.try_connect(name)))
        issued = int(time.time()) - 5   # the first nora's token, still valid
        old_token = self.idp.token(name, iat=issued, exp=issued + 3600)
        status, _, _ = self.scim("DELETE", "/Users/" + nora["id"])
        self.assertEqual(status, 204)
        status, body, _ = self.scim("POST", "/Users", {"schemas": [USER], "userName": name})
        self.assertEqual(status, 201, body)
        status, body, _ = self.scim("POST", "/Users", {"schemas": [USER], "active": False,
                                                       "userName": "marker8b@example.com"})
        self.assertEqual(status, 201, body)
        self.assertTrue(wait_until(lambda: not self.try_connect("marker8b@example.com")))
        time.sleep(1.1)   # the new nora's token below is of a later second
        with self.assertRaises(psycopg2.OperationalError) as cm:
            psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=name,
                             password=old_token, sslmode="verify-full",
                             sslrootcert=self.certs["ca"], connect_timeout=10).close()
        self.assertIn("this credential was issued before the name became its current user's",
                      str(cm.exception))
        # The new nora's own token works.
        self.assertTrue(self.try_connect(name))

    def test_8c_a_name_moved_between_active_users_refuses_its_earlier_holders_credentials(self):
        """Red team pass 9 (R1, R2): no deleted record is kept when a name
        moves between two active users (an e-mail removed from one and
        given to another; a userName renamed away, taken by someone else,
        then renamed back), so the earlier holder's token or certificate
        still passed as the new one. Every name now records when its
        current user took it; older credentials for it are refused, on the
        proxy and by wardenctl login."""
        def post(name, emails=()):
            status, user, _ = self.scim("POST", "/Users", {
                "schemas": [USER], "userName": name, "active": True,
                "emails": [{"value": e} for e in emails]})
            self.assertEqual(status, 201, user)
            return user

        def patch(user, *ops):
            status, body, _ = self.scim("PATCH", "/Users/" + user["id"],
                                        {"schemas": [PATCH], "Operations": list(ops)})
            self.assertEqual(status, 200, body)

        def old_token(name):
            issued = int(time.time()) - 5   # still valid for an hour
            return self.idp.token(name, iat=issued, exp=issued + 3600)

        def refusal(name, token):
            try:
                psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=name,
                                 password=token, sslmode="verify-full",
                                 sslrootcert=self.certs["ca"], connect_timeout=10).close()
                return None
            except psycopg2.OperationalError as e:
                return str(e)

        marker = [0]

        def settle():
            # Tokens minted from here on are of a later second than the
            # change (a token of the same second may be the earlier
            # holder's, and is refused).
            time.sleep(1.1)
            marker[0] += 1
            name = "marker8c-%d@example.com" % marker[0]
            status, body, _ = self.scim("POST", "/Users", {"schemas": [USER], "active": False,
                                                           "userName": name})
            self.assertEqual(status, 201, body)
            self.assertTrue(wait_until(lambda: not self.try_connect(name)))

        # R1: an e-mail moved from one active user to another.
        alias = "desk8c@example.com"
        ann = post("ann8c@example.com", [alias])
        self.assertTrue(wait_until(lambda: self.try_connect(alias)))
        anns = old_token(alias)
        self.assertIsNone(refusal(alias, anns))   # hers, while she has it
        # Her certificate for it too (wardenctl login while she has it).
        r = self.login_with_token("ann8c", anns)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIsNone(self.cert_refusal(alias, "ann8c"))
        patch(ann, {"op": "remove", "path": "emails"})
        post("ben8c@example.com", [alias])
        settle()
        why = refusal(alias, anns)
        self.assertIsNotNone(why, "Ann's token for the moved e-mail passed as Ben")
        self.assertIn("this credential was issued before the name became its current user's "
                      "(%s since" % alias, why)
        why = self.cert_refusal(alias, "ann8c")
        self.assertIsNotNone(why, "Ann's certificate for the moved e-mail passed as Ben")
        self.assertIn("this credential was issued before the name became its current user's",
                      why)
        # Not through wardenctl login either: a fresh certificate would
        # pass the proxies' check.
        r = self.login_with_token(alias, anns)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("this token was issued before the name %s became its current user's" % alias,
                      r.stderr)
        self.assertTrue(self.try_connect(alias))   # Ben's own token
        r = self.login_with_token(alias, self.idp.token(alias))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # An e-mail two users shared (ambiguous, refused) and one gives up:
        # a token for it issued before then may be the other's.
        shared = "shared8c@example.com"
        cat = post("cat8c@example.com", [shared])
        post("dan8c@example.com", [shared])
        earlier = old_token(shared)
        time.sleep(1.1)   # a token's iat is in whole seconds
        patch(cat, {"op": "remove", "path": "emails"})
        settle()
        self.assertIsNotNone(refusal(shared, earlier))
        self.assertTrue(self.try_connect(shared))   # Dan's token from now on

        # R2: a userName renamed away, taken by another user, renamed back.
        sal = post("sal8c@example.com")
        patch(sal, {"op": "replace", "path": "userName", "value": "sal8c.away@example.com"})
        bo = post("sal8c@example.com")
        settle()
        self.assertTrue(self.try_connect("sal8c@example.com"))
        bos = self.idp.token("sal8c@example.com")
        time.sleep(1.1)
        patch(bo, {"op": "replace", "path": "userName", "value": "bo8c@example.com"})
        patch(sal, {"op": "replace", "path": "userName", "value": "sal8c@example.com"})
        settle()
        self.assertIsNotNone(refusal("sal8c@example.com", bos),
                             "Bo's token passed as Sal after Sal took the name back")
        self.assertTrue(self.try_connect("sal8c@example.com"))

    def test_8d_a_directory_name_that_looks_like_a_configured_user_is_refused(self):
        """Red team pass 10: SCIM cannot know the proxies' configured users,
        so it accepts "Breakg1ass" next to a configured "breakglass"; once
        in the directory, its token connected (the proxy compared only
        names the directory did not know)."""
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "Breakg1ass", "active": True})
        self.assertEqual(status, 201, body)
        def refusal():
            try:
                self.connect("Breakg1ass").close()
                return None
            except psycopg2.OperationalError as e:
                return str(e)
        # A later change that the proxy applies: then Breakg1ass is a
        # directory name there too.
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "marker8d@example.com", "active": False})
        self.assertEqual(status, 201, body)
        self.assertTrue(wait_until(lambda: not self.try_connect("marker8d@example.com")))
        why = refusal()
        self.assertIsNotNone(why, "a look-alike of a configured user connected")
        self.assertIn("looks like breakglass", why)

    def login_with_token(self, name, token):
        """wardenctl login with `token` into login-NAME; the completed process."""
        return self.control.login_with_token(
            self.cert_dir(name), token, "--proxy", "localhost:%d" % self.cert_port,
            "--dbname", "shop", "--proxy-ca-file", self.certs["ca"])

    def cert_dir(self, name):
        return os.path.join(self.work, "login-" + name)

    def cert_refusal(self, name, login):
        """None when the certificate `login_with_token(login, ...)` wrote
        connects as `name` on the certificate listener, else the error."""
        out = self.cert_dir(login)
        try:
            psycopg2.connect(host="localhost", port=self.cert_port, dbname="shop", user=name,
                             sslmode="verify-full", sslrootcert=self.certs["ca"],
                             sslcert=os.path.join(out, "client.crt"),
                             sslkey=os.path.join(out, "client.key"), connect_timeout=10).close()
            return None
        except psycopg2.OperationalError as e:
            return str(e)

    def test_9_case_beyond_ascii_does_not_escape_a_deactivation(self):
        """Red team: only A-Z were folded, so deactivating "ÅSA@EXAMPLE.COM"
        (as the provider or the HR system spells it) did not stop a token
        for "åsa@example.com". Names now match by Unicode's canonical
        caseless form, in the directory, on the proxy and in SCIM filters."""
        status, asa, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "ÅSA@EXAMPLE.COM", "active": True})
        self.assertEqual(status, 201, asa)
        self.assertTrue(wait_until(lambda: self.try_connect("åsa@example.com")))
        # The provider looks her up in its own spelling before a PUT/POST.
        for spelling in ("åsa@example.com", "a\u030asa@EXAMPLE.com"):
            status, body, _ = self.scim(
                "GET", "/Users", query={"filter": 'userName eq "%s"' % spelling})
            self.assertEqual(status, 200, body)
            self.assertEqual([u["id"] for u in body["Resources"]], [asa["id"]], spelling)
        # A second account under another spelling of her name is refused.
        status, body, _ = self.scim("POST", "/Users", {
            "schemas": [USER], "userName": "åsa@example.com", "active": True})
        self.assertEqual(status, 409, body)
        status, _, _ = self.scim("PATCH", "/Users/" + asa["id"], {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual(status, 200)
        for spelling in ("åsa@example.com", "a\u030asa@example.com", "Åsa@Example.com"):
            self.assertTrue(wait_until(lambda: not self.try_connect(spelling)), spelling)

        # An admin types the name in capitals; the token carries lower case.
        self.assertTrue(self.try_connect("örjan@example.com"))
        r = subprocess.run([WARDENCTL, "identities", "deactivate", "ÖRJAN@example.com",
                            "--reason", "incident 45"], env=self.control.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: not self.try_connect("örjan@example.com")),
                        self.proxy.log()[-2000:])
        self.assertFalse(self.try_connect("o\u0308rjan@example.com"))
        # Not a different letter: "orjan" is someone else.
        self.assertTrue(self.try_connect("orjan@example.com"))

    def test_9z_activate_lifts_only_the_admins_hold(self):
        """Red team: `identities activate` re-admitted a user the identity
        provider had deleted or deactivated during an admin's hold (the
        incident closes after HR offboarded the person)."""
        def ctl(*args):
            r = subprocess.run([WARDENCTL, "identities", *args], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        def post(name, **extra):
            status, user, _ = self.scim("POST", "/Users", dict(
                {"schemas": [USER], "userName": name, "active": True}, **extra))
            self.assertEqual(status, 201, user)
            return user

        def marker(n):
            post("marker1%d@example.com" % n, active=False)
            self.assertTrue(wait_until(lambda: not self.try_connect("marker1%d@example.com" % n)))

        # Hold, then the provider deletes the user, then the hold is lifted.
        una = post("una@example.com")
        ctl("deactivate", "una@example.com", "--reason", "incident 46")
        status, _, _ = self.scim("DELETE", "/Users/" + una["id"])
        self.assertEqual(status, 204)
        out = ctl("activate", "una@example.com")
        self.assertIn("stays refused: the identity provider deleted it", out)
        marker(1)
        self.assertFalse(self.try_connect("una@example.com"))

        # Hold, then the provider deactivates, then the hold is lifted: the
        # provider's word stands, and SCIM still reads active false.
        vic = post("vic@example.com")
        ctl("deactivate", "vic@example.com", "--reason", "incident 47")
        status, _, _ = self.scim("PATCH", "/Users/" + vic["id"], {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        self.assertEqual(status, 200)
        out = ctl("activate", "vic@example.com")
        self.assertIn("the identity provider has vic@example.com deactivated", out)
        marker(2)
        self.assertFalse(self.try_connect("vic@example.com"))
        status, body, _ = self.scim("GET", "/Users/" + vic["id"])
        self.assertEqual(body["active"], False)
        # When the provider activates her again, she is back.
        status, _, _ = self.scim("PATCH", "/Users/" + vic["id"], {
            "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]})
        self.assertEqual(status, 200)
        self.assertTrue(wait_until(lambda: self.try_connect("vic@example.com")))

        # A hold on someone's e-mail holds the person, under every name.
        wes = post("wes", emails=[{"value": "wes.mail@example.com", "primary": True}])
        self.assertTrue(wait_until(lambda: self.try_connect("wes")))
        out = ctl("deactivate", "wes.mail@example.com", "--reason", "incident 48")
        self.assertIn("is an e-mail of user wes", out)
        self.assertTrue(wait_until(lambda: not self.try_connect("wes")))
        self.assertFalse(self.try_connect("wes.mail@example.com"))
        ctl("activate", "wes.mail@example.com")
        self.assertTrue(wait_until(lambda: self.try_connect("wes")))

        # An admin cut off a name before the provider knew it; the
        # provider's create is accepted, and the hold stays on the name.
        ctl("deactivate", "xan@example.com", "--reason", "incident 49")
        post("xan@example.com")
        marker(3)
        self.assertFalse(self.try_connect("xan@example.com"))
        ctl("activate", "xan@example.com")
        self.assertTrue(wait_until(lambda: self.try_connect("xan@example.com")))


if __name__ == "__main__":
    unittest.main()
