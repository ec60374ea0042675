"""The proxy config's own users are out of the identity provider's reach
(red team pass 5). Such users are the break-glass accounts for when the
identity provider is down or not trusted, yet a SCIM token (which "can do
nothing else") could lock them out, by creating or deactivating a user of
the same name in any case, and promote them, by putting a user of that
name in a group. Now the provider's directory applies to them only when
the config says `directory: true`; an administrator's `wardenctl
identities deactivate` reaches them either way. Real warden-control (with
SCIM), warden-proxy and PostgreSQL."""

import http.client
import json
import os
import ssl
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, free_port, rawpg, wait_until  # noqa: E402

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class BreakGlass(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scim_port = free_port()
        cls.stack = Stack("warden-sec-glass-", control_args=[
            "--scim-listen", "127.0.0.1:%d" % cls.scim_port], extra_users=[
            "{ name: carol, password: carol-pw, directory: true }"]).start()
        try:
            assert wait_until(lambda: "SCIM endpoint ready" in cls.stack.control.log())
            cls.token = cls.stack.control.create_token("okta", "--scope", "scim")
            cls.ctx = ssl.create_default_context(cafile=cls.stack.control.ca_file)
        except BaseException:
            cls.stack.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def scim(self, method, path, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.scim_port, context=self.ctx,
                                           timeout=20)
        try:
            conn.request(method, "/scim/v2" + path,
                         body=json.dumps(body).encode() if body is not None else None,
                         headers={"Authorization": "Bearer " + self.token,
                                  "Content-Type": "application/scim+json"})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def login(self, user, password):
        """None when the login and a statement work, else the error."""
        try:
            conn = self.stack.raw("prod", user, password)
        except RuntimeError as e:
            return e.args[0].get("M", str(e.args[0]))
        try:
            rows, error = conn.simple_query("SELECT 1")
            return None if error is None else error.get("M")
        except (EOFError, OSError) as e:
            # A deactivation that arrived between login and statement
            # closes the session.
            return "session closed: %s" % e
        finally:
            conn.close()

    def directory_revision_reached_proxy(self, before):
        """Waits until the proxy runs a bundle newer than `before` (the
        log line count of "in force")."""
        return wait_until(lambda: self.stack.proxy.log().count("in force") > before,
                          timeout=30)

    def identity_groups(self, user):
        events = [e for e in self.stack.events()
                  if e["event"].get("identity", {}).get("user") == user]
        return events[-1]["event"]["identity"].get("groups", []) if events else None

    def test_the_provider_cannot_lock_out_or_promote_a_config_user(self):
        self.assertIsNone(self.login("alice", "alice-pw"))
        # Lock-out attempt: a deactivated provider user "ALICE".
        n = self.stack.proxy.log().count("in force")
        status, body = self.scim("POST", "/Users", {"schemas": [USER], "userName": "ALICE",
                                                    "active": False})
        self.assertEqual(status, 201, body)
        self.assertTrue(self.directory_revision_reached_proxy(n))
        self.assertIsNone(self.login("alice", "alice-pw"))
        # Promotion attempt: the provider's "alice" in a group.
        status, _ = self.scim("DELETE", "/Users/" + body["id"])
        self.assertEqual(status, 204)
        status, body = self.scim("POST", "/Users", {"schemas": [USER], "userName": "alice"})
        self.assertEqual(status, 201, body)
        n = self.stack.proxy.log().count("in force")
        status, group = self.scim("POST", "/Groups", {
            "schemas": [GROUP], "displayName": "dba-from-scim", "members": [{"value": body["id"]}]})
        self.assertEqual(status, 201, group)
        self.assertTrue(self.directory_revision_reached_proxy(n))
        marker = "glass-%d" % os.getpid()
        conn = self.stack.raw("prod")
        self.assertIsNone(conn.simple_query("SELECT '%s'" % marker)[1])
        conn.close()
        self.assertTrue(self.stack.recorded(marker))
        self.assertNotIn("dba-from-scim", self.identity_groups("alice"))

        # An administrator's hold does reach her, and says who.
        r = self.stack.ctl("identities", "deactivate", "alice", "--reason", "test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(
            lambda: "deactivated by an administrator" in (self.login("alice", "alice-pw") or ""),
            timeout=30))
        r = self.stack.ctl("identities", "activate", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: self.login("alice", "alice-pw") is None, timeout=30))

    def test_a_config_user_may_opt_in_to_the_directory(self):
        self.assertIsNone(self.login("carol", "carol-pw"))
        status, body = self.scim("POST", "/Users", {"schemas": [USER], "userName": "carol",
                                                    "active": False})
        self.assertEqual(status, 201, body)
        self.assertTrue(wait_until(
            lambda: "deactivated by the identity provider (SCIM)"
            in (self.login("carol", "carol-pw") or ""), timeout=30))


if __name__ == "__main__":
    unittest.main()
