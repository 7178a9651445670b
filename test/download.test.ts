// The download code against a real HTTP server on 127.0.0.1 serving ../shared/datasets/mnist (the
// official bytes and checksums): a full fetch; a fetch cut off midway and then completed; a file whose
// checksum does not match; no mirror reachable. Nothing partial ever takes a final name.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { classCounts, datasetStatus, fetchDataset, fetchFile, loadDataset } from '../src/internal.js';
import { needs, tempDir } from './helpers.js';

const SHARED_MNIST = join(process.cwd(), '..', 'shared', 'datasets', 'mnist');
const HAVE = existsSync(SHARED_MNIST);
const D = suite('download');

interface Behaviour {
  /** cut the connection after this many bytes of the first response for this file */
  cutAfter?: Record<string, number>;
  /** serve these files with one byte changed */
  corrupt?: Set<string>;
  /** ignore Range headers */
  noRanges?: boolean;
}

interface Served {
  url: string;
  server: Server;
  log: { file: string; range: string | null; status: number }[];
}

function serve(root: string, how: Behaviour = {}): Promise<Served> {
  const log: Served['log'] = [];
  const cutDone = new Set<string>();
  const server = createServer((req, res) => {
    const file = decodeURIComponent((req.url ?? '/').slice(1));
    const p = join(root, file);
    if (file.includes('/') || !existsSync(p)) {
      res.writeHead(404).end();
      log.push({ file, range: null, status: 404 });
      return;
    }
    let body = readFileSync(p);
    if (how.corrupt?.has(file)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const range = how.noRanges ? null : /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const status = range ? 206 : 200;
    log.push({ file, range: req.headers.range ?? null, status });
    const headers: Record<string, string | number> = { 'content-length': body.length - start, 'accept-ranges': 'bytes' };
    if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(status, headers);
    const cut = how.cutAfter?.[file];
    if (cut !== undefined && !cutDone.has(file)) {
      cutDone.add(file);
      res.write(body.subarray(start, start + cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body.subarray(start));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    resolve({ url: `http://127.0.0.1:${port}/`, server, log });
  }));
}

const close = (s: Served) => new Promise((r) => s.server.close(r));
const tmp = () => tempDir('nm-dl-');
const DS = needs(D, HAVE ? null : '../shared/datasets/mnist is not here');

DS('a full fetch of MNIST from a local mirror: verified, cached, loads with the official counts', async () => {
  const s = await serve(SHARED_MNIST);
  try {
    const dataDir = tmp();
    const progress: number[] = [];
    const paths = await fetchDataset('mnist', { dataDir, mirrors: [s.url], onProgress: (p) => progress.push(p.received) });
    assert.is(paths.length, 4);
    for (const p of paths) assert.ok(existsSync(p) && !existsSync(p + '.part'));
    assert.ok(progress.length > 0);
    const st = await datasetStatus('mnist', { dataDir, checksums: true });
    assert.ok(st.files.every((f) => f.present && f.md5ok && !f.partial));
    const d = await loadDataset('mnist', { dataDir, embedded: false, download: false });
    assert.is(d.train.count, 60000);
    assert.is(classCounts(d.test)[1], 1135);
    // a second fetch finds everything cached and asks the server for nothing
    const before = s.log.length;
    await fetchDataset('mnist', { dataDir, mirrors: [s.url] });
    assert.is(s.log.length, before);
  } finally {
    await close(s);
  }
});

DS('a fetch cut off midway keeps only a .part; the next fetch resumes it with a Range request', async () => {
  const name = 'train-labels-idx1-ubyte.gz';
  const md5 = 'd53e105ee54ea40749a09fcbcd1e9432';
  const s = await serve(SHARED_MNIST, { cutAfter: { [name]: 10000 } });
  try {
    const dir = tmp();
    let failed = '';
    try {
      await fetchFile([s.url], { name, md5 }, dir, { retries: 0 });
    } catch (e) {
      failed = (e as Error).message;
    }
    assert.match(failed, /connection (closed|aborted)|transfer error/);
    assert.match(failed, /will be resumed/);
    assert.not.ok(existsSync(join(dir, name)), 'a partial download took the final name');
    assert.is(statSync(join(dir, name + '.part')).size, 10000);
    const p = await fetchFile([s.url], { name, md5 }, dir, { retries: 0 });
    assert.is(p, join(dir, name));
    assert.equal(readdirSync(dir), [name]);
    assert.ok(readFileSync(p).equals(readFileSync(join(SHARED_MNIST, name))));
    const last = s.log[s.log.length - 1];
    assert.is(last.range, 'bytes=10000-');
    assert.is(last.status, 206);
  } finally {
    await close(s);
  }
});

DS('with retries, one call survives the cut by itself; a server without ranges restarts cleanly', async () => {
  const name = 't10k-labels-idx1-ubyte.gz';
  const md5 = 'ec29112dd5afa0611ce80d1b7f02629c';
  for (const noRanges of [false, true]) {
    const s = await serve(SHARED_MNIST, { cutAfter: { [name]: 3000 }, noRanges });
    try {
      const dir = tmp();
      const p = await fetchFile([s.url], { name, md5 }, dir, { retries: 2 });
      assert.ok(readFileSync(p).equals(readFileSync(join(SHARED_MNIST, name))), `noRanges=${noRanges}`);
      assert.is(s.log.length, 2);
      assert.is(s.log[1].status, noRanges ? 200 : 206);
    } finally {
      await close(s);
    }
  }
});

DS('a checksum mismatch deletes the download and names the file; a good cached file is never replaced', async () => {
  const name = 't10k-labels-idx1-ubyte.gz';
  const s = await serve(SHARED_MNIST, { corrupt: new Set([name]) });
  try {
    const dir = tmp();
    let msg = '';
    try {
      await fetchFile([s.url], { name, md5: 'ec29112dd5afa0611ce80d1b7f02629c' }, dir);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert.match(msg, new RegExp(`cannot download ${name.replace(/\./g, '\\.')}`));
    assert.match(msg, /checksum mismatch \(md5 [0-9a-f]{32}, expected ec29112dd5afa0611ce80d1b7f02629c\)/);
    assert.equal(readdirSync(dir), []);
    // a good copy already in the cache is kept: fetchDataset does not touch it
    const dataDir = tmp();
    const mdir = join(dataDir, 'mnist');
    await fetchFile([s.url], { name: 'train-labels-idx1-ubyte.gz', md5: 'd53e105ee54ea40749a09fcbcd1e9432' }, mdir);
    const good = readFileSync(join(SHARED_MNIST, name));
    writeFileSync(join(mdir, name), good);
    await fetchDataset('mnist', { dataDir, mirrors: [s.url] });
    assert.ok(readFileSync(join(mdir, name)).equals(good));
  } finally {
    await close(s);
  }
});

D('no reachable mirror: the message says offline and which files to put where; nothing is written', async () => {
  const s = await serve(tmp());
  const url = s.url;
  await close(s); // the port is now closed
  const dataDir = tmp();
  let msg = '';
  try {
    await loadDataset('fashion-mnist', { dataDir, mirrors: [url] });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.match(msg, /no mirror is reachable \(offline\?\)/);
  assert.match(msg, /put train-images-idx3-ubyte\.gz \(md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d\) into .*fashion-mnist/);
  assert.equal(readdirSync(join(dataDir, 'fashion-mnist')), []);
  let off = '';
  try {
    await loadDataset('cifar10', { dataDir, download: false });
  } catch (e) {
    off = (e as Error).message;
  }
  assert.match(off, /cifar10 is not in .* and downloading is off: put cifar-10-binary\.tar\.gz there/);
});

D.run();
