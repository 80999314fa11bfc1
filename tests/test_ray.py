"""Ray backend of the self-play vec env on real Ray: a two-node ``ray.cluster_utils.Cluster`` on this machine and a
local Ray started by the trainer (small: 1 CPU per node, no dashboard, small object store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import psutil
import pytest

from vecenv.base import ScriptedOpponents
from vecenv.selfplay import SelfPlayVecEnv
from tests.helpers import FAST_TRAIN, REPO, fast_config, play, set_args, start_training, write_custom_parts

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from config.schema import RayConfig  # noqa: E402
from vecenv.ray_backend import ActorsNotPlaced, RayVecEnv, runtime_env  # noqa: E402

OBJECT_STORE = 80 * 2**20
#: Two actors of one CPU each, spread over the nodes, one worker process inside each.
RAY_CFG = RayConfig(address="auto", actors=2, cpus_per_actor=0.5, workers_per_actor=1, num_cpus=0, object_store_mb=0,
                    timeout_s=10.0)


def ray_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        text = " ".join([proc.info["name"] or ""] + (proc.info["cmdline"] or []))
        if "raylet" in text or "gcs_server" in text or "ray::" in text:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, 1 CPU each, in this machine; this test process is the driver."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE,
                                                           "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_same_seed_same_rollout_as_the_local_vec_env(cluster):
    """Self-play and league matches (scripted opponents run in the actors) spread over two nodes, stepped as two
    groups in flight, give SB3 the same observations, rewards, dones, terminal observations and reward parts as
    the local self-play vec env stepped whole."""
    cfg = fast_config("environment.selfplay.matches.1v1=2", "environment.selfplay.matches.2v2=1")
    env_cfg, rewards = cfg.environment, cfg.rewards
    local = SelfPlayVecEnv(env_cfg, rewards, seed=3, num_workers=2, league_sizes=[1, 1],
                           opponents=ScriptedOpponents(seed=9))
    actions = np.random.default_rng(0).integers(0, 90, size=(40, local.num_envs))
    try:
        expected = play(local, actions)
    finally:
        local.close()
    remote = RayVecEnv(env_cfg, rewards, seed=3, ray_cfg=RAY_CFG, league_sizes=[1, 1],
                       opponents=ScriptedOpponents(seed=9))
    try:
        assert len({info["host"] + str(info["pid"]) for info in remote.actor_info()}) == 2
        got = play(remote, actions, groups=2)  # two groups of one actor in flight, as in pipelined collection
    finally:
        remote.close()
    assert any(step[2].any() for step in expected[1:]), "no episode ended: the comparison misses terminal steps"
    for want, have in zip(expected, got):
        for a, b in zip(want, have):
            if isinstance(a, list):
                assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b))
            else:
                np.testing.assert_array_equal(a, b)
    assert ray.is_initialized()  # the env joined the cluster: it leaves it running


def test_a_hung_actor_and_a_lost_node_are_replaced(cluster):
    """An actor that stops answering (SIGSTOP) is noticed within ``ray.timeout_s`` and replaced in its placement
    bundle; the actor on a removed node is replaced on the remaining one. Their slots end as truncated, stepping goes
    on."""
    cfg = fast_config("environment.selfplay.matches.1v1=2")
    env = RayVecEnv(cfg.environment, cfg.rewards, seed=1, ray_cfg=RAY_CFG.model_copy(update={"timeout_s": 2.0}))
    try:
        env.reset()
        for _ in range(3):
            env.step(np.zeros(env.num_envs, dtype=np.int64))
        hung = env.actor_info()[0]["pid"]
        os.kill(hung, signal.SIGSTOP)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obs, rewards, dones, infos = env.step(np.zeros(env.num_envs, dtype=np.int64))
        assert env.restarts == 1 and infos[0].get("worker_restarted") and dones[0], infos[0]
        assert any("GetTimeoutError" in str(w.message) for w in caught)
        assert hung not in {info["pid"] for info in env.actor_info()}
        hosts_before = env.actor_info()
        used = {info["node_id"] for info in hosts_before}
        node = next(n for n in cluster.worker_nodes if n.node_id in used)  # a non-head node running an actor
        cluster.remove_node(node)
        restarted = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(5):
                obs, rewards, dones, infos = env.step(np.zeros(env.num_envs, dtype=np.int64))
                restarted += [slot for slot, info in enumerate(infos) if info.get("worker_restarted")]
        assert env.restarts >= 2 and restarted, hosts_before
        assert any("died" in str(w.message) for w in caught)
        assert obs.shape == (env.num_envs, 172) and np.isfinite(obs).all()
    finally:
        env.close()


def test_more_actor_cpus_than_the_cluster_has_stops_at_once(cluster):
    cfg = fast_config("environment.selfplay.matches.1v1=3")
    with pytest.raises(ActorsNotPlaced, match=r"ray.actors 3 x ray.cpus_per_actor 1 = 3 CPUs, but the Ray cluster "
                                              r"has \d; lower ray.actors or ray.cpus_per_actor"):
        RayVecEnv(cfg.environment, cfg.rewards, seed=1,
                  ray_cfg=RAY_CFG.model_copy(update={"actors": 3, "cpus_per_actor": 1.0}))


def test_training_on_ray_saves_on_sigterm_and_leaves_nothing_running(tmp_path):
    """A train_sb3.py run on a local Ray it starts itself (2 actors), with a user's own reward, obs builder, state
    mutator and done condition (their package reaches the actors through Ray's runtime_env), stopped by SIGTERM (what
    schedulers and `timeout` send) after its first checkpoint: the checkpoint and the interrupted pair, exit 143, and
    no Ray process of its own left (ray.init installs its own SIGTERM handler; the trainer puts its own back)."""
    before = {p.pid for p in ray_processes()}
    write_custom_parts(tmp_path)
    proc = start_training(tmp_path, ["--config", "my.yaml", "--total-timesteps", "100000", *set_args(FAST_TRAIN + [
        "environment.selfplay.backend=ray", "environment.selfplay.matches.1v1=2", "league.matches.1v1=1",
        "ray.actors=2", "ray.cpus_per_actor=1", "ray.num_cpus=2", "ray.object_store_mb=80"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "2 Ray actors" in out and "height 0.5 (mybot.parts:BallHeightReward)" in out
    assert "SIGTERM: stopped" in err + out
    run = tmp_path / "ck" / "PPO_1"
    assert (run / "model_interrupted.zip").is_file() and (run / "vecnormalize_interrupted.pkl").is_file()
    assert list(run.glob("checkpoint_*.zip"))
    left = [p for p in ray_processes() if p.pid not in before]
    assert not left, [" ".join(p.cmdline()) for p in left]


def test_ray_backend_without_ray_says_how_to_install(tmp_path):
    code = ("import sys, runpy\nsys.modules['ray'] = None\n"
            f"sys.argv = ['train_sb3.py', '--checkpoint-dir', 'ck', '--log-dir', 'logs', '--set', "
            "'environment.selfplay.backend=ray']\n"
            f"runpy.run_path({str(REPO / 'train_sb3.py')!r}, run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 2
    assert "pip install -r requirements-ray.txt" in result.stderr
    assert not (tmp_path / "ck").exists()
