"""The bot's own Python environment, made from its folder's ``requirements.txt`` as its README tells a user to.

Why: RLBot v5 starts the bot's ``run_command`` (``./venv/bin/python bot.py``), so the bot runs on whatever that
venv holds, never on the trainer's. ``export_rlbot.py --check`` therefore installs the bot folder's own pinned
requirements into a fresh venv, made once per (requirements, Python version) and kept in a cache, so a second
check starts at once. A venv is marked complete only after pip succeeded; a half-made one is made again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

#: Environment variable naming the cache folder of bot venvs (default: ``$XDG_CACHE_HOME/rl-trainer/bot-venvs``).
CACHE_ENV = "RL_TRAINER_BOT_VENVS"
COMPLETE_MARK = ".complete"
#: Longest pip install of the bot's requirements (s): a fresh machine downloads RocketSim and the RLBot packages.
INSTALL_TIMEOUT_S = 1800
#: Characters of pip's output shown when the requirements do not install.
OUTPUT_TAIL = 3000


class VenvError(RuntimeError):
    """The bot's requirements do not install; the message holds pip's own output tail."""


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rl-trainer" / "bot-venvs"


def venv_key(requirements: Path) -> str:
    """Cache key: the requirements' text and this interpreter's version (a venv is tied to both)."""
    return hashlib.sha256(Path(requirements).read_bytes() + sys.version.encode()).hexdigest()[:16]


def bot_venv(requirements: Path, cache_dir: Optional[Path] = None) -> tuple[Path, bool]:
    """The venv holding ``requirements`` (made now with this interpreter unless cached) and whether it was made
    now.

    :raises VenvError: pip could not install the requirements (its output tail in the message).
    """
    requirements = Path(requirements).resolve()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / venv_key(requirements)
    with open(cache_dir / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two checks at once make one venv
        if (target / COMPLETE_MARK).is_file():
            return target, False
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, capture_output=True)
        pip = subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                              "--quiet", "-r", str(requirements)], capture_output=True, text=True,
                             cwd=requirements.parent, timeout=INSTALL_TIMEOUT_S)
        if pip.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise VenvError(f"the bot's requirements do not install ({requirements}, pip exit {pip.returncode}):\n"
                            + (pip.stdout + pip.stderr)[-OUTPUT_TAIL:])
        (target / COMPLETE_MARK).write_text(requirements.read_text())
        return target, True
