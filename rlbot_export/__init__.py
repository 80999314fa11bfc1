"""Export a trained model as an RLBot v5 bot folder (``python export_rlbot.py``): ``export`` writes the folder from
the model, its normalizer and the run's config, with the shipped files of ``rlbot_template/``. Checking the
exported bot (the stand-in core, ``--check``) lives in ``rlbot_harness``."""
