"""Import gymnax without paying for its plotting dependencies (see `jaxrl_align.platform`).

`import gymnax` imports every bundled environment, and a few of those (Pong, Catch, Rooms, ...)
import `matplotlib.pyplot`, `matplotlib.colors` and `seaborn` at module level, for their
`render` methods only: about half of `import envs` on a 2-core CPU, paid on every start-up.
Before gymnax is imported we register those modules as stand-ins that import the real module
on first attribute access, so rendering still works and a process that never renders or plots
never loads them.
(`importlib.util.LazyLoader` cannot do this on Python 3.11: the import system reads `__spec__`
of a module found in `sys.modules`, which loads it.) Modules already imported are left alone.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

# Pong also runs `from matplotlib import colors`, which would import matplotlib itself, so the
# package and that submodule are deferred as well.
DEFERRED_MODULES = ("matplotlib", "matplotlib.pyplot", "matplotlib.colors", "seaborn")


class DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str, path: list[str] | None = None):
        super().__init__(name)
        if path is not None:
            # A package: `from package import sub` then looks for `sub` instead of loading it.
            self.__path__ = path

    def _real_module(self) -> types.ModuleType:
        parent = self.__name__.rpartition(".")[0]
        if isinstance(sys.modules.get(parent), DeferredModule):
            sys.modules[parent]._real_module()  # a submodule loads under its real package
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)

    def __getattr__(self, attr: str):
        # `from matplotlib import colors` reads the attribute: a deferred submodule stays so.
        child = sys.modules.get(f"{self.__name__}.{attr}")
        if isinstance(child, DeferredModule):
            return child
        return getattr(self._real_module(), attr)


def defer(name: str) -> None:
    if name in sys.modules:
        return  # already loaded
    # Look up the top-level package only: `find_spec` of a submodule imports its parent.
    package = name.partition(".")[0]
    spec = None if package in sys.modules else importlib.util.find_spec(package)
    if package not in sys.modules and spec is None:
        return  # not installed (gymnax's own import then raises as usual)
    path = list(spec.submodule_search_locations or []) if name == package else None
    sys.modules[name] = DeferredModule(name, path)


OFF_SWITCH = "JAXRL_ALIGN_DEFER_PLOTTING"  # "0": import them eagerly, as gymnax does


def install() -> None:
    """Defer the plotting modules, unless gymnax is already imported or the switch is off."""
    if "gymnax" in sys.modules or os.environ.get(OFF_SWITCH, "") == "0":
        return
    for name in DEFERRED_MODULES:
        defer(name)
