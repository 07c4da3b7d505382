"""Import gymnax without paying for its plotting dependencies.

`import gymnax` imports every bundled environment, and a few of those (Pong, Catch, Rooms, ...)
import `matplotlib.pyplot` and `seaborn` at module level, for their `render` methods only. That
was about 2 of the 4.5 seconds of `import envs` on a 2-core CPU, paid on every start-up. Before
gymnax is imported we register those two modules as stand-ins that import the real module on
first attribute access, so rendering still works and a process that never renders never loads
them. (`importlib.util.LazyLoader` cannot do this on Python 3.11: the import system reads
`__spec__` of a module found in `sys.modules`, which loads it.) Modules already imported are
left alone.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

DEFERRED_MODULES = ("matplotlib.pyplot", "seaborn")


class DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def _real_module(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)

    def __getattr__(self, attr: str):
        return getattr(self._real_module(), attr)


def defer(name: str) -> None:
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return  # already loaded, or not installed (gymnax's own import then raises as usual)
    sys.modules[name] = DeferredModule(name)


if "gymnax" not in sys.modules:
    for _name in DEFERRED_MODULES:
        defer(_name)

import gymnax  # noqa: E402

__all__ = ["gymnax"]
