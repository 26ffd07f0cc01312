#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, standard library only, for the tests.

Parses the TFRecord framing, checks both masked CRC-32C checksums of every record (CRC computed
bit by bit here, not from a table), and decodes the Event/Summary/Value protobuf fields by their
wire format. Prints one JSON object: {"records": [...]} with each Event's decoded fields.
"""
import json
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf: bytes, pos: int):
    shift = 0
    value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(buf: bytes):
    """(field number, wire type, raw value) for each field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, wire, value


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def event(buf: bytes) -> dict:
    out = {}
    for number, wire, value in fields(buf):
        if number == 1 and wire == 1:
            out["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            out["step"] = signed64(value)
        elif number == 3 and wire == 2:
            out["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:
            out["values"] = []
            for vn, vw, vv in fields(value):
                if vn != 1 or vw != 2:
                    continue
                item = {}
                for n, w, v in fields(vv):
                    if n == 1 and w == 2:
                        item["tag"] = v.decode("utf-8")
                    elif n == 2 and w == 5:
                        item["simple_value"] = struct.unpack("<f", v)[0]
                out["values"].append(item)
    return out


def read(path: str) -> list:
    data = open(path, "rb").read()
    pos = 0
    records = []
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if length_crc != masked(header):
            raise ValueError(f"bad length CRC at byte {pos}")
        body = data[pos + 12 : pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        if body_crc != masked(body):
            raise ValueError(f"bad data CRC at byte {pos}")
        records.append(event(body))
        pos += 16 + length
    return records


if __name__ == "__main__":
    print(json.dumps({"records": read(sys.argv[1])}))
