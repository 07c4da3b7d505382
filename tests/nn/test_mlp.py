"""The MLP's speed options (`xnnpack_weight_grads`, `identity_input`) change nothing but speed:
same parameters, values and gradients as the plain MLP."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.nn.mlp import MLP


def test_xnnpack_weight_grads_give_the_same_gradients():
    """The MLP option that routes weight gradients through a materialised transpose changes
    nothing but speed: values and gradients equal plain `nn.Dense`'s, vmapped too."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 7))

    def loss(net):
        return lambda p, xs: jnp.sum(jnp.sin(net.apply(p, xs)))

    for out_dim in (2, 1):  # a one-wide head takes its own weight-gradient product
        plain, fast = MLP((16, 8), out_dim), MLP((16, 8), out_dim, xnnpack_weight_grads=True)
        params = jax.vmap(lambda k: plain.init(k, x[0]))(
            jax.random.split(jax.random.PRNGKey(1), 3))
        # Same parameters: a network can switch the option on without re-initialising.
        assert (jax.tree.structure(fast.init(jax.random.PRNGKey(1), x[0]))
                == jax.tree.structure(plain.init(jax.random.PRNGKey(1), x[0])))
        grads = [jax.jit(jax.vmap(jax.value_and_grad(loss(net), argnums=(0, 1))))(params, x)
                 for net in (plain, fast)]
        for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        unbatched = [jax.grad(loss(net))(jax.tree.map(lambda v: v[0], params), x[0])
                     for net in (plain, fast)]
        for a, b in zip(jax.tree.leaves(unbatched[0]), jax.tree.leaves(unbatched[1])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_identity_input_option_gives_the_same_values_and_gradients():
    """An MLP told that its input is the identity matrix (one-hot states) skips the first
    product: same parameters, values and gradients as the plain MLP on the identity, vmapped;
    any other input shape is refused."""
    eye = jnp.eye(6)
    for hidden in ((16,), ()):
        plain, fast = MLP(hidden, 1), MLP(hidden, 1, identity_input=True,
                                           xnnpack_weight_grads=True)
        params = jax.vmap(lambda k: plain.init(k, eye))(jax.random.split(jax.random.PRNGKey(3), 2))
        assert (jax.tree.structure(fast.init(jax.random.PRNGKey(1), eye))
                == jax.tree.structure(plain.init(jax.random.PRNGKey(1), eye)))
        loss = lambda net: lambda p: jnp.sum(jnp.sin(net.apply(p, eye)))
        grads = [jax.jit(jax.vmap(jax.value_and_grad(loss(net))))(params) for net in (plain, fast)]
        for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        # The first layer's product is gone from the program.
        products = lambda net: str(jax.make_jaxpr(loss(net))(
            jax.tree.map(lambda x: x[0], params))).count("dot_general")
        assert products(fast) == products(plain) - 1
    with pytest.raises(ValueError, match=r"identity input of shape \(6, 6\)"):
        MLP((4,), 1, identity_input=True).init(jax.random.PRNGKey(0), jnp.ones((5, 6)))
