"""SIGKILL during a save never leaves a torn file: the path holds the complete old or the complete new file.

A child process saves, over and over, two versions (A and B) of a ``.params``
file, a Module checkpoint (symbol, parameters, optimizer states) and an
artifact over files that already hold a good version.  The test kills it with
SIGKILL while a save is under way (its temporary file exists; the moment
within the write is seeded random) and checks, after each kill, that every
path's bytes are exactly version A's or version B's, and that the kills did
land inside writes (the unfinished save's temporary file is left behind).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

def _child(work: str, mode: str) -> None:
    """Save versions A and B of every file: once each as the references (``refs``), or forever (``loop``)."""
    import xgraph as mx
    from xgraph.export import Artifact
    mx.random.seed(0)     # the states file holds the trainer's RNG seed: the same in the refs and loop processes
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=512, name="fc"), name="softmax")
    versions = [{"fc_weight": np.full((512, 2048), v, np.float32), "fc_bias": np.full(512, v, np.float32)}
                for v in (1.0, 2.0)]     # 4 MiB of parameters each
    mods = []
    for v in versions:
        mod = mx.mod.Module(net)
        mod.bind([("data", (4, 2048))], [("softmax_label", (4,))])
        mod.init_params(arg_params=v)
        mod.init_optimizer(optimizer="sgd", optimizer_params={"momentum": 0.9})
        mods.append(mod)
    mods[1].forward_backward(mx.io.DataBatch([np.ones((4, 2048), np.float32)], [np.zeros(4, np.float32)]))
    mods[1].update()      # version B's optimizer state differs from A's
    arts = [open(os.path.join(work, f"ref-{k}.xgraph"), "rb").read() for k in "AB"]

    def save(k: int) -> None:
        mx.nd.save(os.path.join(work, "w.params"), {f"arg:{n}": a for n, a in versions[k].items()})
        mods[k].save_checkpoint(os.path.join(work, "ck"), 1, save_optimizer_states=True)
        Artifact(arts[k], {}).save(os.path.join(work, "model.xgraph"))
    if mode == "refs":
        for k, tag in enumerate("AB"):
            save(k)
            for name in FILES[:4]:
                os.replace(os.path.join(work, name), os.path.join(work, f"ref-{tag}-{name}"))
        save(0)
        return
    print("ready", flush=True)
    k = 0
    while True:
        save(k)
        k ^= 1


FILES = ("w.params", "ck-symbol.json", "ck-0001.params", "ck-0001.states", "model.xgraph")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XGRAPH_CACHE_DIR", None)
    return env


def _refs(work: Path) -> dict[str, set[bytes]]:
    refs = {}
    for name in FILES:
        src = (lambda tag: f"ref-{tag}.xgraph") if name == "model.xgraph" else (lambda tag: f"ref-{tag}-{name}")
        refs[name] = {(work / src(tag)).read_bytes() for tag in "AB"}
    return refs


def _saving(work: Path) -> bool:
    """Whether a save is in progress (its temporary file exists)."""
    with os.scandir(work) as it:
        return any(e.name.startswith(".tmp-") for e in it)


def test_sigkill_mid_save_leaves_old_or_new_file(tmp_path):
    import xgraph as mx
    x = mx.sym.var("x")
    for tag, scale in (("A", 2.0), ("B", 3.0)):   # two artifacts with different parameters, ~4 MiB each
        w = np.full((1024, 1024), scale, np.float32)
        art = mx.export(mx.sym.FullyConnected(x, num_hidden=1024, no_bias=True, name="fc"), {"fc_weight": w},
                        inputs={"x": ((1, 1024), "float32")})
        (tmp_path / f"ref-{tag}.xgraph").write_bytes(art.data)
    _child(str(tmp_path), "refs")
    refs = _refs(tmp_path)
    loop = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_kill_mid_save as t; t._child({str(tmp_path)!r}, 'loop')"]
    assert {n: len(r) for n, r in refs.items()} == {**dict.fromkeys(FILES, 2), "ck-symbol.json": 1}
    rnd = random.Random(0)
    interrupted = 0
    for _ in range(4):
        child = subprocess.Popen(loop, env=_env(), stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rnd.uniform(0.0, 0.3))
            deadline = time.monotonic() + 5
            while not _saving(tmp_path) and time.monotonic() < deadline:
                pass                            # wait until a save is under way, then kill inside it
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        for name in FILES:
            assert (tmp_path / name).read_bytes() in refs[name], f"{name} is torn after SIGKILL"
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
        interrupted += bool(leftovers)
        for p in leftovers:
            p.unlink()
    assert interrupted >= 3, "the kills did not land inside saves; the test proves nothing"
    # the files are not only byte-identical to a version: they load
    sym, args, _ = mx.model.load_checkpoint(str(tmp_path / "ck"), 1)
    assert args["fc_weight"].shape == (512, 2048)
    assert float(np.asarray(mx.load_artifact(tmp_path / "model.xgraph")(np.ones((1, 1024), np.float32))[0])[0, 0]) \
        in (2048.0, 3072.0)
