#!/usr/bin/env python3
"""Start N local worker processes of one xgraph program, like MXNet's ``tools/launch.py --launcher local``.

    python tools/launch.py -n 2 python examples/train_digits_parallel.py --fast
    python tools/launch.py -n 4 --host-devices 2 python train.py      # 4 processes x 2 CPU devices

Each worker gets MXNet's variables (``DMLC_ROLE=worker``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_WORKER``, ``DMLC_WORKER_ID``), which
``xgraph.distributed.initialize()`` reads; worker 0 hosts JAX's coordinator
on 127.0.0.1 at a free port (or ``--port``).  ``--host-devices K`` gives every
worker K CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=K``).

Output lines are prefixed with ``[worker i]``.  When a worker exits with a
non-zero status the others are stopped at once and the launcher exits with
that status; ``--timeout`` seconds bound the whole run (status 124).
Only the local launcher exists: for several hosts start one process per host
with the same variables (or JAX's ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def worker_env(rank: int, num_workers: int, port: int, host_devices: int | None,
               base: dict | None = None) -> dict:
    """The environment of worker ``rank``."""
    env = dict(os.environ if base is None else base)
    env.update(DMLC_ROLE="worker", DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(port),
               DMLC_NUM_WORKER=str(num_workers), DMLC_WORKER_ID=str(rank), DMLC_NUM_SERVER="0",
               PYTHONUNBUFFERED="1")
    if host_devices:
        flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={host_devices}"])
    return env


def _pump(rank: int, stream, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            sys.stdout.write(f"[worker {rank}] {line}")
            sys.stdout.flush()
    stream.close()


def _stop(procs: list[subprocess.Popen], grace: float = 3.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(command: list[str], num_workers: int, port: int | None = None, host_devices: int | None = None,
           timeout: float | None = None) -> int:
    """Run ``command`` as ``num_workers`` workers; the exit status of the run (0 when all succeed)."""
    if num_workers < 1:
        raise SystemExit(f"launch.py: -n must be at least 1, got {num_workers}")
    if not command:
        raise SystemExit("launch.py: no command to run")
    port = port or free_port()
    lock = threading.Lock()
    procs, pumps = [], []
    for rank in range(num_workers):
        p = subprocess.Popen(command, env=worker_env(rank, num_workers, port, host_devices),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        t = threading.Thread(target=_pump, args=(rank, p.stdout, lock), daemon=True)
        t.start()
        pumps.append(t)
    start = time.monotonic()
    status = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank, status = failed[0]
                alive = sum(c is None for c in codes)
                with lock:
                    print(f"launch.py: worker {rank} exited with status {status}; stopping the other "
                          f"{alive} running worker(s)", file=sys.stderr, flush=True)
                break
            if all(c == 0 for c in codes):
                break
            if timeout is not None and time.monotonic() - start > timeout:
                with lock:
                    print(f"launch.py: the workers ran past --timeout {timeout:g} s; stopping them",
                          file=sys.stderr, flush=True)
                status = 124
                break
            time.sleep(0.05)
    finally:
        _stop(procs)
        for t in pumps:
            t.join(timeout=2)
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--num-workers", type=int, required=True, help="number of worker processes")
    ap.add_argument("-s", "--num-servers", type=int, default=0, help="ignored (no parameter servers: JAX "
                    "collectives reduce); accepted for MXNet command lines")
    ap.add_argument("--launcher", default="local", choices=("local",), help="only 'local' exists")
    ap.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    ap.add_argument("--host-devices", type=int, default=None, help="CPU devices per worker")
    ap.add_argument("--timeout", type=float, default=None, help="stop every worker after this many seconds")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the program to run")
    args = ap.parse_args(argv)
    return launch(args.command, args.num_workers, args.port, args.host_devices, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
