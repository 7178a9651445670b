// Files a run writes: written whole or not at all, and output paths checked before any work starts, so
// an hour of training never ends on a path that cannot be written, and a bad path never costs a good file.
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { OptionError, quote } from './errors.js';

/** the stats of `path` without following a link, or null where nothing is there */
function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * Where writing `path` really lands: the path itself, or, for a symbolic link, the file it points to
 * (followed link by link, a dangling link's target included), so that a link is written through and
 * never replaced by a file.
 */
export function writeTarget(path: string): string {
  let p = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    const st = lstatOrNull(p);
    if (!st?.isSymbolicLink()) return p;
    p = resolve(dirname(p), readlinkSync(p));
  }
  throw new Error(`${path}: too many levels of symbolic links`);
}

/** why the file at `target` (a path as writeTarget resolved it) cannot be replaced by a written file,
 * or null where it can: only a regular file or nothing may stand there */
function notWritable(target: string): string | null {
  const st = lstatOrNull(target);
  if (!st || st.isFile()) return null;
  if (st.isDirectory()) return 'is a folder; give a file name';
  const what = st.isFIFO() ? 'a named pipe' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
  return `is ${what}, not a regular file; give a file name`;
}

/** write `data` (or its chunks, in order) to `path` through a temporary file beside it, renamed into
 * place once complete; an error names `path` and leaves the previous file as it was */
export function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[]): void {
  // a link is written through to its target; a device, pipe or folder is never replaced
  const target = writeTarget(path);
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  let fd = -1;
  try {
    const why = notWritable(target);
    if (why) throw new Error(why);
    mkdirSync(dirname(target), { recursive: true });
    fd = openSync(tmp, 'w');
    for (const chunk of typeof data === 'string' ? [Buffer.from(data, 'utf8')] : Array.isArray(data) ? data : [data]) writeSync(fd, chunk);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, target);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never made, or already gone */
    }
    // the error names the user's path, not the temporary file beside it
    throw new Error(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the previous file is untouched`);
  }
}

/** the nearest folder at or above `path` that exists; an error (naming `what`) where a file blocks the way */
function existingAncestor(path: string, what: string): string {
  let p = resolve(path);
  for (;;) {
    if (existsSync(p)) {
      if (!statSync(p).isDirectory()) throw new OptionError(`${what}: ${quote(p)} is a file, not a folder`);
      return p;
    }
    const up = dirname(p);
    if (up === p) throw new OptionError(`${what}: no part of the path exists`);
    p = up;
  }
}

/** whether a file can be made in folder `dir` (tried, then removed: permissions, read-only mounts, quotas) */
function canCreateIn(dir: string): boolean {
  const probe = join(dir, `.neuronmerge-probe-${process.pid}-${Date.now()}`);
  try {
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
    return true;
  } catch {
    return false;
  }
}

const real = (p: string) => (existsSync(p) ? realpathSync(p) : writeTarget(p));
const same = (a: string, b: string) => real(a) === real(b);

/** a file a command reads: the positional input (a bare path) or one named by its option */
export type InputFile = string | { option: string; path: string };

/**
 * An output file named by option `option` (`{out}`: see OptionError) as the user gave it: a regular file or
 * nothing (a link is written through to its target; a folder, device or pipe is refused), none of the
 * files the command reads (`inputs`: the positional one, or others named by their option), and in a
 * folder where a file can be made (missing folders are made when it is written). Throws an error
 * naming the option and the path as given.
 */
export function checkOutputFile(path: string, option: string, inputs: InputFile[] = []): void {
  const what = `${option} ${quote(path)}`;
  if (path === '') throw new OptionError(`${option}: the path is empty`);
  const target = writeTarget(path);
  const why = notWritable(target);
  if (why) throw new OptionError(`${what}: ${why}`);
  for (const i of inputs) {
    if (typeof i === 'string') {
      if (same(path, i)) throw new OptionError(`${what}: is also the input; write to another file so that the input is kept`);
    } else if (same(path, i.path)) throw new OptionError(`${what}: is also ${i.option} ${quote(i.path)}; write to another file so that ${i.option === '{out}' ? 'the two do not overwrite each other' : 'it is kept'}`);
  }
  const dir = existingAncestor(dirname(target), what);
  if (!canCreateIn(dir)) throw new OptionError(`${what}: cannot write in ${quote(dir)}`);
}

/** an output folder named by `option`: not a file, and one that exists or can be made, and written in */
export function checkOutputDir(path: string, option: string): void {
  const what = `${option} ${quote(path)}`;
  if (path === '') throw new OptionError(`${option}: the path is empty`);
  if (existsSync(path) && !statSync(path).isDirectory()) throw new OptionError(`${what}: is a file, not a folder`);
  const dir = existingAncestor(path, what);
  if (!canCreateIn(dir)) throw new OptionError(`${what}: cannot write in ${quote(dir)}`);
}

/** the lock file of an output: hidden, beside the file (or folder) it guards */
const lockOf = (path: string) => {
  const target = writeTarget(path);
  return join(dirname(target), `.${basename(target)}.lock`);
};
const held = new Set<string>();
let cleanupInstalled = false;

/** whether a process with this id runs on this machine */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims outputs (files or a folder) for this process until it exits, so that two runs never write the
 * same outputs at once (a model from one and its page from the other): a hidden `.NAME.lock` beside
 * each holds this process's id. A second run is refused with an error naming the option, the path and
 * the process that holds it; a lock whose process has died is taken over. Paths whose folder cannot be
 * made are left to the output checks to report.
 */
export function lockOutputs(outputs: { option: string; path: string }[]): void {
  for (const { option, path } of outputs) {
    if (path === '') continue;
    const lock = lockOf(path);
    if (held.has(lock)) continue;
    for (let tries = 0; ; tries++) {
      try {
        mkdirSync(dirname(lock), { recursive: true });
      } catch {
        break; // the output's folder cannot be made: the output checks say why
      }
      try {
        const fd = openSync(lock, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        held.add(lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') break;
        let pid = NaN;
        try {
          pid = Number(readFileSync(lock, 'utf8').trim());
        } catch {
          /* removed meanwhile: try again */
        }
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) && tries < 3) {
          throw new Error(`${option} ${path}: another neuronmerge run (process ${pid}) is writing it; wait for that run to end or write elsewhere`);
        }
        if (tries >= 3) throw new Error(`${option} ${path}: cannot take its lock ${lock}`);
        // a lock left by a run that died: taken over
        try {
          unlinkSync(lock);
        } catch {
          /* another run took it over first */
        }
      }
    }
  }
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.on('exit', releaseOutputs);
  }
}

/** gives up every output this process has claimed */
export function releaseOutputs(): void {
  for (const lock of held) {
    try {
      if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
    } catch {
      /* gone already */
    }
  }
  held.clear();
}

/**
 * Claims one file a piece of work writes (a checkpoint, a measurement) until `release()` is called or
 * the process ends, waiting while another process holds it: two copies of one piece, on one machine or
 * on several sharing a folder, never write it at once, and the second finds the first's result. The
 * claim is `.NAME.claim` beside the file, holding `host pid`; one whose process has died on this host
 * is taken over. `waiting` is told once who holds it.
 */
export async function claimFile(path: string, waiting: (holder: string) => void = () => {}): Promise<() => void> {
  const lock = join(dirname(path), `.${basename(path)}.claim`);
  const me = `${hostname()} ${process.pid}`;
  mkdirSync(dirname(lock), { recursive: true });
  let told = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, me);
      closeSync(fd);
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(lock, 'utf8') === me) unlinkSync(lock);
        } catch {
          /* gone already */
        }
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${path}: cannot claim it (${(e as Error).message})`);
    }
    let holder = '';
    try {
      holder = readFileSync(lock, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    const [host, pid] = holder.split(' ');
    if (host === hostname() && !(Number(pid) > 0 && alive(Number(pid)))) {
      try {
        unlinkSync(lock); // left by a process that died
      } catch {
        /* another one took it over first */
      }
      continue;
    }
    if (!told) waiting(`process ${pid} on ${host}`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** what a model file holds, by its first bytes: a safetensors checkpoint (a little-endian header
 * length, then the JSON header's '{'), an ONNX model (a protobuf ModelProto: field 1, ir_version, a
 * one-byte varint, then one of its next fields), a zip archive (such as a PyTorch .pt file), or
 * something else */
export function modelFormatOf(head: Uint8Array): 'safetensors' | 'onnx' | 'zip' | 'unknown' {
  if (head.length >= 9 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0) return 'safetensors';
  if (head.length >= 3 && head[0] === 0x08 && head[1] >= 1 && head[1] < 0x80 && [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(head[2])) return 'onnx';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4) return 'zip';
  return 'unknown';
}

/** modelFormatOf the file at `path` ('unknown' where it cannot be read: its reader says why) */
export function modelFormatOfFile(path: string): ReturnType<typeof modelFormatOf> {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    return modelFormatOf(head.subarray(0, n));
  } catch {
    return 'unknown';
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
