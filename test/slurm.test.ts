// A reproduction split into pieces: --plan lists them, --job runs one alone, and the run without --job
// reuses what they left; the same figures as one plain run. By hand (each piece its own process, one
// killed mid-way and run again, one started twice at once) and through a real one-node Slurm cluster
// (scripts/slurm-local.sh; skipped where it cannot start).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCheckpoint } from '../src/internal.js';
import { needs, tempDir } from './helpers.js';

const S = suite('slurm');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const dir = tempDir('nm-slurm-');
const original = join(dir, 'original.safetensors');
// the run every way below repeats: LeNet-5's quick reproduction on 3,000 training images
const RUN = ['reproduce', 'lenet', '--quick', '--limit', '3000', '--checkpoint', original];

const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

type Row = { params: { after: number }; merges: { rule: string; merged: number; finetuned: number }[]; accuracy: { pruned: number; prunedFinetuned: number } };
/** what a report says that must not depend on how its pieces ran */
const figures = (out: string) => {
  const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { original: { accuracy: number }; results: Row[] };
  return { original: r.original.accuracy, rows: r.results.map((x) => ({ params: x.params.after, merges: x.merges, pruned: [x.accuracy.pruned, x.accuracy.prunedFinetuned] })) };
};

let plain: ReturnType<typeof figures>;
S.before(() => {
  const r = cli([...RUN, '--out', join(dir, 'plain'), '--json']);
  assert.is(r.status, 0, r.stderr);
  plain = figures(join(dir, 'plain'));
});

type Job = { id: string; after: string[]; command: string[] };
const run = (job: Job, extra: string[] = []) => cli([...job.command.slice(1), ...extra]);

S('--plan lists the pieces; each run alone by --job in order, then the report, gives the plain run\'s figures', async () => {
  const out = join(dir, 'pieces');
  const r = cli([...RUN, '--out', out, '--checkpoint-every', '10', '--plan']);
  assert.is(r.status, 0, r.stderr);
  const { jobs } = JSON.parse(r.stdout) as { jobs: Job[] };
  const tunings = ['0.5', '0.8'].flatMap((x) => ['mean', 'refit', 'pruned'].map((n) => `ratio-${x}-${n}`));
  assert.equal(jobs.map((j) => j.id), ['original', ...tunings, 'report']);
  assert.equal(jobs[0].command.slice(0, 3), ['neuronmerge', 'reproduce', 'lenet']);
  assert.equal(jobs[1].after, ['original']);
  assert.equal(jobs[7].after, jobs.slice(0, 7).map((j) => j.id));
  // a piece before its original (here, one the run trains itself): refused, naming what it waits for
  const early = cli(['reproduce', 'lenet', '--quick', '--limit', '3000', '--out', join(dir, 'early'), '--job', 'ratio-0.5-mean']);
  assert.is(early.status, 1);
  assert.match(early.stderr, /piece 'ratio-0\.5-mean' needs the original trained first \(piece 'original', .*work\/original-\w+\.safetensors\)\n$/);
  assert.is(run(jobs[0]).status, 0);
  // killed mid-way (after its first checkpoint), then run again: it resumes
  const work = join(out, 'work');
  const killed = spawn(process.execPath, [bin, ...jobs[1].command.slice(1)], { stdio: 'ignore' });
  const t0 = Date.now();
  while (!(existsSync(work) && readdirSync(work).some((f) => f.startsWith('ratio-0.5-mean-') && f.endsWith('.safetensors'))) && Date.now() - t0 < 60_000) await new Promise((res) => setTimeout(res, 50));
  killed.kill('SIGKILL');
  await new Promise((res) => killed.on('exit', res));
  const left = readdirSync(work).find((f) => f.startsWith('ratio-0.5-mean-') && f.endsWith('.safetensors'))!;
  const cut = loadCheckpoint(join(work, left)).train;
  assert.ok(cut && cut.epoch === 0 && cut.batch > 0, `killed mid-way: ${JSON.stringify(cut)}`);
  const again = run(jobs[1]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /fine-tuning ratio-0\.5-mean, continuing from /);
  // two copies of one piece at once: one writes, the other waits and finds the result
  const twice = await Promise.all([0, 1].map(() => new Promise<{ code: number | null; err: string }>((res) => {
    const p = spawn(process.execPath, [bin, ...jobs[6].command.slice(1)]);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => res({ code, err }));
  })));
  assert.equal(twice.map((t) => t.code), [0, 0], twice.map((t) => t.err).join('\n'));
  assert.ok(twice.some((t) => / is being written by process \d+ on .*; waiting/.test(t.err)), 'the second copy waited');
  for (const j of jobs.slice(2, 6)) assert.is(run(j).status, 0, j.id);
  const files = readdirSync(work);
  assert.is(files.filter((f) => f.startsWith('ratio-0.8-pruned-') && f.endsWith('.safetensors')).length, 1, files.join(' '));
  assert.equal(files.filter((f) => f.endsWith('.claim') || (f.includes('ratio-0.8-pruned') && f.endsWith('.tmp'))), [], 'no claim left, no partial file of the piece run twice');
  const report = run(jobs[7], ['--json']);
  assert.is(report.status, 0, report.stderr);
  assert.not.match(report.stderr, /reproduce lenet: training the|, checkpoints in /, 'the report trains nothing');
  assert.equal(figures(out), plain);
});

S('--job-index picks the piece from SLURM_ARRAY_TASK_ID; an unknown piece or index is refused', () => {
  const out = join(dir, 'pieces');
  const a = cli([...RUN, '--out', out, '--job-index'], { SLURM_ARRAY_TASK_ID: '3' });
  assert.is(a.status, 0, a.stderr);
  assert.match(a.stdout, /^piece ratio-0\.5-pruned done/);
  const none = cli([...RUN, '--out', out, '--job-index'], { SLURM_ARRAY_TASK_ID: '', JOB_COMPLETION_INDEX: '' });
  assert.is(none.stderr, "neuronmerge: --job-index: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX holds a piece's index (got '')\n");
  assert.is(cli([...RUN, '--out', out, '--job-index', '99']).stderr, 'neuronmerge: --job-index 99: the plan has 8 pieces (0 to 7)\n');
  assert.match(cli([...RUN, '--out', out, '--job', 'ratio-0.6-mean']).stderr, /^neuronmerge: reproduce: this run has no piece 'ratio-0\.6-mean' \(its pieces: original, ratio-0\.5-mean, /);
});

const slurmDir = join(dir, 'cluster');
let conf: string | null = null;
let why: string | null = null;
const start = spawnSync('bash', ['scripts/slurm-local.sh', 'start', slurmDir], { encoding: 'utf8' });
if (start.status === 0) conf = start.stdout.trim().split('\n').pop()!;
else why = `a one-node Slurm cluster cannot start here: ${start.stderr.trim() || `exit code ${start.status}`}`;
process.on('exit', () => {
  if (conf) spawnSync('bash', ['scripts/slurm-local.sh', 'stop', slurmDir]);
});

needs(S, why)('neuronmerge slurm reproduce --submit: the stages run on Slurm and the report has the plain run\'s figures', async () => {
  const out = join(dir, 'on-slurm'), scripts = join(dir, 'scripts');
  const env = { SLURM_CONF: conf! };
  const w = cli(['slurm', ...RUN, '--out', out, '--scripts', scripts, '--cpus-per-task', '1', '--time', '30', '--submit'], env);
  assert.is(w.status, 0, w.stderr);
  assert.match(w.stdout, /2-finetune\.sbatch: 6 fine-tunings as array tasks 1-6/);
  assert.match(w.stdout, /submitted: original \d+, finetune \d+, report \d+/);
  const script = readFileSync(join(scripts, '2-finetune.sbatch'), 'utf8');
  assert.match(script, /#SBATCH --array=1-6\n/);
  assert.match(script, /#SBATCH --cpus-per-task=1\n#SBATCH --time=30\n/);
  assert.match(script, /reproduce lenet --quick .* --job-index\n$/);
  const t0 = Date.now();
  for (;;) {
    const q = spawnSync('squeue', ['-h', '-o', '%i %T %r'], { encoding: 'utf8', env: { ...process.env, ...env } });
    if (q.stdout.trim() === '') break;
    assert.ok(!/DependencyNeverSatisfied/.test(q.stdout), `a stage failed: ${q.stdout}; logs in ${join(scripts, 'logs')}`);
    assert.ok(Date.now() - t0 < 900_000, `the jobs did not finish in 15 minutes: ${q.stdout}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
  assert.ok(existsSync(join(out, 'report.json')), `no report; logs: ${readdirSync(join(scripts, 'logs')).join(' ')}`);
  assert.equal(figures(out), plain);
});

S.run();
