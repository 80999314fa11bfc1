"""Stable-Baselines3 callbacks used by ``train_sb3.py``: each file holds one callback with one job."""

from callbacks.checkpoint import PairCheckpointCallback
from callbacks.curriculum import CurriculumCallback
from callbacks.entropy_schedule import EntropyScheduleCallback
from callbacks.evaluation import SaveBestPairCallback, make_eval_callback
from callbacks.grad_norm import GradNormCallback
from callbacks.league import LeagueCallback
from callbacks.health import TrainingHealthCallback, health_limits
from callbacks.progress import TrainingProgressBar
from callbacks.reward_parts import RewardPartsCallback
from callbacks.stop import PendingStopCallback, StopAtStepsCallback
from callbacks.torch_threads import UpdateThreadsCallback

__all__ = [
    "CurriculumCallback",
    "EntropyScheduleCallback",
    "GradNormCallback",
    "LeagueCallback",
    "TrainingHealthCallback",
    "PairCheckpointCallback",
    "PendingStopCallback",
    "RewardPartsCallback",
    "SaveBestPairCallback",
    "StopAtStepsCallback",
    "TrainingProgressBar",
    "UpdateThreadsCallback",
    "health_limits",
    "make_eval_callback",
]
