"""Silent PCM WAV files, as the switch's sndfile writer would leave them for a recording of
silence (44-byte canonical header, 16-bit samples)."""

from __future__ import annotations

import struct
from typing import BinaryIO


def header(channels: int, rate: int, frames: int) -> bytes:
    block = channels * 2
    data = frames * block
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
            + b"data" + struct.pack("<I", data))


def write_silence(out: BinaryIO, channels: int, rate: int, frames: int) -> None:
    out.write(header(channels, rate, frames))
    second = b"\0" * (channels * 2 * rate)
    left = frames * channels * 2
    while left > 0:
        piece = second[:left]
        out.write(piece)
        left -= len(piece)
