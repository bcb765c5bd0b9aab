"""``python -m ovseg_ros.bench`` runs its modes end to end and reports consistent figures.

Only a smoke test of the benchmark's machinery (the node, a client in one process and across
processes, per-frame model times matched by stamp); the figures themselves are not asserted
against targets: speed is measured by running the benchmark, not by timed tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_in_process_and_across_processes_with_its_transport_floor(tmp_path, ros_env):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ovseg_ros.bench",
            "--frames",
            "3",
            "--warmup",
            "1",
            "--modes",
            "inproc,shm_profile",
            "--floor",
            "--json",
            str(out),
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    results = {r["mode"]: r for r in json.loads(out.read_text())}
    assert set(results) == {"inproc", "shm_profile"}
    for r in results.values():
        assert r["frames"] == 3
        e2e, model, overhead = r["end_to_end_ms"]["p50"], r["model_ms"]["p50"], r["overhead_ms"]["p50"]
        assert 0 < model < e2e and overhead > 0
        assert r["floor_ms"]["p50"] > 0  # the echo node's transport floor was measured too
    assert "target (node overhead <= 5 ms median)" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, alone", [("embeddings", "embedding step, 50 segments"), ("depth", "frame_geometry_stride2")]
)
def test_bench_extras_run_each_mode_with_and_without_them(tmp_path, ros_env, extra, alone):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "ovseg_ros.bench", "--frames", "3", "--warmup", "1", "--modes", "inproc,large_data"]
    res = subprocess.run(
        [*cmd, f"--{extra}", "--json", str(out)], env=ros_env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert alone in res.stdout and f"+{extra}" in res.stdout
    for r in json.loads(out.read_text()):
        e = r[f"with_{extra}"]
        assert r["frames"] == e["frames"] == 3  # every frame's extra outputs arrived too
        assert 0 < e["model_ms"]["p50"] < e["end_to_end_ms"]["p50"]


@pytest.mark.slow
def test_bench_cameras_compares_one_node_with_n_nodes(tmp_path, ros_env):
    out = tmp_path / "cameras.json"
    res = subprocess.run(
        [sys.executable, "-m", "ovseg_ros.bench", "--cameras", "1,2", "--seconds", "3", "--json", str(out)],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [(r["cameras"], r["setup"]) for r in rows] == [(1, "one node"), (2, "one node"), (2, "2 nodes")]
    assert all(r["fps"] > 0 and len(r["per_camera_fps"]) == r["cameras"] for r in rows)
    assert all(min(r["per_camera_fps"]) > 0 for r in rows)  # every camera served
    one, two_in_one, two_nodes = (r["model_mb"] for r in rows)
    assert two_in_one == pytest.approx(one) and two_nodes == pytest.approx(2 * one)  # one model vs two
    assert "| 2 | 2 nodes |" in res.stdout
