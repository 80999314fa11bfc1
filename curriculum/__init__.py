"""The skill curriculum: stages of match mix that a run moves through by measured skill (see ``config.yaml``'s
``curriculum:`` section). ``config`` holds the schema and the checks, ``curriculum`` the state machine that reads
the league's games and decides when to advance; nothing here starts a match (``training/setup.py`` applies a
stage to the vec env and the league)."""
