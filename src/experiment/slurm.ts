// A reproduction on a Slurm cluster: its pieces (./reproduce.ts, reproducePlan) as batch scripts, one
// per stage, each stage waiting for the one before (--dependency=afterok): the original, the layers'
// sensitivity where a budget needs it, the fine-tunings as one job array, the report. Every piece
// reads and writes the run's shared output folder, so the folder must be on a file system every node
// sees. Slurm schedules; nothing here does.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../runtime/files.js';
import type { ReproducePiece } from './reproduce.js';

export interface SlurmOptions {
  /** the folder the scripts (and, in logs/, the jobs' output) go to */
  dir: string;
  /** the folder the jobs start in */
  cwd: string;
  partition?: string;
  cpusPerTask?: number;
  time?: string;
  account?: string;
}

/** a script and the pieces it runs: one piece, or (an array) the pieces at plan indices from..to */
export interface SlurmStage {
  name: string;
  file: string;
  pieces: string[];
  array?: [number, number];
}

/** how a stage's command selects its piece: by id, by the array task's index, or none (the report) */
export type PieceSelector = { id: string } | { index: true } | { report: true };

const quote = (a: string) => (/^[\w./,:=@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** write the batch scripts of `plan`; `command(selector)` is the argument list that runs a piece */
export function slurmScripts(plan: ReproducePiece[], command: (s: PieceSelector) => string[], o: SlurmOptions): SlurmStage[] {
  const dir = resolve(o.dir);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const at = (id: string) => plan.findIndex((p) => p.id === id);
  const tunings = plan.map((p, i) => ({ p, i })).filter(({ p }) => p.id !== 'original' && p.id !== 'sensitivity' && p.id !== 'report');
  const stages: { name: string; pieces: string[]; select: PieceSelector; array?: [number, number] }[] = [{ name: 'original', pieces: ['original'], select: { id: 'original' } }];
  if (at('sensitivity') >= 0) stages.push({ name: 'sensitivity', pieces: ['sensitivity'], select: { id: 'sensitivity' } });
  if (tunings.length) {
    const from = tunings[0].i, to = tunings[tunings.length - 1].i;
    if (to - from + 1 !== tunings.length) throw new Error('slurm: the fine-tunings are not consecutive in the plan');
    stages.push({ name: 'finetune', pieces: tunings.map(({ p }) => p.id), select: { index: true }, array: [from, to] });
  }
  stages.push({ name: 'report', pieces: ['report'], select: { report: true } });
  return stages.map((s, n) => {
    const file = join(dir, `${n + 1}-${s.name}.sbatch`);
    const lines = [
      '#!/bin/bash',
      `# neuronmerge: ${s.array ? `${s.pieces.length} fine-tunings, one per array task (the task id is the piece's index in the plan)` : `piece ${s.pieces[0]}`}`,
      `#SBATCH --job-name=nm-${s.name}`,
      `#SBATCH --output=${join(dir, 'logs', s.array ? `${s.name}-%A_%a.out` : `${s.name}-%j.out`)}`,
      ...(s.array ? [`#SBATCH --array=${s.array[0]}-${s.array[1]}`] : []),
      ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
      ...(o.cpusPerTask ? [`#SBATCH --cpus-per-task=${o.cpusPerTask}`] : []),
      ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
      ...(o.account ? [`#SBATCH --account=${o.account}`] : []),
      `cd ${quote(resolve(o.cwd))}`,
      `exec ${command(s.select).map(quote).join(' ')}`,
      '',
    ];
    writeFileAtomic(file, lines.join('\n'));
    return { name: s.name, file, pieces: s.pieces, ...(s.array ? { array: s.array } : {}) };
  });
}

/** submit the stages in order, each after the one before succeeded; returns the job ids */
export function submitStages(stages: SlurmStage[], sbatch = 'sbatch'): string[] {
  const ids: string[] = [];
  for (const s of stages) {
    const args = ['--parsable', ...(ids.length ? [`--dependency=afterok:${ids[ids.length - 1]}`] : []), s.file];
    const r = spawnSync(sbatch, args, { encoding: 'utf8' });
    if (r.error) throw new Error(`slurm: cannot run ${sbatch} (${r.error.message}); is Slurm installed here?`);
    if (r.status !== 0) throw new Error(`slurm: ${sbatch} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
    ids.push(r.stdout.trim().split(';')[0]);
  }
  return ids;
}
