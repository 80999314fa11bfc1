"""Check an exported RLBot v5 bot without the game: RLBot packets built from RocketSim (``packets``), the trainer's
engine emitting them (``sim``), an exported folder as an in-process match driver (``driver``, used by
``evaluate.py``), a real-time stand-in for the RLBot core that runs the bot's own process (``core``), the bot's
own venv (``venv``) and ``python export_rlbot.py --check`` (``check``)."""
