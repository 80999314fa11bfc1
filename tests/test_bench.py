"""The throughput benchmark (``python -m bench.throughput``) runs end to end and reports well-formed results.

One real run (subprocess, half a second per stage, ``--profile`` included) is shared by the tests that
check its JSON. No timing thresholds: only shapes, positive rates, the ceiling on top and shares adding
up to 100 %.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.profile import PARTS, Breakdown
from bench.throughput import STAGES

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 240


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.throughput", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    proc = run_bench("--seconds", "0.5", "--json", "--profile", "--ray",
                     "--set", "environment.selfplay.matches.1v1=1", "--set", "league.matches.1v1=2",
                     "--set", "league.pool_size=2", "--set", "training.device=cpu")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "agent-steps/s" in proc.stdout  # the readable table came first
    return json.loads(lines[-1])


def test_every_stage_reports_a_positive_rate(report: dict[str, Any]) -> None:
    stages = report["stages"]
    assert set(stages) == set(STAGES)  # train_no_league too (the config has league matches), train_ray (--ray)
    assert report["league_cost"]["train_over_train_no_league"] > 0
    assert report["ray"]["train_ray_over_train"] > 0 and report["ray"]["round_trip_ms"] > 0
    assert report["ray"]["reply_bytes"] > 4 * 172 * report["ray"]["slots"]  # at least the observations come back
    for name, stage in stages.items():
        assert set(stage) >= {"sps", "ratio", "seconds"}, name
        assert stage["sps"] > 0, name
        assert stage["seconds"] > 0, name
        assert stage["ratio"] > 0, name


def test_ceiling_is_the_largest_and_the_reference(report: dict[str, Any]) -> None:
    stages = report["stages"]
    assert stages["ceiling"]["ratio"] == pytest.approx(1.0)
    assert max(stages, key=lambda name: stages[name]["sps"]) == "ceiling"
    for stage in stages.values():
        assert stage["ratio"] == pytest.approx(stage["sps"] / stages["ceiling"]["sps"])


def test_machine_and_config_are_reported(report: dict[str, Any]) -> None:
    machine, config = report["machine"], report["config"]
    assert {"cores", "cpu", "device"} <= set(machine)
    assert machine["cores"] >= 1 and machine["cpu"] and machine["device"] == "cpu"
    assert config["num_envs"] == 2 + 2  # the self-play match's 2 cars + the learning car of each league match
    assert config["vec_env"] == "selfplay" and config["selfplay_matches"]["1v1"] == 1
    assert config["league_matches"]["1v1"] == 2
    for key in ("blue_size", "orange_size", "tick_skip", "obs_builder", "n_steps", "batch_size", "n_epochs",
                "net_arch", "device"):
        assert key in config, key


def test_profile_breakdown_shares_add_up(report: dict[str, Any]) -> None:
    breakdown = report["breakdown"]
    parts = breakdown["parts"]
    assert set(parts) == {key for key, _ in PARTS}
    assert all(part["share"] >= 0 and part["seconds"] >= 0 for part in parts.values())
    assert sum(part["share"] for part in parts.values()) == pytest.approx(100.0, abs=0.5)
    assert sum(part["seconds"] for part in parts.values()) == pytest.approx(breakdown["iteration_seconds"], rel=1e-3)
    for key in ("simulation", "obs", "policy_inference", "ppo_update"):
        assert parts[key]["seconds"] > 0, key


def test_breakdown_shares_are_percent_of_the_total() -> None:
    breakdown = Breakdown(2.0, 1, {key: 0.0 for key, _ in PARTS} | {"simulation": 0.5, "ppo_update": 1.5})
    shares = breakdown.shares()
    assert shares["simulation"] == pytest.approx(25.0)
    assert shares["ppo_update"] == pytest.approx(75.0)
    assert sum(shares.values()) == pytest.approx(100.0)


def test_config_error_exits_2_with_the_message() -> None:
    proc = run_bench("--seconds", "0.5", "--set", "environment.tick_skip=0")
    assert proc.returncode == 2
    assert "tick_skip" in proc.stderr


def test_ceiling_worker_counts_every_car() -> None:
    from bench.ceiling import CeilingSpec, meshes_folder, simulate

    steps, seconds = simulate(CeilingSpec(meshes_folder(None), blue=1, orange=1, tick_skip=8, reset_every=5,
                                          seconds=0.2), seed=0)
    assert seconds >= 0.2
    assert steps > 0 and steps % 2 == 0  # two cars: every decision is two agent-steps


def test_physics_benchmark_times_both_ways_of_stepping():
    """``python -m bench.physics`` (one-by-one arena steps against ``Arena.multi_step``) reports positive times."""
    proc = subprocess.run([sys.executable, "-m", "bench.physics", "--arenas", "2", "--rounds", "1", "--decisions", "2",
                           "--json"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["arenas"] == 2 and result["loop_ms"] > 0 and result["multi_step_ms"] > 0
    assert result["multi_over_loop"] > 0
