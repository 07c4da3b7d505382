"""Hyperparameter sweeps: every configuration × every seed in one compiled program.

    python -m experiments.sweep bc --demos runs/quickstart/demos.npz --seeds 8 \
        --grid lr=1e-4,1e-3,1e-2,1e-1 --out runs/sweep-bc
    python -m experiments.sweep ppo --seeds 4 --grid lr=3e-4,1e-3 ent-coef=0,0.01
    python -m experiments.sweep bc --demos demos.npz --random lr=1e-5:1e-1:log --samples 16

A hyperparameter is named by its dotted path in the algorithm's config (bc: lr, ent_weight,
l2_weight; ppo: lr, gamma, gae_lambda, clip_eps, ent_coef, vf_coef; gail/airl: disc_lr and
ppo.lr, ppo.gamma, ...; preferences: model.lr, model.weight_decay, ppo.*; mce_irl: lr, discount,
...; `jaxrl_align.hparams.paths(config)` lists them). They are traced values in the algorithm
state, so the grid is one more array axis and a new grid never recompiles. Every run flag of
`experiments.train` works here too (--slice-size, --resume, ...).

Prints a table of the configurations ranked by the IQM of the normalised score across seeds
(the return where the env has no reference returns) with 95% bootstrap intervals, and writes
sweep.json and sweep.png beside the usual run outputs in --out.
"""
from __future__ import annotations

if __name__ == "__main__":  # jax.distributed must start before gymnax (imported below) touches JAX
    from experiments.common import init_distributed_from_argv

    init_distributed_from_argv()

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from experiments import train
from experiments.common import UsageError, exit_on_usage_error, reference_returns_or_none


@dataclass(frozen=True)
class SweepSpec:
    grid: tuple[str, ...] = ()
    """grid values per hyperparameter, NAME=V1,V2,... (NAME a dotted path such as ppo.ent-coef;
    dashes or underscores)"""
    random: tuple[str, ...] = ()
    """random search ranges, NAME=LOW:HIGH[:log]; --samples configurations are drawn"""
    samples: int = 8
    """configurations drawn by --random"""
    search_seed: int = 0
    """seed of the random search draw"""


def parse_spec(spec: SweepSpec):
    from jaxrl_align.runtime.sweep import Sweep

    def split(item, flag):
        if "=" not in item:
            raise UsageError(f"{flag} {item}: expected NAME=VALUES")
        name, values = item.split("=", 1)
        return name.strip().replace("-", "_"), values

    if bool(spec.grid) == bool(spec.random):
        raise UsageError("sweep: give either --grid NAME=V1,V2,... or --random NAME=LOW:HIGH[:log]")
    try:
        if spec.grid:
            values = {}
            for item in spec.grid:
                name, vals = split(item, "--grid")
                values[name] = [float(v) for v in vals.split(",") if v.strip()]
            return Sweep.grid(values)
        ranges = {}
        for item in spec.random:
            name, rng = split(item, "--random")
            parts = rng.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                raise UsageError(f"--random {item}: expected NAME=LOW:HIGH or NAME=LOW:HIGH:log")
            ranges[name] = (float(parts[0]), float(parts[1]), len(parts) == 3)
        return Sweep.random(ranges, spec.samples, spec.search_seed)
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(str(e)) from None


def _with_sweep(command_cls):
    """The train command with a `sweep` field added."""
    return dataclasses.make_dataclass(
        command_cls.__name__,
        [("sweep", tyro.conf.OmitArgPrefixes[SweepSpec], field(default_factory=SweepSpec))],
        bases=(command_cls,), frozen=True)


COMMANDS = {name: _with_sweep(cls) for name, cls in train.COMMANDS.items()}


def main(command):
    from jaxrl_align.hparams import paths
    from jaxrl_align.runtime import outputs
    from jaxrl_align.runtime import sweep as sweeps

    try:
        sweep = parse_spec(command.sweep)
        base = {f.name: getattr(command, f.name) for f in dataclasses.fields(command)
                if f.name != "sweep"}
        base_command = train.COMMANDS[[k for k, v in COMMANDS.items()
                                       if v is type(command)][0]](**base)
        algo, *_ = train.prepare(base_command)
        # Validate the names now, before anything compiles.
        unknown = [n for n in sweep.names if n not in paths(algo.config)]
        if unknown:
            raise UsageError(f"sweep: {unknown} cannot be swept for {algo.name}; "
                             f"sweepable: {paths(algo.config)}")
    except ValueError as e:
        exit_on_usage_error(e)
    result = train.main(base_command, sweep=sweep)
    if result is None:  # not process 0
        return None
    env_id = command.process.env
    rows = sweeps.rank(result, reference_returns_or_none(env_id))
    out = command.process.out or Path("runs") / f"{algo.name}-{env_id.replace('/', '_')}"
    table = sweeps.format_table(rows)
    print(f"\n{algo.name} on {env_id}: {len(rows)} configurations × "
          f"{command.run.seeds} seeds, ranked by IQM")
    print(table)
    for d in result.diverged:
        print(f"diverged: seed {d['seed']} of config {d['hparams']} in chunk {d['chunk']}")
    outputs.write_json(out / "sweep.json", {"algo": algo.name, "env": env_id, "ranking": rows,
                                            "diverged": result.diverged})
    sweeps.plot(out / "sweep.png", rows, f"{algo.name} on {env_id}")
    print(f"wrote {out}/sweep.json and sweep.png")
    return rows


if __name__ == "__main__":
    from experiments.common import parse_command_line

    main(parse_command_line(COMMANDS))
