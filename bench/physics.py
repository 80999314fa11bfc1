"""Batched physics: is ``RocketSim.Arena.multi_step`` (all arenas in one call, on RocketSim's threads, without the
GIL) faster than stepping a worker's arenas one by one, as the self-play workers do?

    python -m bench.physics                       # 64 1v1 arenas (a 2-core default worker's cars), 5 rounds
    python -m bench.physics --arenas 16 --rounds 9

Both ways step the same arenas the way a worker's decision does (``envs/engine.py``: one tick on the previous
controls, then ``tick_skip - 1`` ticks), with every car driving (throttle, steer, boost), from kickoffs. Each round
times ``--decisions`` decisions each way, alternating; the report is the median per decision and the ratio
``multi_step / loop`` measured in the same rounds (below 1: batched is faster). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Optional


def make_arenas(n: int, cars_per_team: int = 1) -> list[Any]:
    """``n`` soccar arenas at kickoff, every car driving forward with boost while turning a little."""
    import RocketSim as rsim
    from rlgym.rocket_league.sim import RocketSimEngine

    RocketSimEngine()  # loads the soccar meshes shipped with rlgym-rocket-league, as the workers' engines do
    arenas = []
    for i in range(n):
        arena = rsim.Arena(rsim.GameMode.SOCCAR)
        for team in [0] * cars_per_team + [1] * cars_per_team:
            arena.add_car(team).set_controls(rsim.CarControls(throttle=1.0, steer=0.3, boost=True))
        arena.reset_kickoff(i)
        arenas.append(arena)
    return arenas


def step_each(arenas: list[Any], decisions: int, tick_skip: int) -> float:
    """Seconds for ``decisions`` decisions, stepping the arenas one by one."""
    start = time.perf_counter()
    for _ in range(decisions):
        for arena in arenas:
            arena.step(1)
        for arena in arenas:
            arena.step(tick_skip - 1)
    return time.perf_counter() - start


def step_batched(arenas: list[Any], decisions: int, tick_skip: int) -> float:
    """Seconds for ``decisions`` decisions with ``Arena.multi_step`` over all arenas."""
    import RocketSim as rsim

    start = time.perf_counter()
    for _ in range(decisions):
        rsim.Arena.multi_step(arenas, 1)
        rsim.Arena.multi_step(arenas, tick_skip - 1)
    return time.perf_counter() - start


def measure(arenas: int, rounds: int, decisions: int, tick_skip: int = 8) -> dict[str, float]:
    """Median milliseconds per decision of both ways, and their ratio within each round (median)."""
    world = make_arenas(arenas)
    step_each(world, 5, tick_skip)  # warm-up
    step_batched(world, 5, tick_skip)
    loop, multi, ratio = [], [], []
    for _ in range(rounds):
        a = step_each(world, decisions, tick_skip)
        b = step_batched(world, decisions, tick_skip)
        loop.append(a * 1e3 / decisions)
        multi.append(b * 1e3 / decisions)
        ratio.append(b / a)
    return {"arenas": arenas, "loop_ms": statistics.median(loop), "multi_step_ms": statistics.median(multi),
            "multi_over_loop": statistics.median(ratio)}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.physics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arenas", type=int, default=64, help="arenas (1v1) stepped together (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--decisions", type=int, default=100, help="decisions per round and way (default 100)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    if min(args.arenas, args.rounds, args.decisions) < 1:
        parser.error("--arenas, --rounds and --decisions must be >= 1")
    result = measure(args.arenas, args.rounds, args.decisions)
    print(f"{result['arenas']} arenas, per decision (median of {args.rounds} rounds): one by one "
          f"{result['loop_ms']:.2f} ms, Arena.multi_step {result['multi_step_ms']:.2f} ms; multi_step / one by one "
          f"{result['multi_over_loop']:.2f}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
