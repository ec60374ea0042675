"""The documentation works as written: every fenced code block of README.md
and docs/*.md is classified by a marker on the line before its fence, and
every runnable one is run against one demo (scripts/lib/demo.py), with its
output compared where the docs show it.

Markers (an HTML comment, so nothing shows when the page is rendered):

  <!-- docs-test: run [exit=N] [fresh] [NAME=VALUE ...] -->
      bash runs the block (set -e; stdin /dev/null; stdout and stderr
      together) and must exit N (default 0). Blocks of one page run in order
      as in one terminal: exported variables and the current directory carry
      over to the next block; `fresh` starts from a new terminal instead.
      NAME=VALUE sets an environment variable for this block only: what a
      person types at a prompt (PGPASSWORD=alice-pw for psql's).
      retry=SECONDS runs a read-only block again (every 0.2 s, up to
      SECONDS) until its exit status and the output block after it match:
      for what arrives asynchronously, like audit events, where a person
      would look again.
      A block expected to fail (exit other than 0) must be followed by an
      output block with the error text.
  <!-- docs-test: output [vary] -->
      what the run block before it prints: every non-blank line shown must
      be a whole line of its output, in this order (other lines may come
      between). `...` in a line stands for any text; with `vary`, numbers
      (revisions, counts, times) and hex digests may differ.
  <!-- docs-test: file NAME [check=policy|proxy] -->
      the block is written to NAME (relative to the page's current
      directory) for the run blocks after it; check=policy: it must pass
      `wardenctl policy validate NAME`; check=proxy: `warden-proxy --config
      NAME --check`.
  <!-- docs-test: skip REASON -->
      cannot run here (REASON says why: a real identity provider, a
      benchmark, an illustrative fragment, ...).

Every page starts in a terminal of its own: the current directory is a
scratch directory whose entries are symlinks to the repository's top level
(so `policy/examples` and `bazel-bin/...` resolve, and files a block writes
stay out of the work tree), bazel-bin/controlplane/cli (wardenctl) is on
PATH and the demo's printed `export WARDEN_SERVER=... WARDEN_CA_FILE=...
WARDEN_TOKEN=...` line is in force. Before a block runs, these example
values are replaced by the demo's (LITERALS below; nothing else is
rewritten): 35265 its prod listener's port, 35266 dev's, 35267 the
identity-provider (auth: token) listener's, 35268 the client-certificate
listener's, 35270 warden-control's; /tmp/warden-demo-XXXX its work
directory, DATA_DIR warden-control's data directory; 7443 and /tmp/wc
(README's own warden-control) a free port and a scratch directory.
Processes a page's blocks leave running are stopped, by PID, after its
last block.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WARDENCTL_DIR = os.path.join(REPO, "bazel-bin", "controlplane", "cli")
PROXY_BIN = os.path.join(REPO, "bazel-bin", "dataplane", "server", "warden-proxy")
BLOCK_TIMEOUT = 60

MARKER = re.compile(r"^<!-- docs-test: (\S+)(?: (.*?))? -->$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def pages():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


class Block:
    def __init__(self, page, line, body, kind, args):
        self.page, self.line, self.body, self.kind, self.args = page, line, body, kind, args

    def where(self):
        return "%s:%d" % (os.path.relpath(self.page, REPO), self.line)


def parse(page):
    """Returns (blocks, problems) of one page; line numbers are the fences'."""
    with open(page) as f:
        lines = f.read().split("\n")
    blocks, problems = [], []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group(1), m.group(2)
        start = i
        body = []
        i += 1
        while i < len(lines):
            c = re.match(r"^\s*(`{3,}|~{3,})\s*$", lines[i])
            if c and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence):
                break
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        where = "%s:%d" % (os.path.relpath(page, REPO), start + 1)
        marker = MARKER.match(lines[start - 1].strip()) if start > 0 else None
        if not marker:
            problems.append("%s: unclassified code block (put <!-- docs-test: run|output|file "
                            "NAME|skip REASON --> on the line before the fence)" % where)
            continue
        kind, args = marker.group(1), (marker.group(2) or "").strip()
        if kind not in ("run", "output", "file", "skip"):
            problems.append("%s: unknown docs-test kind %r" % (where, kind))
            continue
        if kind == "skip" and not args:
            problems.append("%s: skip needs a reason" % where)
            continue
        if kind == "file" and not args:
            problems.append("%s: file needs a NAME" % where)
            continue
        blocks.append(Block(page, start + 1, "\n".join(body) + "\n", kind, args))
    for n, b in enumerate(blocks):
        prev = blocks[n - 1] if n else None
        if b.kind == "output" and (prev is None or prev.kind != "run"):
            problems.append("%s: an output block must follow a run block" % b.where())
        if b.kind == "run":
            opts = run_options(b)
            if isinstance(opts, str):
                problems.append("%s: %s" % (b.where(), opts))
                continue
            nxt = blocks[n + 1] if n + 1 < len(blocks) else None
            if opts["exit"] != 0 and (nxt is None or nxt.kind != "output"):
                problems.append("%s: a run block expected to fail (exit=%d) must be followed by "
                                "an output block with its error text" % (b.where(), opts["exit"]))
        if b.kind == "file":
            name, _, check = b.args.partition(" ")
            if check and check not in ("check=policy", "check=proxy"):
                problems.append("%s: file takes check=policy or check=proxy, not %r" % (b.where(), check))
        if b.kind == "output" and b.args not in ("", "vary"):
            problems.append("%s: output takes only 'vary', not %r" % (b.where(), b.args))
    return blocks, problems


def run_options(block):
    opts = {"exit": 0, "fresh": False, "env": {}, "retry": 0.0}
    for word in block.args.split():
        if word == "fresh":
            opts["fresh"] = True
        elif word.startswith("retry="):
            opts["retry"] = float(word[len("retry="):])
        elif word.startswith("exit="):
            opts["exit"] = int(word[len("exit="):])
        elif re.match(r"^[A-Z_][A-Z0-9_]*=", word):
            k, v = word.split("=", 1)
            opts["env"][k] = v
        else:
            return "run takes exit=N, fresh, retry=SECONDS and NAME=VALUE, not %r" % word
    return opts


def line_pattern(line, vary):
    """A regular expression for one line shown in an output block."""
    parts = []
    for piece in re.split(r"(\.\.\.)", line):
        if piece == "...":
            parts.append(".*")
        elif vary:
            # a hex run of 7 or more (digests) or a run holding a digit
            for tok in re.split(r"([0-9a-f]{7,}|[0-9a-f]*[0-9][0-9a-f]*)", piece):
                if re.fullmatch(r"[0-9a-f]{7,}", tok):
                    parts.append(r"[0-9a-f]+")
                elif re.fullmatch(r"[0-9a-f]*[0-9][0-9a-f]*", tok):
                    parts.append(r"[0-9a-f]*\d[0-9a-f]*")
                else:
                    parts.append(re.escape(tok))
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def compare_output(expected, actual, vary):
    """None if every non-blank expected line is a whole line of `actual`,
    in order; else what is missing."""
    got = [l.strip() for l in actual.splitlines()]
    pos = 0
    for want in expected.splitlines():
        want = want.strip()
        if not want:
            continue
        pat = line_pattern(want, vary)
        for j in range(pos, len(got)):
            if pat.fullmatch(got[j]):
                pos = j + 1
                break
        else:
            return "line not found (in order): %r" % want
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(d))
    return pids


def stop_sessions(sids):
    """Stops every process still in one of these sessions (started by a
    block's bash), by PID: SIGTERM, then SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for s in sids for p in session_pids(s)]
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while pids and time.time() < deadline:
            pids = [p for s in sids for p in session_pids(s)]
            time.sleep(0.1)
        if not pids:
            return


class Demo:
    """scripts/lib/demo.py, started the way test_demo.py does."""

    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "scripts/lib/demo.py"),
                                      "--for-seconds", "240"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.time() + 90
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        self.out = out = "".join(lines)
        if not out.rstrip().endswith("Press Ctrl-C to stop."):
            self.stop()
            raise AssertionError("the demo did not start:\n" + out)
        psql = re.findall(r'^psql "host=127.0.0.1 port=(\d+) ', out, re.M)
        self.work = re.search(r"data: (/tmp/warden-demo-[^/\s]+)/control-data", out).group(1)
        self.control_data = self.work + "/control-data"
        export = re.search(r"^export (.*)$", out, re.M).group(1)
        self.env = {}
        for k, v in re.findall(r"(\w+)=(\$\(cat [^)]+\)|\S+)", export):
            if v.startswith("$(cat "):
                with open(v[len("$(cat "):-1]) as f:
                    v = f.read().strip()
            self.env[k] = v
        self.ports = {
            "prod": psql[0], "dev": psql[1],
            "sso": re.search(r'^PGPASSWORD=\$\(cat \S+\) psql "host=127.0.0.1 port=(\d+)', out, re.M).group(1),
            "cert": re.search(r" login --token \S+ --proxy 127.0.0.1:(\d+)", out).group(1),
            "control": self.env["WARDEN_SERVER"].rsplit(":", 1)[1],
        }

    def stop(self):
        if self.proc.poll() is None:
            # Ctrl-C: the demo stops what it started.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class DocsTest(unittest.TestCase):
    def test_every_code_block_is_classified(self):
        problems = []
        count = 0
        for page in pages():
            blocks, p = parse(page)
            problems += p
            count += len(blocks)
        self.assertFalse(problems, "\n".join(problems))
        self.assertGreater(count, 0)

    def test_marker_grammar(self):
        # The comparison the output blocks rely on.
        self.assertIsNone(compare_output("a\n\nc 3\n", "a\nb\nc 3\n", False))
        self.assertIsNotNone(compare_output("c 3\na\n", "a\nb\nc 3\n", False))
        self.assertIsNotNone(compare_output("c 4\n", "c 3\n", False))
        self.assertIsNone(compare_output("revision 12 (digest " + "ab" * 16 + ")\n",
                                         "revision 7 (digest " + "cd" * 32 + ")\n", True))
        self.assertIsNotNone(compare_output("revision 12\n", "revision x\n", True))
        self.assertIsNone(compare_output("ERROR:  Warden: denied ...: no\n",
                                         "ERROR:  Warden: denied by rule \"r\": no\n", False))
        self.assertIsNotNone(compare_output("denied\n", "not denied here\n", False))

    def test_docs_run_against_the_demo(self):
        all_blocks, problems = [], []
        for page in pages():
            blocks, p = parse(page)
            all_blocks.append((page, blocks))
            problems += p
        self.assertFalse(problems, "\n".join(problems))
        scratch = tempfile.mkdtemp(prefix="warden-docs-test-")
        demo = Demo()
        failures = []
        counts = {"run": 0, "file": 0, "output": 0}
        skips = {}
        try:
            literals = [
                ("/tmp/warden-demo-XXXX", demo.work),
                ("DATA_DIR", demo.control_data),
                ("/tmp/wc", os.path.join(scratch, "wc")),
                ("35265", demo.ports["prod"]),
                ("35266", demo.ports["dev"]),
                ("35267", demo.ports["sso"]),
                ("35268", demo.ports["cert"]),
                ("35270", demo.ports["control"]),
                ("7443", str(free_port())),
            ]
            base_env = dict(os.environ, **demo.env)
            base_env["PATH"] = WARDENCTL_DIR + os.pathsep + base_env.get("PATH", "")
            for page, blocks in all_blocks:
                if not blocks:
                    continue
                self.run_page(page, blocks, scratch, literals, base_env, failures, counts, skips)
        finally:
            demo.stop()
            shutil.rmtree(scratch, ignore_errors=True)
        reasons = "; ".join("%s x%d" % (r, n) if n > 1 else r for r, n in sorted(skips.items()))
        print("\ndocs: %d blocks run, %d files checked, %d outputs compared, %d marked not "
              "runnable (reasons: %s)" % (counts["run"], counts["file"], counts["output"],
                                          sum(skips.values()), reasons), flush=True)
        self.assertFalse(failures, "\n\n".join(failures))
        self.assertGreater(counts["run"], 0, "no block ran")

    def run_page(self, page, blocks, scratch, literals, base_env, failures, counts, skips):
        name = os.path.relpath(page, REPO).replace("/", "_")
        home = os.path.join(scratch, name)
        os.makedirs(home)
        for entry in os.listdir(REPO):
            if not entry.startswith("."):
                os.symlink(os.path.join(REPO, entry), os.path.join(home, entry))
        state = os.path.join(scratch, name + ".state")
        os.makedirs(state)
        cwd_file, env_file = os.path.join(state, "cwd"), os.path.join(state, "env")
        with open(cwd_file, "w") as f:
            f.write(home + "\n")

        def fill(text):
            for example, real in literals:
                text = text.replace(example, real)
            return text

        sessions = []
        last_output = None
        try:
            for i, b in enumerate(blocks):
                if b.kind == "skip":
                    skips[b.args] = skips.get(b.args, 0) + 1
                    continue
                with open(cwd_file) as f:
                    cwd = f.read().strip()
                if b.kind == "file":
                    counts["file"] += 1
                    target, _, check = b.args.partition(" ")
                    path = os.path.join(cwd, fill(target))
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w") as f:
                        f.write(fill(b.body))
                    cmd = None
                    if check == "check=policy":
                        cmd = [os.path.join(WARDENCTL_DIR, "wardenctl"), "policy", "validate", path]
                    elif check == "check=proxy":
                        cmd = [PROXY_BIN, "--config", path, "--check"]
                    if cmd:
                        r = subprocess.run(cmd, cwd=cwd, env=base_env, capture_output=True,
                                           text=True, timeout=BLOCK_TIMEOUT)
                        if r.returncode != 0:
                            failures.append("%s: %s fails (exit %d):\n%s" % (
                                b.where(), " ".join(cmd[1:]), r.returncode, r.stdout + r.stderr))
                    continue
                if b.kind == "output":
                    counts["output"] += 1
                    if last_output is None:
                        failures.append("%s: its run block did not run" % b.where())
                        continue
                    problem = compare_output(fill(b.body), last_output, b.args == "vary")
                    if problem:
                        failures.append("%s: output differs: %s\n--- the block printed:\n%s" % (
                            b.where(), problem, last_output))
                    continue
                counts["run"] += 1
                opts = run_options(b)
                script = os.path.join(state, "block.sh")
                with open(script, "w") as f:
                    f.write("set -e -a\n")
                    if opts["fresh"]:
                        f.write("cd %s\n" % sh_quote(home))
                    else:
                        f.write("cd %s\n" % sh_quote(cwd))
                        f.write("[ -f %s ] && source %s\n" % (sh_quote(env_file), sh_quote(env_file)))
                    f.write("trap 'rc=$?; unset %s; export -p > %s; pwd > %s; exit $rc' EXIT\n" % (
                        " ".join(opts["env"]) or "__DOCS_TEST_NONE", sh_quote(env_file),
                        sh_quote(cwd_file)))
                    f.write(fill(b.body))
                env = dict(base_env, **opts["env"])
                out_path = os.path.join(state, "out")
                shown = blocks[i + 1] if i + 1 < len(blocks) and blocks[i + 1].kind == "output" \
                    else None
                deadline = time.time() + opts["retry"]
                while True:
                    with open(out_path, "w") as out:
                        proc = subprocess.Popen(["bash", script], stdin=subprocess.DEVNULL,
                                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                                cwd=home, start_new_session=True)
                        sessions.append(proc.pid)
                        try:
                            rc = proc.wait(timeout=BLOCK_TIMEOUT)
                        except subprocess.TimeoutExpired:
                            stop_sessions([proc.pid])
                            rc = proc.wait()
                            failures.append("%s: still running after %d s" % (b.where(),
                                                                              BLOCK_TIMEOUT))
                    with open(out_path, errors="replace") as f:
                        last_output = f.read()
                    settled = rc == opts["exit"] and (
                        shown is None or not compare_output(fill(shown.body), last_output,
                                                            shown.args == "vary"))
                    if settled or time.time() >= deadline:
                        break
                    time.sleep(0.2)
                if os.environ.get("WARDEN_DOCS_SHOW"):
                    print("\n--- %s (exit %d)\n%s" % (b.where(), rc, last_output), flush=True)
                if rc != opts["exit"]:
                    failures.append("%s: exit %d, expected %d\n--- the block printed:\n%s" % (
                        b.where(), rc, opts["exit"], last_output))
        finally:
            stop_sessions(sessions)


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    unittest.main()
