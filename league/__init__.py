"""League self-play: opponents for the league matches (past versions, scripted bots, the current policy),
the pool of past versions, and skill ratings (openskill) with a ladder per run."""
