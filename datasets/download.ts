// Downloads into the cache, safely: bytes go to NAME.part, an interrupted transfer is resumed with an
// HTTP Range request (or restarted where the server ignores ranges), and the file takes its final
// name only once its checksum matches. A mismatch deletes the partial file; a good file is never
// replaced by a bad one.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DataError } from './idx.js';

/** --data-dir, else NEURONMERGE_DATA, else $XDG_CACHE_HOME/neuronmerge, else ~/.cache/neuronmerge */
export function resolveDataDir(dataDir?: string): string {
  if (dataDir) return resolve(dataDir);
  if (process.env.NEURONMERGE_DATA) return resolve(process.env.NEURONMERGE_DATA);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'neuronmerge');
}

export async function fileMd5(path: string): Promise<string> {
  const h = createHash('md5');
  await new Promise<void>((res, rej) => {
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => res())
      .on('error', rej);
  });
  return h.digest('hex');
}

export interface FetchOptions {
  /** attempts per mirror for a transfer that breaks off (each resumes where the last stopped) */
  retries?: number;
  /** milliseconds without data before a transfer counts as broken */
  timeoutMs?: number;
  onProgress?: (p: { file: string; received: number; total: number | null; url: string }) => void;
  /** pause between retries, milliseconds */
  backoffMs?: number;
}

interface Attempt {
  status: 'done' | 'broken';
  reason?: string;
}

/** one HTTP GET, appending to `part` from its current size; follows redirects */
function attempt(url: string, part: string, opts: FetchOptions, fileName: string, redirects = 0): Promise<Attempt> {
  return new Promise((res, rej) => {
    const have = existsSync(part) ? statSync(part).size : 0;
    const lib = url.startsWith('https:') ? https : url.startsWith('http:') ? http : null;
    if (!lib) return rej(new DataError(`unsupported URL '${url}' (http or https only)`));
    const headers: Record<string, string> = { 'user-agent': 'neuronmerge' };
    if (have > 0) headers.range = `bytes=${have}-`;
    const req = lib.get(url, { headers, timeout: opts.timeoutMs ?? 30000 }, (resp) => {
      const code = resp.statusCode ?? 0;
      if (code >= 300 && code < 400 && resp.headers.location) {
        resp.resume();
        if (redirects > 5) return rej(new DataError(`${url}: too many redirects`));
        return attempt(new URL(resp.headers.location, url).toString(), part, opts, fileName, redirects + 1).then(res, rej);
      }
      if (code === 416 && have > 0) {
        // the partial file already holds everything (or more): let the checksum decide
        resp.resume();
        return res({ status: 'done' });
      }
      if (code !== 200 && code !== 206) {
        resp.resume();
        return rej(new DataError(`${url}: HTTP ${code}`));
      }
      const append = code === 206;
      const start = append ? have : 0;
      if (append) {
        const m = /bytes (\d+)-/.exec(String(resp.headers['content-range'] ?? ''));
        if (m && Number(m[1]) !== have) {
          resp.resume();
          return rej(new DataError(`${url}: server resumed at byte ${m[1]}, asked for ${have}`));
        }
      }
      const len = resp.headers['content-length'] !== undefined ? Number(resp.headers['content-length']) : null;
      const total = len === null ? null : start + len;
      const fd = openSync(part, append ? 'a' : 'w');
      let got = 0;
      let failed: string | null = null;
      resp.on('data', (chunk: Buffer) => {
        try {
          writeSync(fd, chunk);
        } catch (e) {
          failed = `cannot write ${part}: ${(e as Error).message}`;
          resp.destroy();
          return;
        }
        got += chunk.length;
        opts.onProgress?.({ file: fileName, received: start + got, total, url });
      });
      const finish = (reason: string | null) => {
        try {
          closeSync(fd);
        } catch {
          /* already closed */
        }
        if (failed) return rej(new DataError(failed));
        if (reason) return res({ status: 'broken', reason });
        if (len !== null && got < len) return res({ status: 'broken', reason: `connection closed after ${start + got} of ${total} bytes` });
        res({ status: 'done' });
      };
      let settled = false;
      const once = (r: string | null) => {
        if (!settled) {
          settled = true;
          finish(r);
        }
      };
      resp.on('end', () => once(null));
      resp.on('aborted', () => once('connection aborted'));
      resp.on('error', (e) => once(`transfer error: ${e.message}`));
      resp.on('close', () => once(len !== null && got < len ? `connection closed after ${start + got} of ${total} bytes` : null));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      // a request that never got a response: offline, refused, timed out
      if (['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH'].includes(e.code ?? '')) {
        rej(Object.assign(new DataError(`${url}: ${e.code}`), { offline: true }));
      } else res({ status: 'broken', reason: e.message });
    });
  });
}

export interface RemoteFile {
  name: string;
  md5: string;
  size?: number;
}

/**
 * Download `file` from the first mirror that serves it with the right checksum, into `dir`.
 * Returns the final path. Resumes a `.part` left by an earlier, interrupted run.
 */
export async function fetchFile(mirrors: string[], file: RemoteFile, dir: string, opts: FetchOptions = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const dest = join(dir, file.name);
  const part = dest + '.part';
  const errors: string[] = [];
  let offline = 0;
  for (const base of mirrors) {
    const url = base.endsWith('/') ? base + file.name : base + '/' + file.name;
    const retries = opts.retries ?? 3;
    try {
      let result: Attempt = { status: 'broken', reason: 'not tried' };
      for (let i = 0; i <= retries; i++) {
        result = await attempt(url, part, opts, file.name);
        if (result.status === 'done') break;
        if (i < retries && opts.backoffMs) await new Promise((r) => setTimeout(r, opts.backoffMs! * (i + 1)));
      }
      if (result.status !== 'done') {
        errors.push(`${url}: ${result.reason} (gave up after ${retries + 1} attempts; ${part} is kept and will be resumed)`);
        continue;
      }
      const md5 = await fileMd5(part);
      if (md5 !== file.md5) {
        unlinkSync(part);
        errors.push(`${url}: checksum mismatch (md5 ${md5}, expected ${file.md5}); the download was deleted`);
        continue;
      }
      mkdirSync(dirname(dest), { recursive: true });
      renameSync(part, dest);
      return dest;
    } catch (e) {
      if ((e as { offline?: boolean }).offline) offline++;
      errors.push((e as Error).message);
    }
  }
  const where = `put ${file.name} (md5 ${file.md5}) into ${dir} yourself, or point --data-dir / NEURONMERGE_DATA at a folder that has it`;
  if (offline === mirrors.length) throw new DataError(`cannot download ${file.name}: no mirror is reachable (offline?). ${where}.\n  ${errors.join('\n  ')}`);
  throw new DataError(`cannot download ${file.name}:\n  ${errors.join('\n  ')}\n  Otherwise ${where}.`);
}
