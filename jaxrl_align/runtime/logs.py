"""Per-chunk scalars for TensorBoard (tensorboardX, `--tensorboard`) and Weights & Biases
(`--wandb`, the `wandb` extra; `WANDB_MODE=offline` logs without a network), behind one
`Scalars` that the runner writes to."""
from __future__ import annotations

from pathlib import Path


class TensorBoard:
    """Scalars under `log_dir` (`events.out.tfevents.*`), one point per chunk."""

    def __init__(self, log_dir: Path):
        from tensorboardX import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(str(self.log_dir), flush_secs=10)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, float(value), global_step=int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandB:
    """One W&B run per training run: its config, then one point per chunk. The project is
    $WANDB_PROJECT (default jaxrl_align); files go to `<out>/wandb/`."""

    def __init__(self, out_dir: Path, config: dict):
        import os

        import wandb  # RunSettings.validate checked it is installed

        self._run = wandb.init(project=os.environ.get("WANDB_PROJECT", "jaxrl_align"),
                               name=Path(out_dir).name, dir=str(out_dir), config=config,
                               reinit="create_new")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._run.log({tag: float(value) for tag, value in values.items()}, step=int(step))

    def close(self) -> None:
        self._run.finish()


class Scalars:
    """Every scalar backend a run asked for; with none, `scalars` does nothing."""

    def __init__(self, backends: list):
        self.backends = backends

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for backend in self.backends:
            backend.scalars(step, values)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def open_scalars(out_dir: Path | None, *, tensorboard: bool, wandb: bool,
                 config: dict | None = None) -> Scalars:
    if out_dir is None:
        return Scalars([])
    backends = [TensorBoard(Path(out_dir) / "tensorboard")] if tensorboard else []
    if wandb:
        backends.append(WandB(Path(out_dir), config or {}))
    return Scalars(backends)
