"""TensorBoard scalars (`jaxrl_align.runtime.logs.TensorBoard`, written by tensorboardX): a
small independent reader of the event files, which checks the TFRecord framing and every CRC.
tests/runtime/test_checkpoints.py reads the scalars of a `--tensorboard` run with it."""
import math
import struct
from pathlib import Path


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path: Path) -> list:
    """Every `Event` of a TFRecord file: 8-byte little-endian length, masked CRC-32C of the
    length, payload, masked CRC-32C of the payload. Asserts every CRC and that no bytes are left
    over (a half-written record)."""
    from tensorboardX.proto import event_pb2

    data, pos, events = Path(path).read_bytes(), 0, []
    while pos < len(data):
        assert pos + 12 <= len(data), f"{path}: truncated record header at byte {pos}"
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert header_crc == masked_crc32c(header), f"{path}: bad length CRC at byte {pos}"
        end = pos + 12 + length
        assert end + 4 <= len(data), f"{path}: truncated record at byte {pos}"
        payload = data[pos + 12:end]
        (payload_crc,) = struct.unpack("<I", data[end:end + 4])
        assert payload_crc == masked_crc32c(payload), f"{path}: bad payload CRC at byte {pos}"
        events.append(event_pb2.Event.FromString(payload))
        pos = end + 4
    return events


def read_scalars(path: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, {tag: value}) per step, in the order written. tensorboardX writes one event per
    scalar; consecutive events of the same step are one chunk's point."""
    out: list[tuple[int, dict[str, float]]] = []
    for event in read_events(path):
        values = {v.tag: v.simple_value for v in event.summary.value}
        if not values:
            continue  # the file_version record, ...
        if out and out[-1][0] == event.step:
            out[-1][1].update(values)
        else:
            out.append((int(event.step), values))
    return out


def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C check value


def test_scalars_read_back_with_their_steps(tmp_path):
    from jaxrl_align.runtime.logs import TensorBoard

    tb = TensorBoard(tmp_path / "tb")
    tb.scalars(1, {"mean/eval_return": 10.5, "mean/loss": 0.25})
    tb.scalars(7, {"mean/eval_return": 20.0, "mean/loss": float("nan")})
    tb.close()
    (events,) = (tmp_path / "tb").iterdir()
    assert events.name.startswith("events.out.tfevents.")
    scalars = read_scalars(events)  # checks every record's CRCs too
    assert [step for step, _ in scalars] == [1, 7]
    assert scalars[0][1] == {"mean/eval_return": 10.5, "mean/loss": 0.25}
    assert scalars[1][1]["mean/eval_return"] == 20.0 and math.isnan(scalars[1][1]["mean/loss"])


def test_wandb_offline_run_gets_the_config_and_every_point(tmp_path, monkeypatch):
    """`--wandb` (the `wandb` extra) with WANDB_MODE=offline: a run folder under <out>/wandb
    with its config and history, written through the same `Scalars` as TensorBoard."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from jaxrl_align.runtime.logs import open_scalars

    log = open_scalars(tmp_path, tensorboard=True, wandb=True, config={"algo": "bc", "lr": 0.1})
    log.scalars(1, {"mean/eval_return": 10.5})
    log.scalars(7, {"mean/eval_return": 20.0})
    wandb_run = log.backends[1]._run
    assert wandb_run.config["algo"] == "bc" and wandb_run.config["lr"] == 0.1
    log.close()
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    (records,) = run.glob("*.wandb")  # what `wandb sync` uploads: config and history
    data = records.read_bytes()
    assert b"mean/eval_return" in data and b"lr" in data
    (events,) = (tmp_path / "tensorboard").iterdir()
    assert [step for step, _ in read_scalars(events)] == [1, 7]
