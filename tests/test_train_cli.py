"""``train_sb3.py`` and ``evaluate.py`` as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from config import load_config
from config.load import json_schema
from tests.helpers import FAST_TRAIN, REPO, TRAINED_TOTAL, descendants, run_cli, set_args, shm_files, start_training

TOTAL = TRAINED_TOTAL  # 8 iterations of 2 env slots (one self-play 1v1 match) x 64 steps
ROLLOUT = 128
REQUIRED_TAGS = {
    "train/entropy_coef", "train/grad_norm", "train/learning_rate", "train/clip_fraction", "train/approx_kl",
    "rollout/ep_rew_mean", "time/fps",
}


def scalars(run_dir: Path) -> dict[str, list]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


def test_training_writes_pairs_best_final_and_all_tags(trained):
    root, result = trained
    assert [p.name for p in (root / "ck").iterdir()] == ["PPO_1"]  # one folder per run, named like its TB run
    ck = root / "ck" / "PPO_1"
    steps = sorted(int(m.group(1)) for p in ck.iterdir() if (m := re.match(r"checkpoint_(\d+)\.zip$", p.name)))
    assert steps == [256, 512, 768, 1024]
    for n in steps:
        assert (ck / f"vecnormalize_{n}.pkl").is_file()
    for model, norm in [("best_model.zip", "best_vecnormalize.pkl"), ("model_final.zip", "vecnormalize_final.pkl")]:
        assert (ck / model).is_file() and (ck / norm).is_file()
    assert not list(ck.glob(".*tmp"))  # no temporary files left behind
    saved_cfg = yaml.safe_load((ck / "config.yaml").read_text())  # the resolved config, --set values included
    assert saved_cfg["training"]["n_steps"] == 64 and saved_cfg["environment"]["selfplay"]["matches"]["1v1"] == 1
    assert (ck / "evaluations.npz").is_file()

    runs = list((root / "logs").iterdir())
    assert [r.name for r in runs] == ["PPO_1"]
    tags = scalars(runs[0])
    parts = {f"reward/{p}_mean" for p in ("goal", "touch", "player_to_ball", "ball_to_goal")}
    missing = (REQUIRED_TAGS | parts) - set(tags)
    assert not missing, f"missing TensorBoard tags: {missing}"
    assert "ROCKET LEAGUE BOT" in result.stdout and "Workers:     1 processes (SelfPlayVecEnv" in result.stdout


def test_entropy_coef_follows_schedule_during_run(trained):
    root, _ = trained
    train = load_config().training
    values = [e.value for e in scalars(root / "logs" / "PPO_1")["train/entropy_coef"]]
    assert values[0] == pytest.approx(train.ent_coef, rel=1e-6)
    assert all(a > b for a, b in zip(values, values[1:]))  # strictly decreasing: ent_coef really changes
    lrs = [e.value for e in scalars(root / "logs" / "PPO_1")["train/learning_rate"]]
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and train.final_learning_rate <= lrs[-1] < train.learning_rate


def test_resume_continues_steps_schedule_and_tensorboard_run(trained, tmp_path):
    root, _ = trained
    shutil.copytree(root / "ck", tmp_path / "ck")
    shutil.copytree(root / "logs", tmp_path / "logs")
    for name in ("checkpoint_768.zip", "checkpoint_1024.zip", "model_final.zip"):  # resume from step 512
        (tmp_path / "ck" / "PPO_1" / name).unlink()
    # No --set: a resumed run takes its own saved config.yaml (the fast settings), not the repository defaults.
    result = run_cli("train_sb3.py", "--resume", "latest", "--checkpoint-dir", "ck", "--log-dir", "logs",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "512 done / 1,024 (resumed from ck/PPO_1/checkpoint_512.zip)" in result.stdout
    assert "config: ck/PPO_1/config.yaml" in result.stdout
    assert [r.name for r in (tmp_path / "logs").iterdir()] == ["PPO_1"]  # same run, curves continue
    assert [r.name for r in (tmp_path / "ck").iterdir()] == ["PPO_1"]  # and the same folder

    from stable_baselines3 import PPO

    model = PPO.load(tmp_path / "ck" / "PPO_1" / "model_final.zip", device="cpu")
    assert model.num_timesteps == TOTAL
    ent = scalars(tmp_path / "logs" / "PPO_1")["train/entropy_coef"]
    resumed = [e for e in ent if e.step > 512]
    # The first entropy value after resuming is the schedule at 512/1024 steps (set at the rollout's start,
    # logged at its end, 128 steps later), not a restart at the schedule's first value.
    first = min(resumed, key=lambda e: (e.step, e.wall_time))
    assert first.step == 512 + ROLLOUT
    train = load_config().training
    start, end = train.ent_coef, train.final_ent_coef
    assert first.value == pytest.approx(start + (end - start) * 512 / TOTAL, rel=1e-5)


def test_evaluate_json_prints_keys(trained):
    root, _ = trained
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/best_model.zip", "--episodes", "2", "--json", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and summary["team_size"] == 1
    for opponent in ("vs_self", "vs_idle"):  # self-play config: against itself and against do-nothing cars
        run = summary[opponent]
        for key in ("mean_reward", "std_reward", "mean_length_s", "goals_for_per_episode",
                    "goals_against_per_episode"):
            assert isinstance(run[key], float)
        assert run["episodes"] == 2 and set(run["touch_rate"]) == {"blue", "orange"}
        assert all(0.0 <= rate <= 1.0 for rate in run["touch_rate"].values())
    assert "vs itself" in result.stdout and "vs do-nothing" in result.stdout


def test_evaluate_subproc_config_plays_the_single_car_env(trained):
    root, _ = trained
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/best_model.zip", "--episodes", "2", "--json",
                     "--set", "environment.vec_env=subproc", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("episodes", "mean_reward", "std_reward", "mean_length_s", "goals_per_episode", "touch_rate"):
        assert key in summary
    assert summary["episodes"] == 2 and 0.0 <= summary["touch_rate"] <= 1.0


def test_evaluate_refuses_mismatched_normalizer_and_model(trained):
    root, _ = trained
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/best_model.zip", "--set", "environment.obs_zero_padding=1",
                     cwd=root)
    assert result.returncode == 2
    assert "normalizer" in result.stderr and "shape" in result.stderr
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/nope.zip", cwd=root)
    assert result.returncode == 2 and "not found" in result.stderr


def test_readme_loading_snippet_runs(trained):
    root, _ = trained
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"<!-- loading-snippet -->\s*```python\n(.*?)```", readme, re.S).group(1)
    workdir = root / "snippet"
    workdir.mkdir()
    shutil.copytree(root / "ck", workdir / "checkpoints")
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", snippet], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("args, key", [
    (["--set", "training.gama=0.9"], "training.gama"),
    (["--set", "environment.tick_skip=0"], "environment.tick_skip"),
    (["--set", "environment.state_mutators=[teleport]"], "environment.state_mutators[0]"),
])
def test_bad_config_exits_2_naming_the_key_and_writes_nothing(tmp_path, args, key):
    result = run_cli("train_sb3.py", *args, "--checkpoint-dir", "ck", "--log-dir", "logs", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert key in result.stderr
    assert not (tmp_path / "ck").exists() and not (tmp_path / "logs").exists()


def test_bad_config_file_key_exits_2(tmp_path):
    (tmp_path / "my.yaml").write_text("training:\n  learning_rat: 0.001\n")
    result = run_cli("train_sb3.py", "--config", "my.yaml", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "training.learning_rat" in result.stderr and "learning_rate" in result.stderr


@pytest.mark.parametrize("vec_env, presses", [(["--set", "environment.vec_env=subproc", "--num-envs", "2"], 1),
                                              (["--set", "environment.selfplay.matches.1v1=2"], 3)],
                         ids=["subproc", "selfplay-ctrl-c-pressed-3-times"])
def test_ctrl_c_saves_interrupted_pair_and_leaves_no_worker(tmp_path, vec_env, presses):
    shm_before = shm_files()
    # A new session, signalled as a group: what a terminal does on Ctrl-C (workers get SIGINT too).
    proc = start_training(tmp_path, ["--total-timesteps", "10000000", *set_args(FAST_TRAIN), *vec_env],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    children = descendants(proc.pid)
    assert len(children) >= 2
    for _ in range(presses):  # more presses land while the interrupted pair is being saved
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert (tmp_path / "ck" / "PPO_1" / "model_interrupted.zip").is_file()
    assert (tmp_path / "ck" / "PPO_1" / "vecnormalize_interrupted.pkl").is_file()
    assert "--resume ck/PPO_1/model_interrupted.zip" in out
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"worker processes left behind: {alive}"
    assert shm_files() == shm_before


def test_training_survives_a_killed_worker_and_cleans_up(tmp_path):
    """kill -9 of a self-play worker mid-run: a warning, a fresh worker, and the run finishes normally."""
    shm_before = shm_files()
    proc = start_training(tmp_path, ["--total-timesteps", "2048", *set_args(FAST_TRAIN),
                                     "--set", "environment.selfplay.matches.1v1=2", "--set", "training.n_steps=32"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children = descendants(proc.pid)  # the 2 workers and multiprocessing's resource tracker
    workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    workers[0].kill()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert "died with exit code -9; restarting it" in err
    run = tmp_path / "ck" / "PPO_1"
    assert (run / "model_final.zip").is_file() and (run / "vecnormalize_final.pkl").is_file()
    from stable_baselines3 import PPO

    assert PPO.load(run / "model_final.zip", device="cpu").num_timesteps == 2048
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"processes left behind: {alive}"
    assert shm_files() == shm_before


def test_killed_trainer_leaves_no_worker_and_no_shared_memory(tmp_path):
    """kill -9 of the trainer itself (no chance to clean up): its workers see the closed pipe and exit."""
    shm_before = shm_files()
    proc = start_training(tmp_path, ["--total-timesteps", "10000000", *set_args(FAST_TRAIN),
                                     "--set", "environment.selfplay.matches.1v1=2"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children = descendants(proc.pid)
    assert len([p for p in children if "spawn_main" in " ".join(p.cmdline())]) == 2
    proc.kill()
    proc.wait(timeout=10)
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"processes left behind: {alive}"
    assert shm_files() == shm_before


def test_num_envs_flag_in_selfplay_mode_exits_2_with_the_fix(tmp_path):
    result = run_cli("train_sb3.py", "--num-envs", "4", "--checkpoint-dir", "ck", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "environment.selfplay" in result.stderr and "vec_env=subproc" in result.stderr
    assert not (tmp_path / "ck").exists()


def test_evaluate_renders_episodes_to_gif(trained):
    from PIL import Image

    root, _ = trained
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/model_final.zip", "--episodes", "2", "--render-episodes", "1",
                     "--render", "out/eval.gif", "--json", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    gif = Image.open(root / "out" / "eval.gif")
    # Without a goal, the first episode ends at the no-touch timeout (2 s here) or later: 15 frames per second.
    assert gif.n_frames >= 2 * 15
    assert f"Rendered {gif.n_frames} frames (1 episode(s), 15 fps)" in result.stdout
    assert summary["episodes"] == 2


def test_evaluate_render_live_without_rlviser_says_how_to_install(trained):
    try:
        import rlviser_py  # noqa: F401
        pytest.skip("rlviser-py is installed here")
    except ImportError:
        pass
    root, _ = trained
    result = run_cli("evaluate.py", "--model", "ck/PPO_1/model_final.zip", "--render-live", cwd=root)
    assert result.returncode == 2
    assert "pip install rlviser-py" in result.stderr and "Traceback" not in result.stderr


def test_print_config_shows_the_resolved_config_and_the_schema_file_is_current(tmp_path):
    result = run_cli("train_sb3.py", "--print-config", "--set", "training.gamma=0.9", "--set",
                     "rewards.touch=2", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = yaml.safe_load(result.stdout)
    assert printed["training"]["gamma"] == 0.9 and printed["rewards"]["touch"] == 2.0
    assert load_config(None, ["training.gamma=0.9", "rewards.touch=2"]).dump() == printed  # what training uses
    assert not list(tmp_path.iterdir())  # printing starts nothing and writes nothing
    # config.schema.json (what editors check config.yaml with) is the schema of the code: rewrite it with
    # `python train_sb3.py --write-schema` after changing config/schema.py.
    assert (REPO / "config.schema.json").read_text() == json_schema()
    assert (REPO / "config.yaml").read_text().startswith("# yaml-language-server: $schema=./config.schema.json")
