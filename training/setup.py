"""Create the pieces ``train_sb3.py`` wires together: device, vec envs with their normalizer, the PPO model."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, Optional, Protocol

import gymnasium as gym

import torch as th
from stable_baselines3.common.utils import LinearSchedule, check_for_correct_spaces
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from config.sizing import minibatch
from config.schema import Config, TrainingConfig, part_name
from config import ConfigError, league_match_counts
from vecenv.base import probe_spaces
from vecenv.selfplay import make_selfplay_vec_env
from training.mirror import RolloutMirror
from training.pipeline import PipelinedPPO
from vecenv.subproc import eval_env_config, make_local_vec_env, make_subproc_vec_env
from envs.components import lookup_table, team_sizes
from training.model_files import BadModelFile, normalizer_obs_shape, read_model_data, read_normalizer

ACTIVATIONS = {"relu": th.nn.ReLU, "tanh": th.nn.Tanh, "leaky_relu": th.nn.LeakyReLU}
#: Offset added to the base seed for the evaluation env, so it never replays a training worker's episodes.
EVAL_SEED_OFFSET = 10_000


def set_torch_threads(threads: int) -> None:
    """Limit torch's intra-op threads in the trainer (0 keeps torch's default of one per core)."""
    if threads > 0:
        th.set_num_threads(threads)


def resolve_device(requested: str) -> th.device:
    """``auto`` -> cuda when available, else cpu. On CUDA, TF32 matmul and cuDNN benchmark are enabled.

    :raises ConfigError: ``cuda`` was requested on a machine where torch sees no usable GPU.
    """
    if requested == "cuda" and not th.cuda.is_available():
        build = f"torch {th.__version__}, " + (f"built for CUDA {th.version.cuda}" if th.version.cuda else "a CPU-only build")
        raise ConfigError(f"training.device is 'cuda' but torch sees no CUDA GPU ({build}); use --device auto "
                          "(cuda when available, else cpu) or --device cpu.")
    device = th.device("cuda" if requested in ("auto", "cuda") and th.cuda.is_available() else "cpu")
    if device.type == "cuda":
        th.backends.cuda.matmul.allow_tf32 = True
        th.backends.cudnn.allow_tf32 = True
        th.backends.cudnn.benchmark = True
    return device


def lr_schedule(train_cfg: TrainingConfig) -> LinearSchedule:
    """Picklable linear learning-rate schedule over the whole run (a lambda would not load elsewhere)."""
    return LinearSchedule(train_cfg.learning_rate, train_cfg.final_learning_rate, 1.0)


def ent_schedule(train_cfg: TrainingConfig) -> LinearSchedule:
    """Picklable linear entropy-coefficient schedule over the whole run."""
    return LinearSchedule(train_cfg.ent_coef, train_cfg.final_ent_coef, 1.0)


def make_vec_env(cfg: Config, num_envs: int, seed: int) -> VecEnv:
    """The configured vec env: ``SelfPlayVecEnv`` (``environment.vec_env: selfplay``, with the ``league``
    matches; ``num_envs`` is its learning-car count, see ``resolve_num_envs``) or ``SubprocVecEnv`` with ``num_envs`` processes."""
    env_cfg = cfg.environment
    if env_cfg.vec_env == "selfplay" and env_cfg.selfplay.backend == "ray":
        from vecenv.ray_backend import RayVecEnv

        return RayVecEnv(env_cfg, cfg.rewards, seed, cfg.ray, env_cfg.selfplay.max_worker_restarts,
                         team_sizes(league_match_counts(cfg)))
    if env_cfg.vec_env == "selfplay":
        return make_selfplay_vec_env(env_cfg, cfg.rewards, seed, team_sizes(league_match_counts(cfg)))
    return make_subproc_vec_env(env_cfg, cfg.rewards, num_envs, seed)


def make_training_env(cfg: Config, num_envs: int, seed: int,
                      normalizer_path: Optional[Path] = None) -> VecNormalize:
    """vec env (:func:`make_vec_env`) -> ``VecMonitor`` -> ``VecNormalize`` (new, or loaded from ``normalizer_path``)."""
    venv: VecEnv = VecMonitor(make_vec_env(cfg, num_envs, seed))
    norm = cfg.normalize
    if normalizer_path is not None:
        vec_norm = load_normalizer(normalizer_path, venv)
        vec_norm.training = True
        vec_norm.norm_reward = norm.norm_reward
        return vec_norm
    return VecNormalize(venv, norm_obs=norm.norm_obs, norm_reward=norm.norm_reward,
                        clip_obs=norm.clip_obs, clip_reward=norm.clip_reward,
                        gamma=cfg.training.gamma)


def make_eval_env(cfg: Config, seed: int) -> VecNormalize:
    """One in-process env whose normalizer is frozen (``training=False``) and leaves rewards raw.

    Its statistics are copied from the training normalizer before each evaluation. In self-play mode the
    learning car plays against do-nothing cars (:func:`vecenv.subproc.eval_env_config`).
    """
    env_cfg = eval_env_config(cfg.environment, league_match_counts(cfg))
    venv = VecMonitor(make_local_vec_env(env_cfg, cfg.rewards, seed + EVAL_SEED_OFFSET))
    norm = cfg.normalize
    return VecNormalize(venv, training=False, norm_obs=norm.norm_obs, norm_reward=False,
                        clip_obs=norm.clip_obs, clip_reward=norm.clip_reward, gamma=cfg.training.gamma)


@contextmanager
def no_mlp_on_gpu_warning() -> Iterator[None]:
    """Silence SB3's "MlpPolicy is primarily intended to run on the CPU" warning: for this trainer the GPU was
    measured faster (16 cores + H200, train stage: 17,714 agent-steps/s on CUDA, 15,350 on the CPU; README
    "Performance"), so ``device: auto`` picks CUDA where there is one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"You are trying to run .* on the GPU")
        yield


def make_model(cfg: Config, env: VecEnv, device: th.device, seed: int) -> PipelinedPPO:
    """PPO (:class:`training.pipeline.PipelinedPPO`: ``training.pipeline_groups`` groups of matches in flight)
    with the configured hyperparameters; ``ent_coef`` starts at the schedule's first value."""
    with no_mlp_on_gpu_warning():
        model = _new_model(cfg, env, device, seed)
    return configure_model(model, cfg)


def configure_model(model: PipelinedPPO, cfg: Config) -> PipelinedPPO:
    """Set what a :class:`training.pipeline.PipelinedPPO` takes from the config but does not save:
    ``training.pipeline_groups`` and ``training.mirror`` (a new model and a resumed one alike)."""
    model.pipeline_groups = pipeline_groups(cfg)
    env_cfg = cfg.environment
    model.mirror = (RolloutMirror(env_cfg.obs_zero_padding, lookup_table(env_cfg)) if cfg.training.mirror
                    else None)
    return model


def _new_model(cfg: Config, env: VecEnv, device: th.device, seed: int) -> PipelinedPPO:
    train = cfg.training
    return PipelinedPPO(
        "MlpPolicy",
        env,
        learning_rate=lr_schedule(train),
        n_steps=train.n_steps,
        batch_size=minibatch(train, env.num_envs),
        n_epochs=train.n_epochs,
        gamma=train.gamma,
        gae_lambda=train.gae_lambda,
        clip_range=train.clip_range,
        ent_coef=train.ent_coef,
        vf_coef=train.vf_coef,
        max_grad_norm=train.max_grad_norm,
        policy_kwargs={
            "net_arch": {"pi": list(train.net_arch.pi), "vf": list(train.net_arch.vf)},
            "activation_fn": ACTIVATIONS[train.activation],
        },
        seed=seed,
        device=device,
        verbose=0,
    )


def pipeline_groups(cfg: Config) -> int:
    """``training.pipeline_groups``, with 0 (auto) resolved: 2 on the Ray backend, else 1."""
    groups = cfg.training.pipeline_groups
    if groups:
        return groups
    env = cfg.environment
    return 2 if env.vec_env == "selfplay" and env.selfplay.backend == "ray" else 1


class HasSpaces(Protocol):
    """A model, or what a model file says about it: its observation and action spaces."""

    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space


def check_spaces(model: HasSpaces, env: VecEnv, what: str) -> None:
    """SB3's ``check_for_correct_spaces`` (what ``PPO.load`` checks), with a message that names the model and the fix.

    :raises ValueError: the spaces differ (e.g. a model trained with another obs builder or team size).
    """
    try:
        check_for_correct_spaces(env, model.observation_space, model.action_space)
    except ValueError as exc:
        raise ValueError(f"{what} does not fit the configured env ({exc}); use the config the model was trained "
                         "with (--config / --set), or another model.") from None


def load_normalizer(path: Path, venv: VecEnv) -> VecNormalize:
    """``VecNormalize.load`` with clear errors: the file must be readable and fit ``venv``'s observations.

    :raises FileNotFoundError: no such file. :raises BadModelFile: unreadable, or shapes differ.
    """
    vec_norm = read_normalizer(Path(path))
    stats_shape = normalizer_obs_shape(vec_norm)
    if stats_shape != venv.observation_space.shape:
        raise BadModelFile(
            f"normalizer '{path}' holds statistics for observations of shape {stats_shape}, but the env's "
            f"observations have shape {venv.observation_space.shape}; pass the .pkl saved with this model, "
            "or the config it was trained with."
        )
    vec_norm.set_venv(venv)
    return vec_norm


def check_obs_size(cfg: Config, model_path: Path, obs_shape: tuple[int, ...]) -> None:
    """The configured obs builder must make the observations the model was trained on.

    :raises ConfigError: it does not (e.g. another obs builder, padding, or a custom builder's kwargs).
    """
    space, _, _ = probe_spaces(cfg.environment, cfg.rewards)
    if tuple(space.shape) != tuple(obs_shape):
        raise ConfigError(
            f"the model '{model_path}' takes observations of {obs_shape[0]} floats, but the configured obs builder "
            f"(environment.obs_builder {part_name(cfg.environment.obs_builder)}, obs_zero_padding "
            f"{cfg.environment.obs_zero_padding}) makes {space.shape[0]}; use the config the model was trained with "
            "(its run folder's config.yaml records the obs builder), or train a new model.")


def load_model(path: Path, env: VecEnv, device: th.device | str, cfg: Config) -> PipelinedPPO:
    """``PPO.load`` onto ``env`` after :func:`training.model_files.read_model_data` checked the file and
    its spaces were checked against ``env``'s; configured by ``cfg`` (:func:`configure_model`).

    :raises BadModelFile: unreadable or not PPO. :raises ValueError: spaces differ from the env's.
    """
    data = read_model_data(Path(path))
    check_spaces(SimpleNamespace(observation_space=data["observation_space"], action_space=data["action_space"]),
                 env, f"model '{path}'")
    with no_mlp_on_gpu_warning():
        model = PipelinedPPO.load(path, env=env, device=device)
    return configure_model(model, cfg)
