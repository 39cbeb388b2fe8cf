"""Smoke test of benchmarks/run_benchmarks.py --quick (slow: builds the paper-size model several times)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from betenet.paths import REPO_ROOT


@pytest.mark.slow
def test_quick_benchmark_writes_a_report(tmp_path):
    spec = importlib.util.spec_from_file_location("run_benchmarks", REPO_ROOT / "benchmarks" / "run_benchmarks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    report = bench.main(["--quick", "--threads", "1", "--n-base", "8", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["graphs"]["n_structures"] == 200
    whats = [r["what"] for r in report["summary"]]
    assert any(w.startswith("training epoch, 650 crystals, eager float32") for w in whats)
    assert any(w.startswith("100-model ensemble") for w in whats)
    assert all(r["seconds"] > 0 for r in report["summary"])
    assert saved["accuracy_f32_vs_f64"]["max_rel_prediction_diff"] < 1e-4
