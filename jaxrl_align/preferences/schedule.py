"""How many comparisons to query in each round: imitation's query schedules.

    constant: 1    hyperbolic: 1 / (1 + t)    inverse_quadratic: 1 / (1 + t²)

with `t = linspace(0, 1, num_rounds)`. The shares are normalised and the comparisons left after
the initial ones (`int(total · initial_comparison_frac)`) are apportioned to whole numbers by
optimal rounding (imitation's `util.oric`: floor, then the remainder to the largest fractional
parts), so the schedule sums to `total` exactly. Computed once on the host: it fixes shapes.
"""
from __future__ import annotations

import numpy as np

SCHEDULES = {
    "constant": lambda t: np.ones_like(t),
    "hyperbolic": lambda t: 1.0 / (1.0 + t),
    "inverse_quadratic": lambda t: 1.0 / (1.0 + t**2),
}


def oric(x: np.ndarray) -> np.ndarray:
    """Integers with the same (integer) sum as `x`, each within 1 of its entry, closest overall."""
    x = np.asarray(x, np.float64)
    floors = np.floor(x)
    remainder = int(round(x.sum() - floors.sum()))
    order = np.argsort(-(x - floors), kind="stable")
    out = floors.astype(np.int64)
    out[order[:remainder]] += 1
    return out


def query_schedule(name: str, total_comparisons: int, num_rounds: int,
                   initial_comparison_frac: float) -> tuple[int, np.ndarray]:
    """(initial comparisons, comparisons per round `[num_rounds]`); they sum to `total`."""
    if name not in SCHEDULES:
        raise ValueError(f"query_schedule: expected one of {list(SCHEDULES)}, got {name!r}")
    if total_comparisons <= 0:
        raise ValueError(f"total_comparisons: expected a positive integer, got {total_comparisons}")
    if not 0.0 <= initial_comparison_frac <= 1.0:
        raise ValueError(f"initial_comparison_frac: expected a value in [0, 1], got "
                         f"{initial_comparison_frac}")
    if num_rounds <= 0:
        raise ValueError(f"num_rounds: expected a positive integer, got {num_rounds}")
    initial = int(total_comparisons * initial_comparison_frac)
    shares = SCHEDULES[name](np.linspace(0, 1, num_rounds))
    shares = shares / shares.sum()
    return initial, oric((total_comparisons - initial) * shares)
