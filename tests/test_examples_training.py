"""The training examples run in their fast mode and reach their thresholds (subprocess, as CI runs them)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), "--fast", "--no-progress", *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_train_digits_fast_reaches_the_bar():
    res = _run("train_digits.py")
    assert res.returncode == 0, res.stdout + res.stderr
    accs = {m: float(a) for m, a in re.findall(r"(\w+) test accuracy ([0-9.]+)", res.stdout)}
    assert set(accs) == {"mlp", "conv"} and min(accs.values()) >= 0.90


def test_lstm_lm_fast_perplexity_falls():
    res = _run("lstm_lm.py")
    assert res.returncode == 0, res.stdout + res.stderr
    ppl = [float(p) for p in re.findall(r"validation perplexity ([0-9.]+)", res.stdout)]
    assert len(ppl) >= 2 and ppl[-1] < ppl[0] and ppl[-1] < 25 / 2


def test_train_digits_parallel_fast_matches_one_device():
    res = _run("train_digits_parallel.py", "--devices", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    runs = dict(re.findall(r"(\d+) devices?: .* test accuracy ([0-9.]+)", res.stdout))
    assert set(runs) == {"1", "4"} and min(float(a) for a in runs.values()) >= 0.85
    assert "samples/s" in res.stdout and "speed-up" in res.stdout
