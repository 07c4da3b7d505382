"""The process-wide settings of `jaxrl_align.platform`: the XLA flags that importing `envs` (or
`jaxrl_align`) sets before JAX's CPU client starts, the warning when it is too late for them,
the deferred plotting modules of the gymnax import guard, the off switches, and that importing
`envs` does nothing else to the process. Also the package's import graph: no cycles, and `envs`
depends on `jaxrl_align.platform` only.

Import-time behaviour is only visible in a fresh interpreter (this one has imported everything
already), so those tests run short child processes, as few as the checks allow."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrl_align.platform import gymnax_import, threefry, xla_flags

ROOT = Path(__file__).resolve().parents[2]
OFF_SWITCHES = (xla_flags.OFF_SWITCH, gymnax_import.OFF_SWITCH, threefry.OFF_SWITCH)
WANTED_FLAGS = list(xla_flags.wanted_flags().values())


def run_child(code: str, **environ: str) -> str:
    """Run `code` in a fresh interpreter on the CPU, with `XLA_FLAGS` and every off switch unset
    unless given in `environ`; returns its standard output."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS" and k not in OFF_SWITCHES}
    env.update(JAX_PLATFORMS="cpu", **environ)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def child_report(code: str, **environ: str) -> dict:
    """The JSON object that `code` prints last, run as `run_child` runs it."""
    return json.loads(run_child(code, **environ).strip().splitlines()[-1])


# `import envs` (or `jaxrl_align`) in a fresh process, and what it changed. jax itself is
# imported first (that starts no backend) so that its configuration can be compared.
IMPORT_AND_REPORT = """
import json, os, sys
import jax
config_before, environ_before = dict(jax.config.values), dict(os.environ)
import {first}
from jax._src import xla_bridge
backend_started = bool(xla_bridge.backends_are_initialized())
modules = sorted(name for name in sys.modules if name.partition(".")[0] == "jaxrl_align")
from jaxrl_align.platform.gymnax_import import DeferredModule
deferred = sorted(name for name, module in list(sys.modules.items())
                  if isinstance(module, DeferredModule))
changed_config = sorted(name for name, value in jax.config.values.items()
                        if config_before.get(name, object()) != value)
changed_environ = sorted(name for name in set(os.environ) | set(environ_before)
                         if os.environ.get(name) != environ_before.get(name))
import jax.numpy as jnp
lowered = jax.jit(lambda key: jax.random.bits(key, (8,), jnp.uint32)).lower(
    jax.random.PRNGKey(0)).as_text()
print(json.dumps({{"backend_started": backend_started, "xla_flags": os.environ.get("XLA_FLAGS"),
                  "modules": modules, "deferred": deferred, "changed_config": changed_config,
                  "changed_environ": changed_environ,
                  "unrolled_threefry": "stablehlo.while" not in lowered}}))
"""
IMPORT_ENVS = IMPORT_AND_REPORT.format(first="envs")


@pytest.fixture(scope="module")
def fresh_import() -> dict:
    """What `import envs` does in a fresh process with no XLA_FLAGS and no off switch."""
    return child_report(IMPORT_ENVS)


def test_importing_envs_first_still_starts_jax_with_the_package_xla_flags(fresh_import):
    """gymnax builds arrays at import, which starts JAX's CPU client; the scheduler flag that
    `jaxrl_align.platform` sets (it avoids an XLA:CPU deadlock) must be in place before that
    happens."""
    assert fresh_import["backend_started"]  # the client did start during `import envs`
    flags = fresh_import["xla_flags"].split()
    assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in flags
    assert "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=100000" in flags
    # A user's own backend options are kept as they are.
    mine = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
    flags = child_report(IMPORT_ENVS, XLA_FLAGS=mine)["xla_flags"].split()
    assert [flag for flag in flags if "backend_extra" in flag] == [mine]
    assert f"--{xla_flags.SCHEDULER_FLAG}=false" in flags


def test_importing_envs_changes_nothing_but_the_platform_settings(fresh_import):
    """`import envs` applies `jaxrl_align.platform` and nothing else: XLA_FLAGS holds exactly the
    platform's flags, the unrolled threefry lowering is registered (a small draw lowers without
    a loop), JAX's configuration and JAX's other environment variables are untouched, and no
    part of jaxrl_align beyond the package itself and its platform layer was imported."""
    assert fresh_import["xla_flags"].split() == WANTED_FLAGS
    assert fresh_import["unrolled_threefry"]
    assert fresh_import["changed_config"] == []
    assert [name for name in fresh_import["changed_environ"]
            if name.startswith(("XLA", "JAX", "TF_", "JAXRL"))] == ["XLA_FLAGS"]
    others = [name for name in fresh_import["modules"] if name != "jaxrl_align"
              and name != "jaxrl_align.platform" and not name.startswith("jaxrl_align.platform.")]
    assert others == [], others
    assert "jaxrl_align.platform" in fresh_import["modules"]
    assert fresh_import["deferred"] == sorted(gymnax_import.DEFERRED_MODULES)


def test_importing_envs_defers_matplotlib_until_it_is_used(tmp_path):
    """gymnax's bundled environments import matplotlib, pyplot and seaborn for `render` alone;
    `import envs` leaves stand-ins that load the real modules on first use (a fresh process:
    this one may have loaded matplotlib already)."""
    code = f"""
import sys
import envs
from jaxrl_align.platform.gymnax_import import DeferredModule
from gymnax.environments.misc import pong
deferred = [name for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.colors", "seaborn")
            if isinstance(sys.modules.get(name), DeferredModule)]
assert deferred == ["matplotlib", "matplotlib.pyplot", "matplotlib.colors", "seaborn"], deferred
assert pong.colors.ListedColormap.__module__ == "matplotlib.colors"  # loads it now
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
fig.savefig({str(tmp_path / "plot.png")!r})
assert matplotlib.pyplot is sys.modules["matplotlib.pyplot"] and plt.subplots
assert not isinstance(sys.modules["matplotlib"], DeferredModule)
"""
    run_child(code)
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


LATE_IMPORT = """
import json, warnings
import jax
jax.numpy.zeros(1)  # starts JAX's backend, with XLA_FLAGS unset
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import jaxrl_align
from jaxrl_align.platform import LateSettingsWarning
print(json.dumps([str(w.message) for w in caught if issubclass(w.category, LateSettingsWarning)]))
"""


def test_importing_jaxrl_align_after_jax_started_warns_that_the_flags_are_late():
    """A user who runs a JAX computation first and imports jaxrl_align afterwards is told that
    the XLA flags could not apply, naming them."""
    (message,) = child_report(LATE_IMPORT)
    assert all(flag in message for flag in WANTED_FLAGS), message


@pytest.mark.parametrize("switch", [xla_flags.OFF_SWITCH, gymnax_import.OFF_SWITCH])
def test_each_off_switch_turns_off_its_setting_alone(switch):
    """JAXRL_ALIGN_XLA_FLAGS=0 sets no flag; JAXRL_ALIGN_DEFER_PLOTTING=0 defers nothing. The
    other settings stay on. (`import jaxrl_align` applies them as `import envs` does, without
    the seconds gymnax takes to import the plotting modules once they are not deferred.)"""
    report = child_report(IMPORT_AND_REPORT.format(first="jaxrl_align"), **{switch: "0"})
    if switch == xla_flags.OFF_SWITCH:
        assert report["xla_flags"] is None
        assert report["deferred"] == sorted(gymnax_import.DEFERRED_MODULES)
    else:
        assert report["deferred"] == []
        assert report["xla_flags"].split() == WANTED_FLAGS
    assert report["unrolled_threefry"]


# ---------------------------------------------------------------- the import graph

PACKAGES = ("jaxrl_align", "envs")


def project_modules() -> dict[str, tuple[Path, bool]]:
    """Every module under jaxrl_align/ and envs/: dotted name -> (file, is a package)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_statements(tree: ast.AST):
    """Every import statement, at module level or inside functions and classes (those under
    `if TYPE_CHECKING:` are never executed and are left out)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(source: str, name: str, is_package: bool, modules) -> set[str]:
    """The modules among `modules` that the module `name` (source code `source`) imports.
    `from x import y` imports the module x.y when y is a submodule, else x. The parent packages
    that Python also runs on the way to a module are not edges: every submodule would
    otherwise form a cycle with a package that imports it."""
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in import_statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
            continue
        if node.level:
            parts = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module
        for alias in node.names:
            if f"{base}.{alias.name}" in modules:
                targets.add(f"{base}.{alias.name}")
            elif base in modules:
                targets.add(base)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = project_modules()
    return {name: imported_modules(path.read_text(), name, is_package, modules)
            for name, (path, is_package) in modules.items()}


def test_imported_modules_resolves_every_form_of_import():
    modules = {"p", "p.a", "p.b", "p.sub", "p.sub.c", "p.sub.d", "p.sub.e", "p.sub.f"}
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import numpy
import p.a
from p import b, not_a_module
from . import d
from .e import something
if TYPE_CHECKING:
    from p.sub import f


def later():
    from ..sub import c
"""
    assert imported_modules(source, "p.sub.mod", False, modules) == {
        "p.a", "p.b", "p", "p.sub.d", "p.sub.e", "p.sub.c"}
    # In a package's __init__, "." is the package itself.
    assert imported_modules("from . import c", "p.sub", True, modules) == {"p.sub.c"}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def test_strongly_connected_components_find_cycles():
    """The cycle finder itself, on a graph with one 3-cycle and a separate chain."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set()}
    assert sorted(strongly_connected_components(graph)) == [["a", "b", "c"], ["d"], ["e"]]


def test_the_import_graph_has_no_cycles():
    """No two modules of jaxrl_align/ and envs/ import each other, directly or through others
    (function-level imports included: they only postpone a cycle to the first call)."""
    graph = import_graph()
    assert graph["envs"] and graph["jaxrl_align"]  # the walk sees imports
    cycles = [component for component in strongly_connected_components(graph)
              if len(component) > 1]
    details = {" <-> ".join(c): {m: sorted(graph[m] & set(c)) for m in c} for c in cycles}
    assert cycles == [], details


def test_envs_imports_only_the_platform_layer_of_jaxrl_align():
    graph = import_graph()
    imported = {(module, target) for module, targets in graph.items()
                if module.partition(".")[0] == "envs" for target in targets
                if target.partition(".")[0] == "jaxrl_align"}
    assert ("envs", "jaxrl_align.platform") in imported
    assert [(module, target) for module, target in sorted(imported)
            if target != "jaxrl_align.platform"
            and not target.startswith("jaxrl_align.platform.")] == []
