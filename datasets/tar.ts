// A minimal reader for (gzipped) ustar/GNU tar archives: enough to take the CIFAR-10 batches out of
// the official cifar-10-binary.tar.gz without extracting it to disk.
import { DataError } from './idx.js';

export interface TarEntry {
  name: string;
  size: number;
  type: string;
  data: Uint8Array;
}

function field(buf: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && buf[end] !== 0) end++;
  return Buffer.from(buf.subarray(off, end)).toString('utf8');
}

function octal(buf: Uint8Array, off: number, len: number, file: string, what: string): number {
  const s = field(buf, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new DataError(`${file}: corrupt tar header (${what} '${s}' is not octal)`);
  return parseInt(s, 8);
}

export function readTar(buf: Uint8Array, file: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let off = 0;
  let longName: string | null = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break; // end of archive
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const stored = octal(h, 148, 8, file, 'checksum');
    if (stored !== sum) throw new DataError(`${file}: corrupt tar header at byte ${off} (checksum ${stored}, computed ${sum})`);
    const size = octal(h, 124, 12, file, 'size');
    const type = String.fromCharCode(h[156] || 48);
    const prefix = field(h, 345, 155);
    let name = field(h, 0, 100);
    if (prefix) name = prefix + '/' + name;
    const start = off + 512;
    if (start + size > buf.length) throw new DataError(`${file}: truncated tar archive: member '${longName ?? name}' needs ${size} bytes, ${buf.length - start} remain`);
    const data = buf.subarray(start, start + size);
    if (type === 'L') {
      longName = field(data, 0, data.length);
    } else {
      if (longName) name = longName;
      longName = null;
      entries.push({ name, size, type, data });
    }
    off = start + Math.ceil(size / 512) * 512;
  }
  return entries;
}
