// IDX files (MNIST, Fashion-MNIST): raw or gzipped. Everything is validated against the file's own
// header: magic, element type, dimension count, and the byte count the dimensions imply.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

export function gunzipChecked(buf: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(buf);
  } catch (e) {
    throw new DataError(`${file}: not a valid gzip stream (${(e as Error).message}); the file is probably truncated or corrupt`);
  }
}

/**
 * Parse an IDX buffer of unsigned bytes. `expectDims` (e.g. 3 for images, 1 for labels) is checked
 * when given; the buffer must hold exactly the bytes the header's dimensions imply.
 */
export function parseIdx(buf: Uint8Array, file: string, expectDims?: number): IdxArray {
  if (isGzip(buf)) buf = gunzipChecked(buf, file);
  if (buf.length < 4) throw new DataError(`${file}: ${buf.length} bytes is too short for an IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  if (buf[0] !== 0 || buf[1] !== 0) throw new DataError(`${file}: bad IDX magic 0x${magic.toString(16).padStart(8, '0')} (the first two bytes must be zero)`);
  const type = buf[2], nd = buf[3];
  if (type !== 0x08) throw new DataError(`${file}: IDX element type 0x${type.toString(16)} is not unsigned byte (0x08)`);
  if (expectDims !== undefined && nd !== expectDims) {
    throw new DataError(`${file}: magic ${magic} says ${nd} dimensions, expected ${expectDims} (${2048 + expectDims}${expectDims === 3 ? ' for images' : expectDims === 1 ? ' for labels' : ''})`);
  }
  const headerLen = 4 + 4 * nd;
  if (buf.length < headerLen) throw new DataError(`${file}: truncated header (${buf.length} bytes, header needs ${headerLen})`);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const n = dims.reduce((p, d) => p * d, 1);
  const have = buf.length - headerLen;
  if (have < n) throw new DataError(`${file}: truncated: dimensions [${dims.join(', ')}] need ${n} data bytes, the file has ${have}`);
  if (have > n) throw new DataError(`${file}: count mismatch: dimensions [${dims.join(', ')}] need ${n} data bytes, the file has ${have} (${have - n} extra)`);
  return { dims, data: buf.subarray(headerLen) };
}

export function readIdxFile(path: string, expectDims?: number): IdxArray {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseIdx(buf, path, expectDims);
}

/** Build an IDX byte buffer (for tests and tools). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
