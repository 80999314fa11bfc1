"""Play a trained model in Rocket League: export it as an RLBot v5 bot (``python export_rlbot.py``), and check it
offline: packets built from RocketSim (``packets``, ``sim``), the bot as a match driver (``driver``) and a stand-in
for the RLBot core that runs the bot's process (``core``)."""
