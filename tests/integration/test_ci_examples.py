"""The CI examples in deploy/ci work as written (issue 15): they install
wardenctl with the Debian 12 libraries it links (checked against the built
binary's NEEDED entries and Debian's package database), and no secret is
pasted into script text (a value there is code; they travel as
environment variables). The pipelines themselves need GitHub or GitLab."""

import os
import re
import subprocess
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from controlharness import WARDENCTL_BIN  # noqa: E402

GITHUB = os.path.join(REPO, "deploy", "ci", "github-actions-policies.yml")
GITLAB = os.path.join(REPO, "deploy", "ci", "gitlab-ci-policies.yml")


def installed_packages(script):
    """The packages an `apt-get install` line of `script` names."""
    text = script.replace("\\\n", " ")
    out = set()
    for m in re.finditer(r"apt-get install ([^\n;&|]+)", text):
        out.update(w for w in m.group(1).split() if not w.startswith("-"))
    return out


def closure(packages):
    """`packages` with everything they depend on (Debian's database)."""
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                        "--no-suggests", "--no-conflicts", "--no-breaks",
                        "--no-replaces", "--no-enhances"] + sorted(packages),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = set(packages)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:") or line.startswith("PreDepends:"):
            names.add(line.split(":", 1)[1].strip().strip("<>").split(":")[0])
        elif line and not line.startswith("|") and ":" not in line:
            names.add(line.strip("<>"))
    return names


def needed_packages(binary):
    """The packages holding the libraries `binary` links directly."""
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=60).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    owners = {}
    for lib in libs:
        path = os.path.realpath(paths[lib])
        # Debian 12 merged /lib into /usr/lib; dpkg may know either name.
        for candidate in (path, re.sub(r"^/usr/lib/", "/lib/", path), paths[lib]):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True,
                               timeout=60)
            if r.returncode == 0:
                break
        assert r.returncode == 0, (lib, r.stderr)
        owners[lib] = r.stdout.split(":")[0]
    return owners


class CiExamples(unittest.TestCase):
    def scripts(self):
        """(file, step or job name, script text) for every script."""
        with open(GITHUB) as f:
            gh = yaml.safe_load(f)
        for job_name, job in gh["jobs"].items():
            for step in job["steps"]:
                if "run" in step:
                    yield GITHUB, "%s/%s" % (job_name, step.get("name", step["run"][:30])), step
        with open(GITLAB) as f:
            gl = yaml.safe_load(f)
        for job_name, job in gl.items():
            if isinstance(job, dict):
                lines = job.get("before_script", []) + job.get("script", [])
                # Every line must be a command (a string): an unquoted ": "
                # makes YAML read a mapping, which GitLab refuses.
                for line in lines:
                    assert isinstance(line, str), (job_name, line)
                yield GITLAB, job_name, {"run": "\n".join(lines)}

    def test_no_secret_is_pasted_into_a_script(self):
        for path, name, step in self.scripts():
            with self.subTest(file=os.path.basename(path), step=name):
                self.assertNotIn("secrets.", step["run"])
                self.assertNotIn("${{", step["run"])

    def test_each_job_installs_what_wardenctl_links(self):
        owners = needed_packages(WARDENCTL_BIN)
        self.assertIn("libgrpc++1.51", owners.values())
        with open(GITHUB) as f:
            gh = yaml.safe_load(f)
        jobs = {"github/" + n: "\n".join(s.get("run", "") for s in j["steps"])
                for n, j in gh["jobs"].items()}
        with open(GITLAB) as f:
            jobs["gitlab/.wardenctl"] = "\n".join(yaml.safe_load(f)[".wardenctl"]["before_script"])
        for name, text in jobs.items():
            with self.subTest(job=name):
                listed = installed_packages(text)
                self.assertTrue(listed, "no apt-get install in " + name)
                have = closure(listed)
                missing = {lib: pkg for lib, pkg in owners.items() if pkg not in have}
                self.assertEqual(missing, {})
                self.assertIn("sha256sum -c", text)
        # GitHub's jobs run where those packages exist.
        for n, j in gh["jobs"].items():
            self.assertEqual(j.get("container"), "debian:12", n)


if __name__ == "__main__":
    unittest.main()
