/**
 * CRC-32C (Castagnoli), the checksum TFRecord framing uses, and TFRecord's "masked" form of it.
 * Written here because no installed package provides it; a table of 256 entries is all it takes.
 */

/** The reflected Castagnoli polynomial. */
const POLY = 0x82f63b78;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `bytes` (unsigned 32-bit). crc32c("123456789") is 0xe3069283. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * TFRecord's masked CRC: rotated right by 15 bits plus a constant, so that a CRC stored inside
 * checksummed data does not checksum to a fixed value.
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
