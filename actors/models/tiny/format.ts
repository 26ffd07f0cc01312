/** The tiny weights file's signature: magic bytes and format version (the layout is model.ts' serialize/parseWeights). */
export const MAGIC = new Uint8Array([0x50, 0x4f, 0x50, 0x54, 0x49, 0x4e, 0x59, 0x00]); // "POPTINY\0"
export const FORMAT_VERSION = 1;
