"""Run Apache MXNet 1.9.1's own unit tests against xgraph (the external conformance suite).

The tests are not part of this project: fetch the apache/mxnet repository and point this script
at its ``tests/python/unittest`` folder (tag 1.9.1).  They import ``mxnet``; the package in
``tools/mxnet_shim`` is that name re-exporting xgraph and nothing else.  Needs ``nose`` (the
tests import ``nose.tools``) besides xgraph's test extra.

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
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "mxnet_shim")
FILES = ("test_symbol", "test_infer_shape", "test_infer_type", "test_executor", "test_operator")


def run_file(unittest_dir: str, name: str, timeout: int, extra: list[str]) -> list[tuple[str, str, str]]:
    """Run one test file under pytest with the shim first on the path; return (test, outcome, message)."""
    xml = os.path.join(unittest_dir, f".{name}.xml")
    env = dict(os.environ)
    common = os.path.join(os.path.dirname(unittest_dir), "common")
    env["PYTHONPATH"] = os.pathsep.join([SHIM, unittest_dir, common, env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "-o", "junit_family=xunit1", f"--rootdir={unittest_dir}", os.path.join(unittest_dir, name + ".py")]
    cmd += extra
    try:
        subprocess.run(cmd, env=env, cwd=unittest_dir, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return [(name, "timeout", f"{name} ran past {timeout}s")]
    if not os.path.exists(xml):
        return [(name, "error", "pytest wrote no report (collection crashed)")]
    results = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        test = case.get("name")
        outcome, msg = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, msg = "failed", (child.get("message") or "").splitlines()[0:1]
                msg = msg[0] if msg else ""
            elif child.tag == "skipped":
                outcome, msg = "skipped", child.get("message") or ""
        results.append((test, outcome, msg[:300]))
    os.remove(xml)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("unittest_dir", help="apache/mxnet's tests/python/unittest folder (tag 1.9.1)")
    ap.add_argument("--files", nargs="*", default=list(FILES))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per file")
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
        res = run_file(unittest_dir, name, args.timeout, extra)
        c = collections.Counter(o for _, o, _ in res)
        totals.update(c)
        print(f"{name:<20} {c['passed']:>7} {c['failed'] + c['timeout'] + c['error']:>7} {c['skipped']:>8}", flush=True)
        lines += [f"{name}::{t}\t{o}\t{m}" for t, o, m in res if o != "passed"]
    print(f"{'total':<20} {totals['passed']:>7} {totals['failed'] + totals['timeout'] + totals['error']:>7} "
          f"{totals['skipped']:>8}")
    with open(args.report, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"failures and skips: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
