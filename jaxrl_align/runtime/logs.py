"""Per-chunk scalars for TensorBoard, written by tensorboardX (`--tensorboard`)."""
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
