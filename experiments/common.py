"""What every command-line entry point shares: the flags of the process (environment, output
folder, compilation cache, jax.distributed), which sit beside the runner's own settings
(`jaxrl_align.runtime.runner.RunSettings`, embedded as flags), input checks and the results
table."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ProcessFlags:
    env: str = "seals/CartPole-v0"
    """environment id: a seals id from `envs.registered_ids()` or any gymnax id"""
    out: Path | None = None
    """output folder (default: runs/<algo>-<env>)"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache (~/.cache/jaxrl_align/xla, or $JAXRL_ALIGN_CACHE)"""
    coordinator_address: str | None = None
    """host:port of process 0, to run one command over several processes (jax.distributed)"""
    num_processes: int = 1
    """processes joined by jax.distributed (with --coordinator-address)"""
    process_id: int = 0
    """this process's index (with --coordinator-address); process 0 writes the outputs"""


class UsageError(ValueError):
    """Bad input found before anything was compiled or written."""


def flag_error(error: Exception) -> UsageError:
    """A settings error ("name: problem") as the command line says it ("--name: problem")."""
    name, sep, problem = str(error).partition(": ")
    if sep and name.isidentifier():
        return UsageError(f"--{name.replace('_', '-')}: {problem}")
    return UsageError(str(error))


def _flag_for(message: str, argv: list[str]) -> str:
    """A config error "field: problem" as "--the.flag-given: problem", naming the flag on the
    command line that set that field (the defaults are valid, so a given flag is the cause)."""
    name, sep, problem = message.partition(": ")
    if not sep or not name.isidentifier():
        return message
    dashed = name.replace("_", "-")
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag.rsplit(".", 1)[-1].lstrip("-") in (dashed, name):
            return f"{flag}: {problem}"
    return message


def parse_command_line(commands: dict, argv: list[str] | None = None):
    """tyro's subcommand parser, with a config's validation error (raised while tyro builds it)
    as one line naming the flag, like every other input error. Uses tyro's parse-error hook
    (`tyro._errors.on_parse_error`, internal to tyro 1.0); without it tyro prints its own box."""
    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from tyro._errors import on_parse_error
    except ImportError:
        return tyro.extras.subcommand_cli_from_dict(commands, args=argv)

    def one_line(event):
        if type(event).__name__ == "InstantiationFailure":
            raise UsageError(_flag_for(event.message, argv))

    try:
        with on_parse_error(one_line):
            return tyro.extras.subcommand_cli_from_dict(commands, args=argv)
    except UsageError as e:
        exit_on_usage_error(e)


def check_process_flags(flags: ProcessFlags) -> None:
    if flags.coordinator_address is not None and not 0 <= flags.process_id < flags.num_processes:
        raise UsageError(f"--process-id: expected 0 <= id < --num-processes "
                         f"({flags.num_processes}), got {flags.process_id}")


def make_env(env_id: str):
    import envs

    try:
        return envs.make(env_id)
    except ValueError as e:
        raise UsageError(f"--env: {e}") from None


def reference_returns_or_none(env_id: str):
    from experiments.reference_returns import reference_returns

    try:
        return reference_returns(env_id)
    except ValueError:
        return None


def init_distributed(flags: ProcessFlags) -> None:
    """Join the other processes of a multi-process run; must come before JAX touches a device."""
    import jax

    if flags.coordinator_address is not None and not jax.distributed.is_initialized():
        jax.distributed.initialize(coordinator_address=flags.coordinator_address,
                                   num_processes=flags.num_processes, process_id=flags.process_id)


def init_distributed_from_argv(argv=None) -> None:
    """`init_distributed` from the raw command line, for entry points to call before importing
    anything that starts JAX's backend (gymnax does at import). tyro validates the same flags
    afterwards."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def value(flag, default=None):
        for i, arg in enumerate(argv):
            for name in (flag, flag.replace("-", "_")):
                if arg == name and i + 1 < len(argv):
                    return argv[i + 1]
                if arg.startswith(name + "="):
                    return arg.split("=", 1)[1]
        return default

    address = value("--coordinator-address")
    if address is None:
        return
    try:
        num_processes, process_id = int(value("--num-processes", 1)), int(value("--process-id", 0))
    except ValueError:
        return  # tyro reports the malformed flag
    if not 0 <= process_id < num_processes:
        return  # check_process_flags reports it
    import jax

    jax.distributed.initialize(coordinator_address=address, num_processes=num_processes,
                               process_id=process_id)


def setup_jax(flags: ProcessFlags) -> None:
    if flags.compile_cache:
        from jaxrl_align.platform import compilation_cache

        compilation_cache.enable()


def exit_on_usage_error(error: Exception) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def results_table(title: str, seeds, summary: dict) -> str:
    """Per-seed return and normalised score (diverged runs marked), then IQM with its bootstrap
    95% interval over the runs that did not diverge."""
    rows = [title, f"{'seed':>6} {'return':>10} {'normalised':>11}"]
    scores = summary.get("normalized_score") or [float("nan")] * len(seeds)
    excluded = set(summary.get("excluded", ()))
    for i, (seed, ret, score) in enumerate(zip(seeds, summary["return_mean"], scores)):
        rows.append(f"{seed:>6} {ret:>10.1f} {score:>11.3f}"
                    + ("  diverged: not in the IQM" if i in excluded else ""))
    if summary.get("iqm") is not None and "normalized_score" in summary:
        lo, hi = summary["iqm_ci95"]
        kept = [r for i, r in enumerate(summary["return_mean"]) if i not in excluded]
        rows.append(f"IQM normalised score {summary['iqm']:.3f}  (95% CI {lo:.3f} – {hi:.3f}); "
                    f"mean return {np.mean(kept):.1f}"
                    + (f"; {len(excluded)} diverged run(s) left out" if excluded else ""))
    elif excluded and len(excluded) == len(seeds):
        rows.append("every run diverged: no IQM")
    return "\n".join(rows)
