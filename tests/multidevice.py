"""Run a test script in a child process with several CPU host devices (shared by the multi-device tests).

jax reads ``--xla_force_host_platform_device_count`` once, when it starts, and the test process has
already started it with one device; so the 8-device half of a test runs in a fresh process.

    >>> child_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")["XLA_FLAGS"]
    '--xla_force_host_platform_device_count=2'
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without multi-process settings (``DMLC_*``, ``JAX_*``), xgraph on
    ``PYTHONPATH``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMLC_", "JAX_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run_with_devices(script: str | os.PathLike, *args: str, devices: int = 8, timeout: float = 240,
                     **extra_env: str) -> subprocess.CompletedProcess:
    """``python script *args`` in a fresh process with ``devices`` CPU host devices; fails the test with the
    child's output unless it exits 0.

        >>> run_with_devices("-c", "import jax; assert jax.device_count() == 2", devices=2).returncode
        0
    """
    env = child_env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra_env)
    res = subprocess.run([sys.executable, str(script), *map(str, args)], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{script} {' '.join(map(str, args))} exited {res.returncode}:\n" \
                                f"{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    return res


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xgraph_errors(cases: dict) -> dict:
    """Run each case of a child script; ``{name: None}`` where it worked, else the XGraphError's
    ``[class name, message]`` for the parent to check (other exceptions propagate)."""
    import xgraph as mx
    errors = {}
    for name, fn in cases.items():
        try:
            fn()
            errors[name] = None
        except mx.XGraphError as exc:
            errors[name] = [type(exc).__name__, str(exc)]
    return errors
