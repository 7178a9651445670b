// Files a run writes: written whole or not at all, and output paths checked before any work starts, so
// an hour of training never ends on a path that cannot be written, and a bad path never costs a good file.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** write `data` (or its chunks, in order) to `path` through a temporary file beside it, renamed into
 * place once complete; an error names `path` and leaves the previous file as it was */
export function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[]): void {
  const tmp = join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.tmp`);
  let fd = -1;
  try {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    fd = openSync(tmp, 'w');
    for (const chunk of typeof data === 'string' ? [Buffer.from(data, 'utf8')] : Array.isArray(data) ? data : [data]) writeSync(fd, chunk);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
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
      if (!statSync(p).isDirectory()) throw new Error(`${what}: ${p} is a file, not a folder`);
      return p;
    }
    const up = dirname(p);
    if (up === p) throw new Error(`${what}: no part of the path exists`);
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

const same = (a: string, b: string) => {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  return real(a) === real(b);
};

/**
 * An output file named by option `option` (e.g. `--out`) as the user gave it: not a folder, not one of
 * `inputs`, and in a folder where a file can be made (missing folders are made when it is written).
 * Throws an error naming the option and the path as given.
 */
export function checkOutputFile(path: string, option: string, inputs: string[] = []): void {
  const what = `${option} ${path}`;
  if (path === '') throw new Error(`${option}: the path is empty`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${what}: is a folder; give a file name`);
  for (const i of inputs) if (same(path, i)) throw new Error(`${what}: is also the input; write to another file so that the input is kept`);
  const dir = existingAncestor(dirname(resolve(path)), what);
  if (!canCreateIn(dir)) throw new Error(`${what}: cannot write in ${dir}`);
}

/** an output folder named by `option`: not a file, and one that exists or can be made, and written in */
export function checkOutputDir(path: string, option: string): void {
  const what = `${option} ${path}`;
  if (path === '') throw new Error(`${option}: the path is empty`);
  if (existsSync(path) && !statSync(path).isDirectory()) throw new Error(`${what}: is a file, not a folder`);
  const dir = existingAncestor(path, what);
  if (!canCreateIn(dir)) throw new Error(`${what}: cannot write in ${dir}`);
}
