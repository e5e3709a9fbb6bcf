import { MemexError } from '../../core/index.js';

/**
 * NumPy's `.npy` format, version 1.0, for a C-ordered little-endian float32 matrix:
 * the magic `\x93NUMPY`, version bytes 1 0, a little-endian uint16 header length, then a Python
 * dict literal padded with spaces and ended by a newline, then the rows.
 *
 * Memex always writes a 128-byte header (NumPy itself pads to a multiple of 64): room for any row
 * count, so appending rows rewrites the shape in place without moving the data.
 */
export const NPY_HEADER_BYTES = 128;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const PREAMBLE = MAGIC.length + 2 + 2;

export function npyHeader(rows: number, dimension: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dimension}), }`;
  const room = NPY_HEADER_BYTES - PREAMBLE - 1;
  if (dict.length > room) throw new MemexError('MEMEX_INTERNAL', `npy shape (${rows}, ${dimension}) does not fit the header`);
  const header = Buffer.alloc(NPY_HEADER_BYTES, 0x20);
  MAGIC.copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(NPY_HEADER_BYTES - PREAMBLE, 8);
  header.write(dict, PREAMBLE, 'latin1');
  header[NPY_HEADER_BYTES - 1] = 0x0a;
  return header;
}

export interface NpyShape {
  rows: number;
  dimension: number;
  /** Where the data starts. */
  headerBytes: number;
}

/** Reads the header Memex writes (and any v1/v2 header of a 2-D `<f4` C-ordered array); null if it is not one. */
export function parseNpyHeader(bytes: Uint8Array): NpyShape | null {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < PREAMBLE || !buffer.subarray(0, 6).equals(MAGIC)) return null;
  const major = buffer[6];
  const lengthBytes = major === 1 ? 2 : major === 2 || major === 3 ? 4 : 0;
  if (lengthBytes === 0) return null;
  const length = lengthBytes === 2 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const headerBytes = 8 + lengthBytes + length;
  if (buffer.length < headerBytes) return null;
  const dict = buffer.subarray(8 + lengthBytes, headerBytes).toString('latin1');
  const descr = /'descr':\s*'([^']*)'/.exec(dict)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
  const shape = /'shape':\s*\((\d+),\s*(\d+),?\s*\)/.exec(dict);
  if (descr !== '<f4' || fortran !== 'False' || !shape) return null;
  return { rows: Number(shape[1]), dimension: Number(shape[2]), headerBytes };
}
