"""The benchmark scripts run: the GPU suite's CPU smoke run (its figures
await a GPU machine) and the stacking benchmark at small sizes."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.ray
def test_the_gpu_suite_smoke_run_passes_on_cpu(ray_session, tmp_path, capsys):
    """`python benchmarks/gpu_suite.py --smoke`, here in this process and on the
    tests' Ray (its packing then takes CPUs, not a fake GPU)."""
    out = tmp_path / "suite.json"
    script("gpu_suite").main(["--smoke", "--out", str(out)])
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())
    modes = {(r["workload"], r["mode"]) for r in rows}
    assert modes == {("purchase_mlp", "alone"), ("purchase_mlp", "stacked"),
                     ("purchase_mlp", "packed x2"), ("small_cnn", "alone"),
                     ("small_cnn", "stacked"), ("cifar_resnet18", "alone")}
    by = {(r["workload"], r["mode"]): r for r in rows}
    assert by[("purchase_mlp", "stacked")]["stacked"]  # the MLP stacks
    assert not by[("small_cnn", "stacked")]["stacked"]  # convolutions: on GPUs only
    assert all(r["models_per_s"] > 0 for r in rows)
    assert all(by[(r["workload"], "alone")]["ratio_to_alone"] == 1.0 for r in rows)
    assert "table:" in printed and ray_session.is_initialized()  # the tests' Ray stays up


def test_the_stacking_benchmark_reports_both_engines():
    rows = script("stacking").main(["--ks", "1", "2", "--epochs", "1", "--models", "mlp_digits"])
    assert [(r["model"], r["k"]) for r in rows] == [("mlp_digits", 1), ("mlp_digits", 2)]
    assert all(r["stacked_models_per_s"] > 0 and r["alone_models_per_s"] > 0 for r in rows)
    assert all(r["ratio"] == pytest.approx(r["stacked_models_per_s"] / r["alone_models_per_s"])
               for r in rows)
