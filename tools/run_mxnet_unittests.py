"""Run Apache MXNet 1.9.1's own unit tests against xgraph (the external conformance suite).

The tests are not part of this project: fetch the apache/mxnet repository and point this script
at its ``tests/python/unittest`` folder (tag 1.9.1).  They import ``mxnet``; the package in
``tools/mxnet_shim`` is that name re-exporting xgraph and nothing else.  Needs ``nose`` (the
tests import ``nose.tools``) besides xgraph's test extra.  The tests were written for numpy < 1.24
(MXNet 1.9.1's requirement); ``tools/mxnet_shim/legacy_numpy_aliases.py`` puts back the scalar
aliases (``np.int``...) numpy removed, for the test files only.

    git -C mxnet archive 1.9.1 tests/python | tar -x -C /tmp/mx
    python tools/run_mxnet_unittests.py /tmp/mx/tests/python/unittest

Prints the pass/fail/skip count per file and writes the failures with their first error line to
``--report`` (default: mxnet_unittests_report.txt in the current folder).
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import tempfile
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "mxnet_shim")
FILES = ("test_symbol", "test_infer_shape", "test_infer_type", "test_executor", "test_operator")


def _env(unittest_dir: str) -> dict:
    env = dict(os.environ)
    common = os.path.join(os.path.dirname(unittest_dir), "common")
    env["PYTHONPATH"] = os.pathsep.join([SHIM, unittest_dir, common, env.get("PYTHONPATH", "")])
    return env


def _pytest(unittest_dir: str) -> list[str]:
    return [sys.executable, "-X", "faulthandler", "-m", "pytest", "-p", "no:cacheprovider",
            "-p", "legacy_numpy_aliases", f"--rootdir={unittest_dir}"]


def collect(unittest_dir: str, name: str, extra: list[str]) -> list[str]:
    """The test ids of one file (``file.py::test``), as pytest collects them."""
    out = subprocess.run(_pytest(unittest_dir) + ["--collect-only", "-q", name + ".py"] + extra,
                         env=_env(unittest_dir), cwd=unittest_dir, capture_output=True, text=True,
                         errors="replace").stdout
    return [line.strip() for line in out.splitlines() if line.startswith(name + ".py::")]


def _parse_junit(xml: str) -> list[tuple[str, str, str]]:
    results = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, msg = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                lines = (child.get("message") or "").splitlines()
                outcome, msg = "failed", lines[0] if lines else ""
            elif child.tag == "skipped":
                outcome, msg = "skipped", child.get("message") or ""
        results.append((case.get("name"), outcome, msg[:300]))
    return results


def run_batch(unittest_dir: str, ids: list[str], timeout: int, extra: list[str]):
    """Run some tests in one fresh process; return (results, ids left to run).

    A process that dies (a crash inside native code) writes no report: the tests
    its verbose output shows finished keep their outcome, the one running is
    recorded as ``crashed`` and the rest are handed back to run in a new process.
    """
    fd, xml = tempfile.mkstemp(prefix="mxnet-batch-", suffix=".xml")   # runs side by side keep apart
    os.close(fd)
    os.remove(xml)
    cmd = _pytest(unittest_dir) + ["-v", f"--junitxml={xml}", "-o", "junit_family=xunit1"] + ids + extra
    try:
        proc = subprocess.run(cmd, env=_env(unittest_dir), cwd=unittest_dir, timeout=timeout,
                              capture_output=True, text=True, errors="replace")
    except subprocess.TimeoutExpired:
        return [(i.split("::")[-1], "timeout", f"batch ran past {timeout}s") for i in ids], []
    if os.path.exists(xml):
        res = _parse_junit(xml)
        os.remove(xml)
        return res, []
    done = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ids and parts[1] in ("PASSED", "FAILED", "ERROR", "SKIPPED"):
            done[parts[0]] = {"PASSED": "passed", "SKIPPED": "skipped"}.get(parts[1], "failed")
    results = [(i.split("::")[-1], o, "" if o == "passed" else "(message lost: a later test crashed)")
               for i, o in done.items()]
    pending = [i for i in ids if i not in done]
    if not pending:
        return results, []
    tail = (proc.stderr.strip().splitlines() or ["?"])[0]
    results.append((pending[0].split("::")[-1], "crashed", f"the process died (rc {proc.returncode}): {tail}"))
    return results, pending[1:]


def run_file(unittest_dir: str, name: str, timeout: int, extra: list[str],
             batch: int = 25) -> list[tuple[str, str, str]]:
    """Run one test file under pytest with the shim first on the path; return (test, outcome, message).

    Tests run in batches of ``batch`` per process, so one crash costs one test, not the file.
    """
    ids = collect(unittest_dir, name, extra)
    if not ids:
        return [(name, "error", "pytest collected nothing (the file does not import)")]
    results = []
    while ids:
        res, rest = run_batch(unittest_dir, ids[:batch], timeout, extra)
        results += res
        ids = rest + ids[batch:]
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("unittest_dir", help="apache/mxnet's tests/python/unittest folder (tag 1.9.1)")
    ap.add_argument("--files", nargs="*", default=list(FILES))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per batch of tests")
    ap.add_argument("--batch", type=int, default=25, help="tests per process")
    ap.add_argument("--test-timeout", type=int, default=0,
                    help="seconds per test (needs pytest-timeout); a slow test then fails instead of the file")
    ap.add_argument("--report", default="mxnet_unittests_report.txt")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    args = ap.parse_args(argv)
    extra = ["-k", args.k] if args.k else []
    if args.test_timeout:
        extra += [f"--timeout={args.test_timeout}"]
    unittest_dir = os.path.abspath(args.unittest_dir)
    totals = collections.Counter()
    lines = []
    print(f"{'file':<20} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for name in args.files:
        res = run_file(unittest_dir, name, args.timeout, extra, args.batch)
        c = collections.Counter(o for _, o, _ in res)
        totals.update(c)
        print(f"{name:<20} {c['passed']:>7} {c['failed'] + c['timeout'] + c['error'] + c['crashed']:>7} "
              f"{c['skipped']:>8}", flush=True)
        lines += [f"{name}::{t}\t{o}\t{m}" for t, o, m in res if o != "passed"]
    print(f"{'total':<20} {totals['passed']:>7} "
          f"{totals['failed'] + totals['timeout'] + totals['error'] + totals['crashed']:>7} "
          f"{totals['skipped']:>8}")
    with open(args.report, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"failures and skips: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
