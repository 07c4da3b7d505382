"""Convert data and policies between this project and imitation (docs/interop.md).

    python -m experiments.convert imitation-to-npz runs/imitation_demos demos.npz --env seals/CartPole-v0
    python -m experiments.convert npz-to-imitation demos.npz runs/imitation_demos
    python -m experiments.convert sb3-policy ppo-seals-CartPole-v0.zip runs/sb3/policy.msgpack --env seals/CartPole-v0

`imitation-to-npz` reads a dataset folder written by `imitation.data.serialize.save` and writes
a demonstrations file (`jaxrl_align.data.demonstrations`), checked against the spaces of
`--env` first; `npz-to-imitation` writes a demonstrations file as a folder that
`imitation.data.serialize.load` reads. Needs pyarrow (`pip install -e '.[imitation-data]'`).
`sb3-policy` reads a Stable-Baselines3 PPO MlpPolicy zip without unpickling
(`jaxrl_align.interop.sb3`) and writes it as a PPO expert (`policy.msgpack` + `policy.json`: what
`dagger --expert-policy` and `experiments.evaluate` read).
Bad input ends with one line naming the file and the field, and nothing written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from experiments.common import UsageError, exit_on_usage_error, make_env, parse_command_line

Src = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="SRC")]
Dst = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="DST")]


@dataclass(frozen=True)
class ImitationToNpz:
    """imitation dataset folder -> demonstrations .npz, checked against --env's spaces."""

    src: Src
    """a folder written by imitation.data.serialize.save"""
    dst: Dst
    """the demonstrations file to write (.npz)"""
    env: str
    """environment id the episodes were recorded on (a seals id or any gymnax id)"""
    source: str | None = None
    """what produced the episodes, kept in the file's metadata (default: 'imitation dataset SRC')"""

    def run(self) -> None:
        from jaxrl_align.data.demonstrations import save_demos
        from jaxrl_align.data.imitation_datasets import load_imitation_dataset

        env, env_params = make_env(self.env)
        trajs, metadata = load_imitation_dataset(self.src, env=env, env_params=env_params,
                                                 env_id=self.env)
        save_demos(self.dst, trajs, env_id=self.env,
                   source=self.source or f"imitation dataset {self.src}",
                   extra_metadata={"imitation": metadata})
        print(f"wrote {self.dst}: {metadata['num_episodes']} episodes from {self.src}")
        if metadata["rews_missing"]:
            print(f"note: {self.src} has no rews column (imitation's Trajectory): rewards are "
                  "zeros (extra.imitation.rews_missing = true in the file's metadata)")


@dataclass(frozen=True)
class NpzToImitation:
    """demonstrations .npz -> imitation dataset folder (imitation.data.serialize.load reads it)."""

    src: Src
    """a demonstrations file (.npz)"""
    dst: Dst
    """the dataset folder to write"""
    overwrite: bool = False
    """replace DST if it is already a dataset folder"""

    def run(self) -> None:
        from jaxrl_align.data.demonstrations import load_demos
        from jaxrl_align.data.imitation_datasets import save_imitation_dataset

        if self.dst.exists() and not self.overwrite:
            raise UsageError(f"DST: {self.dst} exists; pass --overwrite to replace it")
        trajs, metadata = load_demos(self.src)
        save_imitation_dataset(self.dst, trajs, overwrite=self.overwrite,
                               description=f"jaxrl_align demonstrations of {metadata['env_id']} "
                                           f"({metadata['source']}), from {self.src}")
        print(f"wrote {self.dst}: {metadata['num_episodes']} episodes from {self.src}")


@dataclass(frozen=True)
class Sb3Policy:
    """SB3 PPO MlpPolicy zip -> PPO expert file (policy.msgpack + policy.json), read without pickle."""

    src: Src
    """the SB3 model .zip (model.save)"""
    dst: Dst
    """the expert's .msgpack path (its .json is written beside it)"""
    env: str
    """environment id the policy acts in (its spaces are checked)"""
    activation: str | None = None
    """override the activation read from the zip (tanh or relu)"""

    def run(self) -> None:
        from jaxrl_align.interop.sb3 import sb3_ppo_to_expert

        env, env_params = make_env(self.env)
        path = sb3_ppo_to_expert(self.src, env, env_params, self.env, self.dst, self.activation)
        print(f"wrote {path} and {path.with_suffix('.json')}")


# One entry per subcommand: a frozen dataclass of its flags with a `run()` method.
COMMANDS = {"imitation-to-npz": ImitationToNpz, "npz-to-imitation": NpzToImitation,
            "sb3-policy": Sb3Policy}


def main(command) -> None:
    try:
        command.run()
    except (ValueError, ImportError) as e:  # UsageError, DataFileError; pyarrow missing
        exit_on_usage_error(e)


if __name__ == "__main__":
    main(parse_command_line(COMMANDS))
