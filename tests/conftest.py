"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from tests.helpers import FAST_TRAIN, TRAINED_TOTAL, run_cli, set_args


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One short real training run on the default self-play vec env (one 1v1 match: 2 slots): the run
    ``PPO_1`` in ``<root>/ck`` with TensorBoard in ``<root>/logs``. Tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("run")
    result = run_cli("train_sb3.py", "--total-timesteps", str(TRAINED_TOTAL), "--seed", "1",
                     "--checkpoint-dir", "ck", "--log-dir", "logs", *set_args(FAST_TRAIN), cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result
