"""Shared machinery of the fuzzers: budgets, the outcome tally, the hang and memory guards, mutators.

Every fuzzer feeds inputs to one *loader* (a function taking hostile bytes)
through :func:`run_case`, which records the outcome: ``accepted``, rejected
with an ``XGraphError`` subclass (by class name), or a **failure**: any other
exception, a hang (longer than :data:`HANG_SECONDS`) or an allocation the
memory cap refuses (``MemoryError``).  Tests assert there are no failures;
``conftest.py`` prints every loader's tally at the end of the session.

Budget: ``XGRAPH_FUZZ_EXAMPLES`` inputs per fuzzer (default :data:`CI_EXAMPLES`,
a few seconds each), ``XGRAPH_FUZZ_SEED`` (default 0) for the random streams.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import resource
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import xgraph as mx

CI_EXAMPLES = 60
EXAMPLES = int(os.environ.get("XGRAPH_FUZZ_EXAMPLES", CI_EXAMPLES))
SEED = int(os.environ.get("XGRAPH_FUZZ_SEED", 0))
HANG_SECONDS = float(os.environ.get("XGRAPH_FUZZ_HANG_SECONDS", 10))
#: extra address space a fuzzed input may take on top of what the process already maps
MEMORY_CAP_BYTES = 3 << 30
FAILURE_DIR = os.environ.get("XGRAPH_FUZZ_FAILURES")   # where failing inputs are saved, when set


class Hang(BaseException):
    """Raised into a case that ran longer than HANG_SECONDS (a BaseException: loaders must not catch it)."""


@dataclass
class Tally:
    """Outcomes of one loader's inputs."""

    loader: str
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict:
        return {"loader": self.loader, "inputs": self.total, "outcomes": dict(self.outcomes),
                "failures": len(self.failures), "seconds": round(self.seconds, 2),
                "slowest_input_s": round(self.slowest, 3), "peak_rss_mb": round(self.peak_rss_mb, 1)}


TALLIES: dict[str, Tally] = {}


def tally(loader: str) -> Tally:
    """The (session-wide) tally of ``loader``."""
    return TALLIES.setdefault(loader, Tally(loader))


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang()


@contextlib.contextmanager
def memory_cap(extra: int = MEMORY_CAP_BYTES) -> Iterator[None]:
    """Limit the address space to what is mapped now plus ``extra`` (soft limit; restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    cap = mapped + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_case(t: Tally, loader: Callable[[Any], Any], data: Any, label: str = "") -> str:
    """Run ``loader(data)`` under the hang guard; record and return the outcome's name (a loader
    may name its own success outcome by returning a string)."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    start = time.perf_counter()
    try:
        result = loader(data)
        outcome = result if isinstance(result, str) else "accepted"
    except mx.XGraphError as exc:
        outcome = type(exc).__name__
    except Hang:
        outcome = "HANG"
        _fail(t, data, label, f"hang: more than {HANG_SECONDS} s")
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzers look for
        outcome = f"FAILED:{type(exc).__name__}"
        _fail(t, data, label, "".join(traceback.format_exception(exc))[-3000:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    took = time.perf_counter() - start
    t.seconds += took
    t.slowest = max(t.slowest, took)
    t.peak_rss_mb = max(t.peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    t.outcomes[outcome] += 1
    return outcome


def _fail(t: Tally, data: Any, label: str, what: str) -> None:
    t.failures.append(f"[{label}] {what}")
    if FAILURE_DIR:
        os.makedirs(FAILURE_DIR, exist_ok=True)
        path = os.path.join(FAILURE_DIR, f"{t.loader}-{len(t.failures)}")
        blob = data if isinstance(data, (bytes, bytearray)) else repr(data).encode()
        with open(path, "wb") as f:
            f.write(blob)


def assert_clean(t: Tally) -> None:
    """Fail the test with the first failures' tracebacks if any input crashed or hung."""
    if t.failures:
        raise AssertionError(f"{t.loader}: {len(t.failures)} of {t.total} inputs crashed or hung; "
                             f"first ones:\n" + "\n---\n".join(t.failures[:3]))


def hypothesis_settings() -> Any:
    """Hypothesis decorators for a fuzz test: EXAMPLES inputs, seeded by SEED, no database or deadline
    (the hang guard is ours), every health check off (hostile inputs are big and slow on purpose)."""
    from hypothesis import HealthCheck, seed, settings

    def deco(fn: Callable) -> Callable:
        return seed(SEED)(settings(max_examples=EXAMPLES, database=None, deadline=None, derandomize=False,
                                   suppress_health_check=list(HealthCheck))(fn))
    return deco


# -- mutators -------------------------------------------------------------------------------
INTERESTING_INTS = (0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1,
                    2 ** 40, 2 ** 62, 2 ** 63 - 1, 2 ** 64 - 1)


def _word(rnd: random.Random, blob: bytearray) -> None:
    size = rnd.choice((4, 8))
    if len(blob) < size:
        return
    at = rnd.randrange(0, len(blob) - size + 1) & ~(size - 1 if rnd.random() < 0.7 else 0)
    value = rnd.choice(INTERESTING_INTS)
    if rnd.random() < 0.2:
        value = -value
    blob[at:at + size] = (value % 2 ** (8 * size)).to_bytes(size, "little")


def mutate_bytes(rnd: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to four random byte-level edits (bit flips, interesting words, truncation, splicing ...)."""
    blob = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(9)
        n = len(blob)
        if op == 0 and n:
            for _ in range(rnd.randint(1, 8)):
                i = rnd.randrange(n)
                blob[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            blob[rnd.randrange(n)] = rnd.choice((0, 0xFF, 0x7F, 0x80, 0x20, 0x22, 0x5B, 0x7B))
        elif op == 2:
            _word(rnd, blob)
        elif op == 3 and n:
            del blob[rnd.randrange(n):]
        elif op == 4 and n:
            a = rnd.randrange(n)
            del blob[a:a + rnd.randint(1, 64)]
        elif op == 5 and n:
            a = rnd.randrange(n)
            chunk = blob[a:a + rnd.randint(1, 64)]
            b = rnd.randrange(n)
            blob[b:b] = chunk * rnd.randint(1, 8)
        elif op == 6 and corpus:
            other = rnd.choice(corpus)
            a, b = rnd.randrange(len(blob) + 1), rnd.randrange(len(other) + 1)
            blob = blob[:a] + other[b:]
        elif op == 7:
            blob += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 32)))
        elif op == 8 and n:
            a = rnd.randrange(n)
            blob[a:a + 1] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(blob)


HOSTILE_STRINGS = ("", "0", "-1", "1e400", "nan", "inf", "None", "True", "(", ")", "((((", "[]", "()", "(,)",
                   "(1,", "(0, 0)", "(-1, -1)", "(1099511627776,)", "(2147483648, 2)", "9" * 5000,
                   "(" * 3000 + ")" * 3000, "'a'", "\x00", "\ud7ff", "é", "a" * 10000, "float128", "int64",
                   "relu", "{}", "1" * 80, "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, "
                   "21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33)")


def hostile_json_value(rnd: random.Random) -> Any:
    """A JSON value chosen to break parsers: deep nesting, long integers, wrong types, odd strings."""
    kind = rnd.randrange(8)
    if kind == 0:
        depth = rnd.choice((100, 1000, 50000))
        return json.loads("[" * min(depth, 500) + "]" * min(depth, 500)) if depth < 1000 else _Raw(
            "[" * depth + "]" * depth)
    if kind == 1:
        return _Raw("9" * rnd.choice((25, 100, 5000, 20000)))
    if kind == 2:
        return rnd.choice(INTERESTING_INTS) * rnd.choice((1, -1))
    if kind == 3:
        return rnd.choice((1.5, -0.0, 1e308, _Raw("1e99999"), _Raw("NaN"), _Raw("-Infinity")))
    if kind == 4:
        return rnd.choice(HOSTILE_STRINGS)
    if kind == 5:
        return rnd.choice((None, True, False, [], {}, [1, 2], {"a": "b"}))
    if kind == 6:
        return [rnd.randrange(-2, 5), rnd.randrange(-2, 3)] + ([rnd.randrange(0, 2)] if rnd.random() < .5 else [])
    return "".join(chr(rnd.randrange(0x20, 0x3000)) for _ in range(rnd.randint(0, 12)))


class _Raw:
    """JSON text spliced in verbatim (for what :func:`json.dumps` cannot produce)."""

    def __init__(self, text: str):
        self.text = text


def dumps_with_raw(doc: Any) -> str:
    """``json.dumps`` that writes :class:`_Raw` values verbatim."""
    raws: list[str] = []

    def enc(o: Any) -> Any:
        if isinstance(o, _Raw):
            raws.append(o.text)
            return f"\x00RAW{len(raws) - 1}\x00"
        if isinstance(o, dict):
            return {k: enc(v) for k, v in o.items()}
        if isinstance(o, list):
            return [enc(v) for v in o]
        return o
    text = json.dumps(enc(doc))
    for i, r in enumerate(raws):
        text = text.replace(json.dumps(f"\x00RAW{i}\x00"), r)
    return text


def json_paths(doc: Any, limit: int = 4000) -> list[tuple]:
    """Paths (tuples of keys/indices) to every value of ``doc`` (at most ``limit``), iteratively."""
    out: list[tuple] = []
    stack: list[tuple[tuple, Any]] = [((), doc)]
    while stack and len(out) < limit:
        path, v = stack.pop()
        out.append(path)
        if isinstance(v, dict):
            stack.extend(((*path, k), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend(((*path, i), x) for i, x in enumerate(v))
    return out


def set_path(doc: Any, path: tuple, value: Any) -> Any:
    """``doc`` with the value at ``path`` replaced (``doc`` itself when the path is empty)."""
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return doc


def mutate_json_doc(rnd: random.Random, doc: Any) -> Any:
    """Replace, delete or duplicate random values of a parsed JSON document (edits ``doc``)."""
    for _ in range(rnd.randint(1, 3)):
        paths = json_paths(doc)
        path = rnd.choice(paths)
        r = rnd.random()
        if r < 0.6 or not path:
            doc = set_path(doc, path, hostile_json_value(rnd))
        else:
            parent = doc
            for k in path[:-1]:
                parent = parent[k]
            if r < 0.8:
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.insert(path[-1], json.loads(json.dumps(parent[path[-1]], default=str)))
            else:
                parent[path[-1] + "_"] = parent[path[-1]]
    return doc
