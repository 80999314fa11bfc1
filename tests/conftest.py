"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from tests.helpers import FAST_TRAIN, TRAINED_TOTAL, run_cli, set_args, write_custom_parts


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One short real training run on the default self-play vec env (one 1v1 match: 2 slots): the run
    ``PPO_1`` in ``<root>/ck`` with TensorBoard in ``<root>/logs``. Tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("run")
    result = run_cli("train_sb3.py", "--total-timesteps", str(TRAINED_TOTAL), "--seed", "1",
                     "--checkpoint-dir", "ck", "--log-dir", "logs", *set_args(FAST_TRAIN), cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


#: League overrides of the custom run: one league match beside the self-play one, past versions in the pool.
CUSTOM_LEAGUE = ["league.matches.1v1=1", "league.snapshot_every=256"]


@pytest.fixture(scope="session")
def custom_trained(tmp_path_factory):
    """A short real run with a user's own reward, obs builder, state mutator and done condition (tests/helpers.py
    ``CUSTOM_PARTS``), started from the folder that holds the user's package ``mybot/``, with a league match:
    ``<root>/ck/PPO_1``."""
    root = tmp_path_factory.mktemp("custom")
    write_custom_parts(root)
    result = run_cli("train_sb3.py", "--config", "my.yaml", "--total-timesteps", "768", "--seed", "1",
                     "--checkpoint-dir", "ck", "--log-dir", "logs", *set_args(FAST_TRAIN + CUSTOM_LEAGUE), cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result
