"""The little of RIFF/WAVE that a check and the simulator need: PCM header, silent frames."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

HEADER_BYTES = 44


class NotWav(ValueError):
    pass


@dataclass(frozen=True)
class WavInfo:
    channels: int
    rate: int
    bits: int
    frames: int          # samples per channel
    size: int            # the file's size in bytes

    @property
    def ms(self) -> int:
        return self.frames * 1000 // self.rate if self.rate else 0


def header(channels: int, rate: int, frames: int, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM header for ``frames`` samples per channel."""
    block = channels * bits // 8
    data = frames * block
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", data))


def write_silence(out: BinaryIO, channels: int, rate: int, frames: int) -> None:
    out.write(header(channels, rate, frames))
    chunk = b"\0" * (channels * 2 * rate)        # one second at a time
    left = frames * channels * 2
    while left > 0:
        piece = chunk[:left]
        out.write(piece)
        left -= len(piece)


def read_info(path: str) -> WavInfo:
    """Channels, rate and frames of a PCM WAV file; ``NotWav`` when it is not one."""
    with open(path, "rb") as f:
        head = f.read(12)
        f.seek(0, 2)
        size = f.tell()
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise NotWav(f"{path}: not a RIFF/WAVE file")
        f.seek(12)
        fmt: tuple[int, ...] | None = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise NotWav(f"{path}: no data chunk")
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                body = f.read(clen)
                if len(body) < 16:
                    raise NotWav(f"{path}: short fmt chunk")
                fmt = struct.unpack("<HHIIHH", body[:16])
            elif cid == b"data":
                if fmt is None:
                    raise NotWav(f"{path}: data before fmt")
                _, channels, rate, _, block, bits = fmt
                present = min(clen, size - f.tell())
                return WavInfo(channels=channels, rate=rate, bits=bits,
                               frames=present // block if block else 0, size=size)
            else:
                f.seek(clen + (clen & 1), 1)
