"""Reads the guardrail corpus (guardrails.sql beside this file) and turns
it into a PolicyTest document; shared by the corpus test and the
differential oracle, which mutates its statements."""

import ast
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "guardrails.sql")
ACTIONS = {"allow": "allow", "deny": "deny", "approval": "require_approval"}


class Step:
    def __init__(self, ident, sql, action, rule, params=()):
        self.id = ident            # unique: s<line> or <chain>.<n>
        self.sql = sql
        self.action = action       # allow, deny, require_approval
        self.rule = rule           # None: any rule
        self.params = tuple(params)

    def eval_sql(self):
        """The text `policy eval` judges: %s becomes $1, $2, ..."""
        n = [0]

        def number(_):
            n[0] += 1
            return "$%d" % n[0]
        return re.sub(r"%s", number, self.sql) if self.params else self.sql


class Chain:
    def __init__(self, name):
        self.name = name
        self.connect = {}          # startup parameters
        self.refused = False       # the proxy must refuse the connection
        self.steps = []


def _expectation(words, where):
    if not words or words[0] not in ACTIONS:
        raise ValueError("%s: expected allow, deny or approval, got %r" % (where, words))
    return ACTIONS[words[0]], (words[1] if len(words) > 1 else None)


def load(path=CORPUS):
    """Returns (statements, chains)."""
    statements, chains = [], []
    action = rule = None
    chain = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            where = "%s:%d" % (os.path.basename(path), number)
            if not line.strip() or line.startswith("# ") or line == "#":
                continue
            if chain is not None:
                if line == "end":
                    chains.append(chain)
                    chain = None
                elif line.startswith("connect ") or line.startswith("connect-refused "):
                    head, _, rest = line.partition(" ")
                    chain.refused = head == "connect-refused"
                    name, _, value = rest.partition("=")
                    chain.connect[name] = value
                else:
                    head, sep, sql = line.partition(" | ")
                    if not sep:
                        raise ValueError("%s: a chain step is '<decision> [rule] | <sql>'" % where)
                    step_action, step_rule = _expectation(head.split(), where)
                    sql, sep, params = sql.partition(" || ")
                    values = ast.literal_eval("(%s,)" % params) if sep else ()
                    chain.steps.append(Step("%s.%d" % (chain.name, len(chain.steps) + 1),
                                            sql, step_action, step_rule, values))
            elif line.startswith("@ "):
                action, rule = _expectation(line[2:].split(), where)
            elif line.startswith("chain "):
                chain = Chain(line[6:].strip())
            else:
                if action is None:
                    raise ValueError("%s: a statement before any '@ <decision>' line" % where)
                statements.append(Step("s%d" % number, line, action, rule))
    if chain is not None:
        raise ValueError("chain %s has no end" % chain.name)
    return statements, chains


def policy_test_document(steps, name="guardrail-corpus"):
    """A PolicyTest (YAML; JSON strings are YAML double-quoted scalars) with
    one case per step, for `wardenctl policy test`."""
    lines = ["apiVersion: warden/v1", "kind: PolicyTest", "metadata: { name: %s }" % name,
             "spec:",
             "  defaults: { environment: prod, database: shop, user: alice, groups: [], kind: human }",
             "  cases:"]
    for s in steps:
        expect = {"action": s.action}
        if s.rule is not None:
            expect["rule"] = s.rule
        elif s.action == "allow":
            expect["rule"] = ""
        lines.append("    - name: %s" % json.dumps(s.id))
        lines.append("      sql: %s" % json.dumps(s.eval_sql()))
        lines.append("      expect: %s" % json.dumps(expect))
    return "\n".join(lines) + "\n"


# What a client sees when Warden refuses (dataplane/gate/gate.cc).
_RULE = re.compile(r'Warden: (denied by rule|approval required by rule) "([^"]+)"')


def classify(message):
    """(action, rule) Warden answered with, from an error message; ("allow",
    None) when the error (if any) came from PostgreSQL."""
    if not message:
        return "allow", None
    m = _RULE.search(message)
    if m:
        return ("deny" if m.group(1).startswith("denied") else "require_approval"), m.group(2)
    if "Warden could not parse" in message or "Warden: denied" in message:
        return "deny", None
    return "allow", None
