"""jaxrl_align: reward learning and imitation learning in JAX.

Importing the package applies its process-wide settings (`jaxrl_align.platform`) and nothing
else; import the modules you need (`jaxrl_align.algorithms.bc`, `jaxrl_align.runtime.runner`, ...).
"""
import jaxrl_align.platform  # noqa: F401  (XLA flags, threefry lowering, gymnax import guard)
