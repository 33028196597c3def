"""Prints every fuzzed loader's tally at the end of the session (and writes it to XGRAPH_FUZZ_REPORT)."""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import fuzzlib  # noqa: E402


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not fuzzlib.TALLIES:
        return
    tr = terminalreporter
    tr.section(f"fuzzing: {fuzzlib.EXAMPLES} inputs per fuzzer, seed {fuzzlib.SEED}")
    for t in fuzzlib.TALLIES.values():
        outcomes = ", ".join(f"{k} {v}" for k, v in t.outcomes.most_common())
        tr.write_line(f"{t.loader}: {t.total} inputs in {t.seconds:.1f} s (slowest {t.slowest:.2f} s, "
                      f"peak RSS {t.peak_rss_mb:.0f} MB): {outcomes}")
    path = os.environ.get("XGRAPH_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"examples_per_fuzzer": fuzzlib.EXAMPLES, "seed": fuzzlib.SEED,
                       "loaders": [t.as_dict() for t in fuzzlib.TALLIES.values()]}, f, indent=1)
