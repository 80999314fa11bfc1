"""Many matches at once: the self-play vec env (every car an SB3 env slot) and its worker processes that share memory
with the trainer (``selfplay.py``, ``worker.py``), each worker's batched step of all its matches (``batched.py``),
the same matches on Ray actors (``ray_backend.py``), what both share (``base.py``), and SB3's ``SubprocVecEnv`` of the
single-car env with the thread limits of every worker process (``subproc.py``). What one match is lives in
``envs/``."""
