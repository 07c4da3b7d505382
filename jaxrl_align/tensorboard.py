"""A minimal TensorBoard scalar writer with no dependencies.

Writes the `events.out.tfevents.*` format TensorBoard reads: TFRecord framing (length, masked
CRC-32C of the length, payload, masked CRC-32C of the payload) around hand-encoded `Event`
protocol buffers (`wall_time`, `step`, `summary.value[].{tag, simple_value}`). Only scalars.
"""
from __future__ import annotations

import socket
import struct
import time
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


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None,
           scalars: dict[str, float] | None = None) -> bytes:
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5)
                         + struct.pack("<f", float(value)))
            for tag, value in scalars.items())
        out += _field_bytes(5, values)
    return out


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked(crc32c(length))) + data
            + struct.pack("<I", _masked(crc32c(data))))


class ScalarWriter:
    def __init__(self, log_dir: Path):
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.path = log_dir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._file = open(self.path, "ab")
        self._file.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._file.write(_record(_event(time.time(), int(step), scalars=values)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_scalars(path: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, {tag: value}) of every scalar event in a file this module wrote (for tests)."""
    data, pos, events = Path(path).read_bytes(), 0, []

    def varint(buf, i):
        shift = value = 0
        while True:
            b = buf[i]
            value |= (b & 0x7F) << shift
            i += 1
            shift += 7
            if not b & 0x80:
                return value, i

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, i = varint(buf, i)
            elif wire == 1:
                value, i = buf[i:i + 8], i + 8
            elif wire == 5:
                value, i = buf[i:i + 4], i + 4
            else:
                n, i = varint(buf, i)
                value, i = buf[i:i + n], i + n
            yield number, value

    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == _masked(crc32c(data[pos:pos + 8]))
        payload = data[pos + 12:pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == \
            _masked(crc32c(payload))
        pos += 16 + length
        step, scalars = 0, {}
        for number, value in fields(payload):
            if number == 2:
                step = value
            elif number == 5:
                for _, v in fields(value):
                    tag, simple = None, None
                    for n2, x in fields(v):
                        if n2 == 1:
                            tag = x.decode()
                        elif n2 == 2:
                            (simple,) = struct.unpack("<f", x)
                    scalars[tag] = simple
        if scalars:
            events.append((step, scalars))
    return events
