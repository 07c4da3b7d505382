"""The bench's flop count (`experiments.bench.machine.loop_corrected_cost`): XLA's cost analysis
counts a loop body once, the corrected count once per iteration, nested loops included. The
whole bench (`python -m experiments.bench.machine`) is minutes of compilation and is not run
here."""
import jax
import jax.numpy as jnp
import pytest

from experiments.bench.machine import fully_unrolled, loop_corrected_cost

X = jnp.ones((16, 8))
W = jnp.full((8, 8), 0.1)
PRODUCT = 2 * 16 * 8 * 8  # flops of X @ W


def scanned(k: int, inner: int = 1):
    def step(c, _):
        c = jax.lax.scan(lambda c, _: (c @ W, None), c, None, length=inner)[0]
        return c, None
    return lambda x: jax.lax.scan(step, x, None, length=k)[0]


def compiled(fn, *args):
    return jax.jit(fn).lower(*args).compile()


@pytest.mark.parametrize("k, inner", [(1, 1), (3, 1), (3, 4)])
def test_a_scan_of_k_products_counts_k_products(k, inner):
    cost = loop_corrected_cost(compiled(scanned(k, inner), X))
    # A few flops of loop counters on top of the products.
    assert cost["flops"] == pytest.approx(k * inner * PRODUCT, rel=1e-2)
    assert cost["dot_flops"] == k * inner * PRODUCT
    # XLA's own count sees each body once.
    assert cost["xla_flops_loops_once"] == pytest.approx(PRODUCT, rel=1e-2)


def test_a_loop_of_run_time_length_takes_the_trip_count_given():
    def fori(x, n):
        return jax.lax.fori_loop(0, n, lambda i, c: c @ W, x)

    program = compiled(fori, X, 5)
    assert loop_corrected_cost(program, outer_trip_count=5)["flops"] == pytest.approx(
        5 * PRODUCT, rel=1e-2)
    cost = loop_corrected_cost(program)
    assert cost["flops"] == pytest.approx(PRODUCT, rel=1e-2)  # unknown: once, and reported
    assert len(cost["unknown_loops"]) == 1


def test_the_count_agrees_with_xla_on_the_unrolled_program():
    fn = scanned(3, 2)
    unrolled = loop_corrected_cost(fully_unrolled(fn, X).lower(X).compile())
    assert unrolled["loop_count"] == 0
    assert loop_corrected_cost(compiled(fn, X))["flops"] == pytest.approx(unrolled["flops"],
                                                                          rel=1e-2)
