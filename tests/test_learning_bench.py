"""The learning benchmark (``python -m bench.learning``) runs end to end as a user runs it: real (very short)
training runs, the games against every opponent from both sides, the intervals, the comparison, JSON and PNGs."""

from __future__ import annotations

import json

from PIL import Image

from bench.stats import difference, interval
from tests.helpers import FAST_TRAIN, run_module, set_args

#: A tiny league run: one self-play match and one league match, a snapshot every 256 steps.
BENCH_TRAIN = [o for o in FAST_TRAIN if not o.startswith("league.")] + ["league.matches.1v1=1",
                                                                        "league.snapshot_every=256"]


def test_timed_run_with_a_milestone_plays_every_opponent_and_plots(tmp_path):
    result = run_module("bench.learning", "--minutes", "0.2", "--milestones", "0.1", "--episodes", "2",
                        "--version-episodes", "2", "--out", "out", "--json", *set_args(BENCH_TRAIN), cwd=tmp_path,
                        timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    [run] = report["runs"]["A"]
    assert "SIGTERM: stopped at" in run["stopped"]
    assert len(run["models"]) == 2  # the SIGUSR1 milestone and the interrupted pair
    final = run["models"][-1]["games"]
    assert {"idle", "random", "chaser"} <= set(final)
    assert any(label.startswith("first league snapshot (past_") for label in final)
    assert any(label.startswith("model at ") for label in final)  # the final model against the milestone
    for label in ("idle", "random", "chaser"):
        games = final[label]["deterministic"]
        assert len(games) == 4 and sum(g["jittered"] for g in games) == 2  # 2 exact + 2 jittered kickoffs
        assert len(final[label]["stochastic"]) == 2
    rows = [r for r in report["summary"]["A"] if r["model"] == 1]
    for row in rows:
        ci = row["touch_rate"]
        assert 0.0 <= ci["low"] <= ci["mean"] <= ci["high"] <= 1.0
    assert "touch" in result.stdout and "win of decided" in result.stdout  # the readable table
    image = Image.open(tmp_path / report["png"])  # relative to the folder it ran in
    assert image.size[0] > 400 and image.size[1] > 300
    assert report["league_pngs"] and Image.open(tmp_path / report["league_pngs"][0]).size[0] > 400


def test_step_budget_seeds_and_compare(tmp_path):
    result = run_module("bench.learning", "--steps", "384", "--every", "192", "--seeds", "1", "--parallel", "2",
                        "--compare", "base:default", "short:training.gamma=0.9", "--episodes", "1",
                        "--version-episodes", "1", "--out", "out", "--json", *set_args(BENCH_TRAIN), cwd=tmp_path,
                        timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["runs"]) == {"base", "short"}
    for arm, runs in report["runs"].items():
        assert [run["seed"] for run in runs] == [0]
        for run in runs:
            assert [m["steps"] for m in run["models"]][-1] >= 384
            assert len(run["models"]) == 2  # the pair at 192 steps (the curve) and the final one
        assert len(report["steps_to_threshold"][arm]) == 1
    import yaml

    for k in (0,):  # each config trained with the seed and its own overrides
        base = yaml.safe_load((tmp_path / "out" / "checkpoints" / f"base_s{k}" / "config.yaml").read_text())
        short = yaml.safe_load((tmp_path / "out" / "checkpoints" / f"short_s{k}" / "config.yaml").read_text())
        assert base["training"]["seed"] == short["training"]["seed"] == k
        assert base["training"]["gamma"] != 0.9 and short["training"]["gamma"] == 0.9
    metrics = {(r["opponent"], r["mode"], r["metric"]) for r in report["compare"]}
    assert ("idle", "deterministic", "touch_rate") in metrics
    assert all(r["a"] == "short" and r["b"] == "base" and isinstance(r["significant"], bool)
               for r in report["compare"])
    assert "Differences of the final models" in result.stdout
    # The same runs put together again from the written report (no training, no games): the same verdicts.
    again = run_module("bench.learning", "--reports", report["report"], "--out", "again", "--json", cwd=tmp_path,
                       timeout=120)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["compare"] == report["compare"]


def test_intervals_cover_seeds_and_games():
    same = [[1, 0, 1, 0] * 10, [1, 0, 0, 1] * 10]
    ci = interval(same)
    assert ci.low <= 0.5 <= ci.high and ci.mean == 0.5
    assert not difference(same, same).significant
    better = [[1, 1, 1, 0] * 10, [1, 1, 0, 1] * 10]
    diff = difference(better, same)
    assert diff.significant and diff.diff.low > 0
    spread = interval([[1] * 40, [0] * 40])  # two seeds that disagree: the interval spans both
    assert spread.low == 0.0 and spread.high == 1.0
