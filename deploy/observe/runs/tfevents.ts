/**
 * TensorBoard event files written by hand: TFRecord framing around `Event` protobufs carrying
 * scalar summaries. Only the fields a scalar needs are encoded (tensorflow/core/util/event.proto,
 * summary.proto):
 *
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 *
 * TFRecord: uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes, the data,
 * uint32 masked CRC-32C of the data. The first record names the format: "brain.Event:2".
 */
import { maskedCrc32c } from "./crc32c.ts";

/** One scalar point of one tag. */
export interface ScalarEvent {
  tag: string;
  step: number;
  value: number;
  /** Seconds since the epoch. */
  wallTime: number;
}

/** The protobuf wire types used here. */
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** A growable byte buffer with the protobuf primitives. */
class ProtoWriter {
  private bytes: number[] = [];

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  /** Base-128 varint; int64 negatives as their two's complement (ten bytes), as protobuf does. */
  varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }
  int64(field: number, v: number): void {
    this.key(field, VARINT);
    this.varint(BigInt(Math.trunc(v)));
  }
  double(field: number, v: number): void {
    this.key(field, FIXED64);
    const b = new DataView(new ArrayBuffer(8));
    b.setFloat64(0, v, true);
    this.raw(new Uint8Array(b.buffer));
  }
  float(field: number, v: number): void {
    this.key(field, FIXED32);
    const b = new DataView(new ArrayBuffer(4));
    b.setFloat32(0, v, true);
    this.raw(new Uint8Array(b.buffer));
  }
  bytesField(field: number, v: Uint8Array): void {
    this.key(field, BYTES);
    this.varint(BigInt(v.length));
    this.raw(v);
  }
  string(field: number, v: string): void {
    this.bytesField(field, new TextEncoder().encode(v));
  }
  raw(v: Uint8Array): void {
    for (const b of v) this.bytes.push(b);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** The `Event` carrying the file's version (the first record of every event file). */
export function fileVersionEvent(wallTime: number): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, wallTime);
  w.string(3, "brain.Event:2");
  return w.done();
}

/** An `Event` with one scalar summary value. */
export function scalarEvent(e: ScalarEvent): Uint8Array {
  const value = new ProtoWriter();
  value.string(1, e.tag);
  value.float(2, e.value);
  const summary = new ProtoWriter();
  summary.bytesField(1, value.done());
  const w = new ProtoWriter();
  w.double(1, e.wallTime);
  w.int64(2, e.step);
  w.bytesField(5, summary.done());
  return w.done();
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** A whole event file: the version record, then one record per scalar in the order given. */
export function eventFile(events: ScalarEvent[], wallTime: number): Uint8Array {
  const records = [tfRecord(fileVersionEvent(wallTime)), ...events.map((e) => tfRecord(scalarEvent(e)))];
  const out = new Uint8Array(records.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** The name TensorBoard looks for ("tfevents" in it), as TensorFlow's writers name them. */
export function eventFileName(wallTime: number, host: string): string {
  return `events.out.tfevents.${Math.floor(wallTime)}.${host.replace(/[^A-Za-z0-9._-]/g, "_")}`;
}
