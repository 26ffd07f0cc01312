"""PNG decoding with numpy and zlib (Debian's torch comes without PIL): 8-bit grey, RGB, grey+alpha and RGBA."""
from __future__ import annotations

import struct
import zlib

import numpy as np

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


class PngError(ValueError):
    """Bytes that are not a PNG this decoder reads (not retryable: the same bytes fail again)."""


def decode_png(data: bytes) -> np.ndarray:
    """A PNG file -> uint8 array [height, width, 3] (grey replicated, alpha dropped)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise PngError("not a PNG")
    at, idat = 8, []
    width = height = ctype = None
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            if depth != 8 or ctype not in _CHANNELS or interlace:
                raise PngError(f"unsupported PNG (bit depth {depth}, colour type {ctype}, interlace {interlace})")
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if width is None:
        raise PngError("PNG without IHDR")
    bpp = _CHANNELS[ctype]
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size < height * (stride + 1):
        raise PngError("PNG data too short")
    rows = raw[: height * (stride + 1)].reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        f, line = rows[y, 0], rows[y, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: a running sum along the row, per channel
            cur = (np.cumsum(line.reshape(width, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).reshape(stride)
        elif f == 2:  # Up
            cur = line + prev
        elif f in (3, 4):  # Average and Paeth depend on the left neighbour: byte by byte
            cur = bytearray(line.tobytes())
            up = prev.tobytes()
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = up[x]
                if f == 3:
                    cur[x] = (cur[x] + ((a + b) >> 1)) & 255
                else:
                    c = up[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(cur), dtype=np.uint8)
        else:
            raise PngError(f"unknown PNG filter {f}")
        out[y] = cur
        prev = cur
    px = out.reshape(height, width, bpp)
    if bpp in (1, 2):
        return np.repeat(px[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(px[:, :, :3])


def fit(image: np.ndarray, size: int = 32) -> np.ndarray:
    """Nearest-neighbour resize to size x size (the tiny world's images already are)."""
    h, w = image.shape[:2]
    if h == size and w == size:
        return image
    ys = (np.arange(size) * h // size).clip(0, h - 1)
    xs = (np.arange(size) * w // size).clip(0, w - 1)
    return image[ys][:, xs]
