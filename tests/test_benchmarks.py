"""The benchmark scripts run: the GPU suite's CPU smoke run (its figures
await a GPU machine) and the stacking benchmark at small sizes."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.ray
def test_the_gpu_suite_smoke_run_passes_on_cpu(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--smoke",
                           "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    modes = {(r["workload"], r["mode"]) for r in rows}
    assert modes == {("purchase_mlp", "alone"), ("purchase_mlp", "stacked"),
                     ("purchase_mlp", "packed x2"), ("small_cnn", "alone"),
                     ("small_cnn", "stacked"), ("small_cnn", "packed x2"),
                     ("cifar_resnet18", "alone"), ("cifar_resnet18", "packed x2")}
    by = {(r["workload"], r["mode"]): r for r in rows}
    assert by[("purchase_mlp", "stacked")]["stacked"]  # the MLP stacks
    assert not by[("small_cnn", "stacked")]["stacked"]  # convolutions: on GPUs only
    assert all(r["models_per_s"] > 0 for r in rows)
    assert all(by[(r["workload"], "alone")]["ratio_to_alone"] == 1.0 for r in rows)
    assert "table:" in done.stdout


def test_the_stacking_benchmark_reports_both_engines():
    rows = script("stacking").main(["--ks", "1", "2", "--epochs", "1", "--models", "mlp_digits"])
    assert [(r["model"], r["k"]) for r in rows] == [("mlp_digits", 1), ("mlp_digits", 2)]
    assert all(r["stacked_models_per_s"] > 0 and r["alone_models_per_s"] > 0 for r in rows)
    assert all(r["ratio"] == pytest.approx(r["stacked_models_per_s"] / r["alone_models_per_s"])
               for r in rows)
