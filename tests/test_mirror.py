"""Left-right mirroring (training.mirror): the mirrored observation and action are what RocketSim gives for the
mirrored match, and PPO's update gets every sample and its twin (real RocketSim, real SB3)."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch as th
from rlgym.api import StateMutator
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BOOST_LOCATIONS
from stable_baselines3 import PPO

from envs.components import build_match
from envs.mirror import ObsMirror, action_mirror, pad_mirror_permutation
from envs.components import lookup_table
from tests.helpers import fast_config
from training.setup import make_model, make_training_env

MIRROR = np.array([-1.0, 1.0, 1.0], dtype=np.float32)


class SetState(StateMutator[GameState]):
    """A fixed 1v1 start, or its mirror image: cars driving over big boost pads (so pad timers differ), the ball
    moving and spinning off-centre."""

    def __init__(self, mirrored: bool):
        self.m = MIRROR if mirrored else np.ones(3, dtype=np.float32)
        self.mirrored = mirrored

    def apply(self, state: GameState, shared_info: Dict[str, Any]) -> None:
        m = self.m
        spin = np.array([1.0, -1.0, -1.0], dtype=np.float32) if self.mirrored else np.ones(3, dtype=np.float32)
        state.ball.position = np.array([700.0, 300.0, 400.0], dtype=np.float32) * m
        state.ball.linear_velocity = np.array([-600.0, 250.0, 300.0], dtype=np.float32) * m
        state.ball.angular_velocity = np.array([1.0, 2.0, -3.0], dtype=np.float32) * spin
        starts = [(BOOST_LOCATIONS[3], 0.4), (BOOST_LOCATIONS[30], -2.2)]  # big pads, blue and orange side
        for car, (pad, yaw) in zip(state.cars.values(), starts):
            car.physics.position = np.array([pad[0] + 300.0, pad[1], 17.0], dtype=np.float32) * m
            car.physics.linear_velocity = np.array([-900.0, 0.0, 0.0], dtype=np.float32) * m
            car.physics.angular_velocity = np.zeros(3, dtype=np.float32)
            car.physics.euler_angles = np.array([0.0, np.pi - yaw if self.mirrored else yaw, 0.0], dtype=np.float32)
            car.boost_amount = 20.0


def test_pad_permutation_pairs_mirror_images():
    perm = pad_mirror_permutation()
    locations = np.asarray(BOOST_LOCATIONS)
    np.testing.assert_allclose(locations[perm, 0], -locations[:, 0])
    np.testing.assert_allclose(locations[perm, 1], locations[:, 1], atol=3)  # rlgym has 3308 against 3310
    assert (perm[perm] == np.arange(len(perm))).all()


def test_mirrored_match_gives_the_mirrored_observations_step_after_step():
    """Two RocketSim matches, one the mirror image of the other; the second is driven with the mirrored actions.
    At every step each car's observation in the second is the mirror of its observation in the first."""
    cfg = fast_config()
    env_cfg = cfg.environment
    mirror, table = ObsMirror(env_cfg.obs_zero_padding), lookup_table(env_cfg)
    action_perm = action_mirror(table)
    assert (action_perm[action_perm] == np.arange(len(table))).all()
    np.testing.assert_array_equal(table[action_perm][:, [1, 3, 4]], -table[:, [1, 3, 4]])
    matches = [build_match(env_cfg, cfg.rewards, SetState(mirrored), team_sizes=(1, 1))[0]
               for mirrored in (False, True)]
    rng = np.random.default_rng(0)
    try:
        obs = [match.reset() for match in matches]
        pads_taken = False
        for step in range(40):
            for agent in obs[0]:
                np.testing.assert_allclose(mirror(obs[0][agent]), obs[1][agent], atol=2e-3,
                                           err_msg=f"{agent} at step {step}")
            pads_taken |= bool(matches[0].state.boost_pad_timers.any())
            chosen = {agent: int(rng.integers(len(table))) for agent in obs[0]}
            obs = [matches[0].step({a: np.array([x]) for a, x in chosen.items()})[0],
                   matches[1].step({a: np.array([action_perm[x]]) for a, x in chosen.items()})[0]]
        assert pads_taken, "no pad was picked up: the pad permutation went untested"
    finally:
        for match in matches:
            match.close()


def test_update_learns_from_each_sample_and_its_mirrored_twin(tmp_path):
    cfg = fast_config("training.mirror=true", "environment.selfplay.matches.1v1=2", "league.matches.1v1=1")
    env = make_training_env(cfg, 5, 0)
    try:
        model = make_model(cfg, env, th.device("cpu"), 0)
        model.learn(total_timesteps=5 * 64)  # one rollout and one update with the twins
        buf, normalizer = model.rollout_buffer, model.get_vec_normalize_env()
        augmented = model.mirror.augment(buf, model.policy, normalizer)
        n = buf.buffer_size * buf.n_envs
        assert augmented.observations.shape[0] == 2 * n and augmented.buffer_size * augmented.n_envs == 2 * n
        obs, twins = augmented.observations[:n], augmented.observations[n:]
        raw = normalizer.unnormalize_obs(obs)
        inside = np.abs(twins) < normalizer.clip_obs  # the twins are clipped as every normalized observation is
        assert inside.mean() > 0.95
        np.testing.assert_allclose(normalizer.unnormalize_obs(twins)[inside], model.mirror.obs_mirror(raw)[inside],
                                   rtol=1e-4, atol=1e-3)
        actions = augmented.actions[:n, 0].astype(int)
        np.testing.assert_array_equal(augmented.actions[n:, 0], model.mirror.action_perm[actions])
        np.testing.assert_array_equal(augmented.advantages[n:], augmented.advantages[:n])
        np.testing.assert_array_equal(augmented.returns[n:], augmented.returns[:n])
        with th.no_grad():  # the twins' old log-probabilities are the policy's, for PPO's ratio
            _, log_prob, _ = model.policy.evaluate_actions(th.as_tensor(twins),
                                                           th.as_tensor(augmented.actions[n:, 0]))
        np.testing.assert_allclose(augmented.log_probs[n:, 0], log_prob.numpy(), rtol=1e-5, atol=1e-6)
        assert model._n_updates > 0
        model.save(tmp_path / "m.zip")
    finally:
        env.close()
    assert not hasattr(PPO.load(tmp_path / "m.zip", device="cpu"), "mirror")  # plain SB3 loads it
