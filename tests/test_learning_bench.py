"""The learning benchmark (``python -m bench.learning``) runs end to end as a user runs it: a real (very short)
training run stopped by SIGTERM, a SIGUSR1 milestone, the games against every opponent, the JSON and the PNG."""

from __future__ import annotations

import json

from PIL import Image

from tests.helpers import FAST_TRAIN, run_module, set_args


def test_learning_bench_trains_plays_every_opponent_and_plots(tmp_path):
    overrides = [o for o in FAST_TRAIN if not o.startswith("league.")] + ["league.matches.1v1=1",
                                                                          "league.snapshot_every=256"]
    result = run_module("bench.learning", "--minutes", "0.3", "--milestones", "0.15", "--episodes", "1",
                        "--version-episodes", "2", "--out", "out", "--json", *set_args(overrides), cwd=tmp_path,
                        timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "SIGTERM: stopped at" in report["stopped"]
    opponents = {row["opponent"] for row in report["rows"]}
    assert {"idle", "random", "chaser"} <= opponents
    assert any(o.startswith("first snapshot (past_") for o in opponents)
    assert any(o.startswith("milestone model_snapshot_") for o in opponents)  # the pair SIGUSR1 saved
    assert {row["mode"] for row in report["rows"]} == {"deterministic", "stochastic"}
    for row in report["rows"]:
        assert 0.0 <= row["touch_rate"] <= 1.0 and row["goals_for"] >= 0
        # Between versions of the bot, stochastic games are played --version-episodes times.
        versus_version = row["opponent"].startswith("milestone") and row["mode"] == "stochastic"
        assert row["episodes"] == (2 if versus_version else 1), row
        if not versus_version:
            assert row["spots"] == 1 and row["spots_touched"] == int(row["touch_rate"] == 1.0)  # one kickoff, one spot
    assert "games  touch  spots touched  goals for" in result.stdout  # the readable table
    image = Image.open(tmp_path / report["png"])  # relative to the folder it ran in
    assert image.size[0] > 400 and image.size[1] > 300
