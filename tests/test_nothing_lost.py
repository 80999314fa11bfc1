"""Nothing the user trained is lost: one folder per run, every stop signal saves, bad files and folders get a
clear exit 2, a full disk or a diverged update never replaces a good pair. Real processes, real files."""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import psutil
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks.checkpoint import save_or_warn
from callbacks.stop import PendingStopCallback
from tests.helpers import FAST_TRAIN, REPO, descendants, fast_config, run_cli, set_args, shm_files
from vecenv.subproc import eval_env_config, make_local_vec_env
from training.model_files import inspect_pair
from training.runs import find_resume_pair
from training.saving import save_pair
from training import signals
from training.signals import STOP_SIGNALS, StopRequested, install_stop_handlers, pending_stop, stop_behind
from training.setup import load_normalizer


def tree_digest(folder: Path) -> dict[str, str]:
    """File name -> content hash, for every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_run(trained, dest: Path) -> Path:
    """A copy of the shared trained run's checkpoint and log roots in ``dest``; returns ``dest/ck/PPO_1``."""
    root, _ = trained
    shutil.copytree(root / "ck", dest / "ck")
    shutil.copytree(root / "logs", dest / "logs")
    return dest / "ck" / "PPO_1"


def test_two_runs_in_one_root_stay_separate_and_latest_picks_the_newer(trained, tmp_path):
    run1 = copy_run(trained, tmp_path)
    before = tree_digest(run1)
    # Run 2 prunes to its last pair: pruning and "best" must touch only its own folder.
    result = run_cli("train_sb3.py", "--total-timesteps", "512", "--checkpoint-dir", "ck", "--log-dir", "logs",
                     *set_args(FAST_TRAIN), "--set", "checkpoints.keep_last=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert tree_digest(run1) == before  # run 1 untouched, byte for byte
    run2 = tmp_path / "ck" / "PPO_2"
    assert sorted(p.name for p in run2.glob("checkpoint_*.zip")) == ["checkpoint_512.zip"]
    assert (run2 / "best_model.zip").is_file() and (run2 / "model_final.zip").is_file()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["PPO_1", "PPO_2"]
    assert find_resume_pair("latest", tmp_path / "ck").model_path == run2 / "model_final.zip"
    listing = run_cli("train_sb3.py", "--list-runs", "--checkpoint-dir", "ck", cwd=tmp_path, timeout=60)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[2].split()[:2] == ["PPO_2", "512"] and lines[3].split()[:2] == ["PPO_1", "1,024"]
    # Naming an existing run for a new one is refused: it would mix two runs in one folder.
    again = run_cli("train_sb3.py", "--run-name", "PPO_1", "--checkpoint-dir", "ck", "--log-dir", "logs",
                    cwd=tmp_path, timeout=60)
    assert again.returncode == 2 and "--resume PPO_1" in again.stderr


def test_latest_skips_unreadable_pairs_with_a_warning(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    final = run / "model_final.zip"
    final.write_bytes(final.read_bytes()[:500])  # truncated by a crash: newest, but unreadable
    (run / "vecnormalize_1024.pkl").write_bytes(b"\x80\x04garbage")
    os.utime(run / "checkpoint_1024.zip")  # make the pair with the garbage normalizer the newest of all
    pair = find_resume_pair("latest", tmp_path / "ck")
    assert pair.model_path == run / "checkpoint_768.zip" and pair.num_timesteps == 768
    err = capsys.readouterr().err
    assert "skipping an unreadable pair" in err and "model_final.zip" in err and "vecnormalize_1024.pkl" in err


def _a2c_model(path: Path) -> None:
    from stable_baselines3 import A2C

    A2C("MlpPolicy", "CartPole-v1", device="cpu").save(path)


def _foreign_normalizer(path: Path) -> None:
    """A real VecNormalize file for observations of another size (CartPole's 4 floats)."""
    import gymnasium as gym

    VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")])).save(str(path))


BAD_RESUMES = {
    "truncated model": (lambda run: (run / "checkpoint_512.zip").write_bytes((run / "checkpoint_512.zip").read_bytes()[:700]),
                        "checkpoint_512.zip", "truncated or corrupt"),
    "empty model": (lambda run: (run / "checkpoint_512.zip").write_bytes(b""), "checkpoint_512.zip", "is empty"),
    "garbage normalizer": (lambda run: (run / "vecnormalize_512.pkl").write_bytes(b"not a pickle at all"),
                           "vecnormalize_512.pkl", "truncated or corrupt"),
    "mismatched pair": (lambda run: _foreign_normalizer(run / "vecnormalize_512.pkl"), "vecnormalize_512.pkl",
                        "not a pair"),
    "model from another algorithm": (lambda run: _a2c_model(run / "checkpoint_512.zip"), "checkpoint_512.zip",
                                     "saved by A2C, not PPO"),
}


@pytest.mark.parametrize("case", list(BAD_RESUMES))
def test_bad_model_files_exit_2_naming_the_file_and_write_nothing(trained, tmp_path, case):
    damage, file_name, message = BAD_RESUMES[case]
    run = copy_run(trained, tmp_path)
    damage(run)
    before, logs_before = tree_digest(tmp_path / "ck"), tree_digest(tmp_path / "logs")
    result = run_cli("train_sb3.py", "--resume", "ck/PPO_1/checkpoint_512.zip", "--checkpoint-dir", "ck",
                     "--log-dir", "logs", cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert file_name in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(tmp_path / "ck") == before and tree_digest(tmp_path / "logs") == logs_before
    evaluated = run_cli("evaluate.py", "--model", "ck/PPO_1/checkpoint_512.zip", cwd=tmp_path, timeout=60)
    assert evaluated.returncode == 2 and file_name in evaluated.stderr and "Traceback" not in evaluated.stderr


def test_evaluating_more_cars_than_the_observation_holds_exits_2(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    result = run_cli("evaluate.py", "--model", str(run / "checkpoint_512.zip"), "--team-size", "3", "--set",
                     "environment.obs_zero_padding=2", cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "--team-size 3 is larger than environment.obs_zero_padding (2)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--checkpoint-dir", "a_file"], "'a_file' is a file, not a folder"),
    (["--log-dir", "a_file/logs"], "'a_file' is a file, not a folder"),
    (["--set", "checkpoints.min_free_mb=1000000000"], "MB free on the disk"),
    (["--device", "cuda"], "torch sees no CUDA GPU"),
    (["--set", "training.batch_size=8192"], "'training.batch_size' (8192) is larger than one rollout"),
    (["--config", "empty.yaml"], "config file 'empty.yaml' is empty"),
    (["--resume", "PPO_9"], "--resume 'PPO_9': no such model file, folder, or run"),
], ids=["checkpoint-dir-is-a-file", "log-dir-under-a-file", "disk-full", "cuda-without-gpu",
        "batch-larger-than-rollout", "empty-config", "unknown-run"])
def test_bad_inputs_exit_2_before_any_worker_starts(tmp_path, args, message):
    if message.startswith("torch sees") and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty.yaml").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli("train_sb3.py", *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no checkpoints/ or logs/ created


def test_a_save_that_fails_midway_leaves_the_previous_pair_intact(trained, tmp_path, capsys):
    """A real write failure (the file-size limit, as a full disk does: the OS refuses the write) in the middle
    of saving over an existing pair."""
    run = copy_run(trained, tmp_path)
    model_path, norm_path = run / "checkpoint_512.zip", run / "vecnormalize_512.pkl"
    before = tree_digest(run)
    cfg = fast_config()
    venv = make_local_vec_env(eval_env_config(cfg.environment), cfg.rewards, seed=0)
    vec_norm = load_normalizer(run / "vecnormalize_final.pkl", venv)
    model = PPO.load(run / "model_final.zip", env=vec_norm, device="cpu")  # as in training: model + its normalizer
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the model zip is larger: its write fails midway
    try:
        with pytest.raises(OSError):
            save_pair(model, vec_norm, model_path, norm_path)
        assert save_or_warn(model, model_path, norm_path, "checkpoint") is False
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        venv.close()
    assert "could not save checkpoint" in capsys.readouterr().err
    assert tree_digest(run) == before  # same files, same bytes, no temporary file left
    assert inspect_pair(model_path).num_timesteps == 512


class SignalledMidSave(PPO):
    """A real PPO that gets Ctrl-C while it is being saved (it can land at any moment of a long run)."""

    def get_parameters(self):
        os.kill(os.getpid(), signal.SIGINT)
        return super().get_parameters()


def test_ctrl_c_during_a_save_lets_the_pair_finish_then_stops(tmp_path):
    """Last CI failure: SIGINT inside ``torch.save`` left its zip half-written and came out as a RuntimeError
    (exit 1 instead of 130). Now the save finishes, then the stop is raised."""
    vec_norm = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    model = SignalledMidSave("MlpPolicy", vec_norm, n_steps=64, device="cpu")
    model_path, norm_path = tmp_path / "checkpoint_64.zip", tmp_path / "vecnormalize_64.pkl"
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    install_stop_handlers()
    try:
        with pytest.raises(StopRequested) as stopped:
            save_pair(model, vec_norm, model_path, norm_path)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert stopped.value.exit_code == 130
    assert PPO.load(model_path, device="cpu").policy is not None
    assert VecNormalize.load(str(norm_path), vec_norm.venv).obs_rms.mean.shape == (4,)
    assert sorted(p.name for p in tmp_path.iterdir()) == [model_path.name, norm_path.name]  # no temporary file
    # A stop that a library turned into its own error is still recognised as a stop.
    try:
        try:
            raise StopRequested(signal.SIGTERM)
        except KeyboardInterrupt:
            raise RuntimeError("unexpected pos 46784 vs 46548")  # what torch.save raised on CI
    except RuntimeError as exc:
        assert stop_behind(exc).exit_code == 143


class _RaisesSigintWhenCollected:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)  # the stop handler runs inside this finalizer, which drops its exception


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_training_at_the_next_step():
    """Seen in a test run: the first Ctrl-C raised inside code that dropped the exception, the later ones only
    printed "please wait", and training went on. The recorded stop is raised again at the next step."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    install_stop_handlers()
    try:
        finalized = _RaisesSigintWhenCollected()
        del finalized  # prints "Exception ignored in ...": the StopRequested does not reach us here
        assert pending_stop() is not None and pending_stop().exit_code == 130
        model = PPO("MlpPolicy", DummyVecEnv([lambda: gym.make("CartPole-v1")]), n_steps=64, device="cpu")
        with pytest.raises(StopRequested):
            model.learn(10_000, callback=PendingStopCallback())
        assert model.num_timesteps <= 1  # stopped at the first step, not after the 10,000
    finally:
        signals._requested = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_until(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_stop_signals_at_random_moments_always_leave_a_resumable_pair(tmp_path):
    """Three runs in a row, each stopped by a signal at a random moment; each later one resumes the previous
    one with --resume latest. The first is also sent SIGUSR1 (a pair appears, training goes on) and stopped
    while saving that pair; one gets three SIGTERMs, the later ones landing during the interrupted save. (A single
    SIGTERM is how the Ray test and bench.learning's timed runs stop.)"""
    rng = random.Random(13)
    shm_before = shm_files()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    common = ["--checkpoint-dir", "ck", "--log-dir", "logs", "--total-timesteps", "10000000"]
    run = tmp_path / "ck" / "PPO_1"
    interrupted = run / "model_interrupted.zip"
    how = ["SIGUSR1+SIGTERM", "SIGTERM x3 to the group", "SIGHUP"]
    saved_steps = 0
    for attempt, kind in enumerate(how):
        args = common + (set_args(FAST_TRAIN) + ["--set", "checkpoints.save_freq=100000"] if attempt == 0
                         else ["--resume", "latest"])
        started = time.time()
        proc = subprocess.Popen([sys.executable, str(REPO / "train_sb3.py"), *args], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        _wait_until(lambda: (run / "config.yaml").is_file() and (run / "config.yaml").stat().st_mtime >= started - 1,
                    proc)
        children = descendants(proc.pid)
        time.sleep(rng.uniform(0.5, 3.0))  # a random moment of the run
        if kind == "SIGUSR1+SIGTERM":
            pairs = set(run.glob("model_snapshot_*.zip"))
            os.kill(proc.pid, signal.SIGUSR1)
            _wait_until(lambda: set(run.glob("model_snapshot_*.zip")) - pairs, proc, timeout=30)
            pairs = set(run.glob("model_snapshot_*.zip"))
            os.kill(proc.pid, signal.SIGUSR1)  # a second pair comes at a later step: the first did not stop training
            _wait_until(lambda: set(run.glob("model_snapshot_*.zip")) - pairs, proc, timeout=30)
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(0.001)  # the next SIGTERM lands while that pair is being saved
            os.kill(proc.pid, signal.SIGTERM)
        elif kind == "SIGTERM x3 to the group":  # systemd and a closing terminal signal every process
            for _ in range(3):
                os.killpg(proc.pid, signal.SIGTERM)
                time.sleep(0.02)
        else:
            os.kill(proc.pid, getattr(signal, kind))
        out, err = proc.communicate(timeout=60)
        signum = signal.SIGHUP if kind == "SIGHUP" else signal.SIGTERM
        assert proc.returncode == 128 + signum, err[-3000:]
        assert "Traceback" not in err
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"{kind}: processes left behind: {alive}"
        if attempt > 0:  # it resumed the pair the previous stop saved
            assert f"{saved_steps:,} done / 10,000,000 (resumed from ck/PPO_1/model_interrupted.zip)" in out
        pair = inspect_pair(interrupted)  # loadable, model and normalizer belong together
        assert pair.num_timesteps >= saved_steps
        assert PPO.load(interrupted, device="cpu").num_timesteps == pair.num_timesteps
        assert "Resume with: python train_sb3.py --resume ck/PPO_1/model_interrupted.zip" in out
        saved_steps = pair.num_timesteps
    assert saved_steps > 0
    assert shm_files() == shm_before
    assert not list(run.glob(".*tmp"))
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["PPO_1"]  # every resume kept the run's folder


def test_health_warnings_then_divergence_stops_with_the_last_good_pair_newest(trained, tmp_path):
    # An absurd learning rate: the metrics leave their healthy range and the trainer says so.
    result = run_cli("train_sb3.py", "--total-timesteps", "768", "--checkpoint-dir", "ck", "--log-dir", "logs",
                     *set_args(FAST_TRAIN), "--set", "training.learning_rate=1.0",
                     "--set", "training.final_learning_rate=1.0", "--set", "health.patience=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # (with normalize.norm_obs true, approx_kl is the first to leave its range; the default's raw observations make
    # the gradients explode first)
    assert "Warning: grad_norm has been above 10 for 2 updates in a row" in result.stderr
    assert "lower training.learning_rate" in result.stderr
    acc = EventAccumulator(str(tmp_path / "logs" / "PPO_1"), size_guidance={"tensors": 0})
    acc.Reload()
    assert "health/warning/text_summary" in acc.Tags()["tensors"]

    # Rewards of 1e30 overflow float32: the first update after resuming turns the weights into NaN.
    run = copy_run(trained, tmp_path / "b")
    for name in ("checkpoint_768.zip", "checkpoint_1024.zip", "model_final.zip"):
        (run / name).unlink()
    before = tree_digest(run)
    result = run_cli("train_sb3.py", "--resume", "latest", "--checkpoint-dir", "ck", "--log-dir", "logs",
                     "--set", "rewards.player_to_ball=1e30", "--set", "normalize.norm_reward=false",
                     cwd=tmp_path / "b")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Training diverged: NaN or infinity in" in result.stderr
    assert "after PPO update #4 (step 640)" in result.stderr  # 3 updates before the pair at 512, then 512 -> 640
    assert "the newest pair on disk is ck/PPO_1/checkpoint_512.zip" in result.stderr
    after = tree_digest(run)
    assert {k: v for k, v in after.items() if k != "config.yaml"} == {
        k: v for k, v in before.items() if k != "config.yaml"}  # no pair written or replaced
    assert find_resume_pair("latest", tmp_path / "b" / "ck").model_path == run / "checkpoint_512.zip"
