"""Query schedules (`jaxrl_align.preferences.schedule`) match imitation's."""
import numpy as np
import pytest

from jaxrl_align.preferences.schedule import oric, query_schedule


def test_query_schedules_match_imitation():
    initial, rounds = query_schedule("constant", 100, 5, 0.1)
    assert initial == 10 and rounds.tolist() == [18] * 5
    # hyperbolic 1/(1+t), t = 0, .25, ..., 1: 90 * shares = 25.44 20.35 16.96 14.54 12.72.
    initial, rounds = query_schedule("hyperbolic", 100, 5, 0.1)
    assert initial == 10 and rounds.tolist() == [25, 20, 17, 15, 13]
    initial, rounds = query_schedule("inverse_quadratic", 1000, 7, 0.25)
    t = np.linspace(0, 1, 7)
    shares = 1 / (1 + t**2)
    expected = 750 * shares / shares.sum()
    assert initial == 250 and rounds.sum() == 750 and np.all(np.abs(rounds - expected) < 1)
    assert oric(np.array([0.5, 0.5, 1.0])).sum() == 2
    with pytest.raises(ValueError, match="query_schedule"):
        query_schedule("linear", 100, 5, 0.1)
