"""jaxrl_align: reward learning and imitation learning in JAX."""
