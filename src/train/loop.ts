// The training loop: epochs of seeded mini-batches, a progress bar on a terminal (plain lines in logs),
// evaluation, checkpoints that resume exactly, and a clear stop when the loss stops being finite.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BatchLoader } from '../../datasets/loader.js';
import type { Arch } from '../models/index.js';
import { Dropout, Sequential } from '../nn/layers.js';
import { InferenceSession } from '../nn/session.js';
import type { Precision } from '../nn/session.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, Schedule } from '../optim/index.js';
import { argmax, crossEntropy, slice, softmax, withProductPrecision } from '../tensor/ops.js';
import type { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { trackAllocations } from '../tensor/pool.js';
import { Interrupted, interruptRequested, stopIfInterrupted } from '../backend/native.js';
import { firstNonFinite, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { Checkpoint, CheckpointKind, InputNormalization, TrainState } from './checkpoint.js';
import { WeightAverage } from './ema.js';

/** a run stopped by Ctrl-C or SIGTERM between two steps (see watchInterrupts), after saving its
 * checkpoint where it had one; the message says where it stopped and how to go on */
export class TrainingInterrupted extends Interrupted {
  constructor(message: string, signal: 'SIGINT' | 'SIGTERM') {
    super(message, signal);
    this.name = 'TrainingInterrupted';
  }
}

export class TrainingDiverged extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDiverged';
  }
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  count: number;
  /** per class (the labels 0 … C−1): the share of that class's inputs predicted right (NaN where a class has none) */
  perClass: number[];
}

export interface EvalOptions {
  /** the products' operands: float32, or rounded to bfloat16 (a Sequential only) */
  precision?: Precision;
  /** test-time augmentation: 'flip' averages the class probabilities of each image and its mirror image
   * (left to right); images only */
  tta?: 'flip';
  /** stop between batches on Ctrl-C or SIGTERM (throws Interrupted; default true). fit's own evaluation
   * after an epoch does not: its checkpoint is written after it, and the next step stops */
  stoppable?: boolean;
}

/** each image of a batch (N, C, H, W) mirrored left to right */
function mirrored(x: Tensor): Tensor {
  const [N, C, H, W] = x.shape;
  const src = x.data, out = new Float32Array(N * C * H * W);
  for (let row = 0; row < N * C * H; row++) {
    const o = row * W;
    for (let j = 0; j < W; j++) out[o + j] = src[o + W - 1 - j];
  }
  return new Tensor(out, x.shape);
}

/** loss and accuracy of a model on (x, y), in eval mode and without autograd, in batches */
export function evaluate(model: Module, x: Tensor, y: Int32Array, batchSize = 500, o: EvalOptions = {}): EvalResult {
  const precision = o.precision ?? 'float32';
  if (o.tta !== undefined && o.tta !== 'flip') throw new Error(`evaluate: test-time augmentation '${o.tta}' is not one there is (flip)`);
  if (o.tta === 'flip' && x.shape.length !== 4) throw new Error(`evaluate: test-time flips mirror images (N, C, H, W); these inputs have shape [${x.shape.join(', ')}]`);
  const was = model.training;
  model.eval();
  // bfloat16: through an inference session that rounds the operands (a Sequential only)
  let forward = (b: Tensor) => model.forward(b);
  if (precision !== 'float32') {
    if (!(model instanceof Sequential)) throw new Error(`evaluate: precision ${precision} needs a Sequential model`);
    const session = new InferenceSession(model, { precision });
    forward = (b) => session.run(b);
  }
  let loss = 0, correct = 0;
  const N = x.shape[0];
  let hits: number[] = [], seen: number[] = [];
  try {
    noGrad(() => {
      for (let s = 0; s < N; s += batchSize) {
        if (o.stoppable !== false) stopIfInterrupted(() => `evaluating (${s} of ${N} inputs done)`);
        const e = Math.min(N, s + batchSize);
        const batch = slice(x, s, e);
        const yy = y.subarray(s, e);
        let pred: ArrayLike<number>;
        let classes: number;
        if (o.tta === 'flip') {
          // the mean of the two views' class probabilities; the loss is that mean's cross-entropy
          const a = softmax(forward(batch), 1), b = softmax(forward(mirrored(batch)), 1);
          classes = a.shape[1];
          const p = new Int32Array(e - s);
          for (let i = 0; i < e - s; i++) {
            let best = 0, bestP = -1;
            for (let c = 0; c < classes; c++) {
              const v = 0.5 * (a.data[i * classes + c] + b.data[i * classes + c]);
              if (v > bestP) [best, bestP] = [c, v];
            }
            p[i] = best;
            loss -= Math.log(Math.max(1e-30, 0.5 * (a.data[i * classes + yy[i]] + b.data[i * classes + yy[i]])));
          }
          pred = p;
        } else {
          const logits = forward(batch);
          classes = logits.shape[1];
          loss += crossEntropy(logits, yy).item() * (e - s);
          pred = argmax(logits, 1).data;
        }
        if (hits.length === 0) {
          hits = new Array(classes).fill(0);
          seen = new Array(classes).fill(0);
        }
        for (let i = 0; i < e - s; i++) {
          seen[yy[i]]++;
          if (pred[i] === yy[i]) {
            correct++;
            hits[yy[i]]++;
          }
        }
      }
    });
  } finally {
    model.train(was);
  }
  return { loss: loss / Math.max(1, N), accuracy: correct / Math.max(1, N), count: N, perClass: hits.map((h, c) => h / seen[c]) };
}

/** every generator a model holds (dropout layers), in a fixed order, for checkpoints */
export function modelRngs(model: Module): Rng[] {
  const out: Rng[] = [];
  const walk = (m: Module) => {
    if (m instanceof Dropout) out.push(m.rng);
    for (const [, c] of m.children()) walk(c);
  };
  walk(model);
  return out;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  evalAccuracy: number | null;
  evalLoss: number | null;
  seconds: number;
  imagesPerSecond: number;
  lr: number;
  /** with a moving average of the weights: its test accuracy and loss after the epoch */
  averagedAccuracy?: number | null;
  averagedLoss?: number | null;
}

export interface FitOptions {
  arch: Arch;
  loader: BatchLoader;
  optimizer: Optimizer;
  epochs: number;
  schedule?: Schedule;
  evalSet?: { x: Tensor; y: Int32Array };
  /** a checkpoint written at the end of every epoch (and every `checkpointEvery` steps); the run's log
   * lines are appended to the file of the same name with `.log` added */
  checkpoint?: string;
  checkpointEvery?: number;
  /** what the checkpoint holds (default 'original'; fine-tuning writes 'finetuned') */
  checkpointKind?: CheckpointKind;
  /** continue from this checkpoint (model, optimizer, position, generators) */
  resume?: string;
  /** recorded in the checkpoint: what the inputs are standardised by, so that what reads the model
   * later (export, ONNX output) needs no dataset for it */
  normalization?: InputNormalization | null;
  /** stop after this many optimizer steps in total (tests, budgets) */
  maxSteps?: number;
  /** the loss of a batch from the model's logits (default: cross-entropy with the labels); distillation
   * reads the inputs too */
  loss?: (logits: Tensor, x: Tensor, y: Int32Array) => Tensor;
  /** label smoothing of the default loss (0: none; not with a `loss` of one's own) */
  labelSmoothing?: number;
  /** progress output: a bar on a terminal, lines otherwise; false for silence */
  progress?: boolean;
  log?: (line: string) => void;
  /** the products' operands: float32 (default), or bf16 (inputs, weights and output gradients of
   *  every convolution and linear layer rounded to bfloat16; float32 accumulation, master weights,
   *  optimizer state, batch-norm statistics and loss). Evaluation runs in float32 */
  precision?: 'float32' | 'bf16';
  /** keep an exponential moving average of the weights with this decay (./ema.ts), saved beside them in
   * the checkpoint and evaluated after every epoch; a resumed run that had one continues it, one that
   * had none starts it at the step it resumes from */
  ema?: number;
}

export interface FitResult {
  history: EpochRecord[];
  steps: number;
  state: TrainState;
  /** the moving average of the weights, where one was kept */
  average: WeightAverage | null;
}

function bar(frac: number, width = 24): string {
  const n = Math.round(frac * width);
  return '[' + '#'.repeat(n) + '.'.repeat(width - n) + ']';
}

/** 3725 s → "1 h 02 min"; 95 s → "1 min 35 s" */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${s} s`;
}

export function fit(model: Module, o: FitOptions): FitResult {
  const toFile = o.checkpoint ? `${o.checkpoint}.log` : null;
  const say = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const tty = o.progress !== false && process.stderr.isTTY;
  const quiet = o.progress === false;
  if (toFile) mkdirSync(dirname(toFile), { recursive: true });
  const record = (l: string) => {
    if (toFile) appendFileSync(toFile, `${new Date().toISOString()} ${l}\n`);
  };
  // every line goes to the log beside the checkpoint (even with progress off), so a run that outlasts
  // its terminal keeps its story; to the terminal unless quiet
  const log = (l: string) => {
    if (!quiet) say(l);
    record(l);
  };
  const rngs = modelRngs(model);
  let state: TrainState = { epoch: 0, batch: 0, step: 0 };
  const history: EpochRecord[] = [];
  let saved: Checkpoint['average'] = null;
  if (o.resume) {
    const c = loadCheckpoint(o.resume);
    saved = c.average;
    if (JSON.stringify(c.arch) !== JSON.stringify(o.arch)) throw new Error(`${o.resume}: checkpoint is for ${JSON.stringify(c.arch)}, not ${JSON.stringify(o.arch)}`);
    model.loadStateDict(c.state, `${o.resume}: checkpoint`);
    if (c.optimizer) o.optimizer.setState(c.optimizer);
    if (c.rngs.length !== rngs.length) throw new Error(`${o.resume}: checkpoint holds ${c.rngs.length} generator states, the model has ${rngs.length}`);
    c.rngs.forEach((st, i) => rngs[i].setState(st));
    if (c.train) state = { ...c.train };
    if (Array.isArray(c.train?.extra?.history)) history.push(...(c.train!.extra!.history as EpochRecord[]));
  }
  if (o.ema !== undefined && saved && o.ema !== saved.state.decay) throw new Error(`${o.resume}: its weights are averaged with decay ${saved.state.decay}; resume it with that decay, not ${o.ema}`);
  const average = saved ? new WeightAverage(model, saved.state.decay, 0, saved) : o.ema !== undefined ? new WeightAverage(model, o.ema, state.step) : null;
  // time spent by the runs before this one, and this run's clocks
  const cpuBefore = state.cpuSeconds ?? 0, wallBefore = state.seconds ?? 0;
  const cpu0 = process.cpuUsage(), wall0 = performance.now();
  const spent = () => {
    const c = process.cpuUsage(cpu0);
    return { cpuSeconds: cpuBefore + (c.user + c.system) / 1e6, seconds: wallBefore + (performance.now() - wall0) / 1000 };
  };
  const save = () => {
    if (!o.checkpoint) return;
    // a step that left a weight non-finite is not saved over the last good checkpoint
    const bad = firstNonFinite(model.stateDict());
    if (bad) throw new TrainingDiverged(`training stopped: weight '${bad.name}' became ${bad.value} at step ${state.step}; ${existsSync(o.checkpoint) ? `the last good checkpoint is ${o.checkpoint}` : 'no checkpoint was written'}.`);
    state = { ...state, ...spent() };
    saveCheckpoint(o.checkpoint, { arch: o.arch, model, kind: o.checkpointKind, optimizer: o.optimizer, train: { ...state, epochs: o.epochs, extra: { history } }, rngs: rngs.map((r) => r.getState()), normalization: o.normalization, average });
  };
  const nb = o.loader.length;
  if (o.resume) {
    const total = o.epochs * nb;
    const perStep = state.step > 0 && state.seconds ? state.seconds / state.step : null;
    const left = perStep === null ? '' : `; about ${duration(perStep * Math.max(0, total - state.step))} left at ${perStep.toFixed(2)} s a step`;
    // a checkpoint written without its times (an older file) says so rather than 0 s
    const spentSoFar = state.seconds === undefined ? 'time spent before not recorded' : `${duration(state.cpuSeconds ?? 0)} of CPU time and ${duration(state.seconds)} so far`;
    if (state.epoch >= o.epochs) log(`${o.resume}: ${o.epochs === 1 ? 'its 1 epoch' : `all ${o.epochs} epochs`} done before (${state.seconds === undefined ? 'time not recorded' : `${duration(state.cpuSeconds ?? 0)} of CPU time`}); reusing it`);
    else log(`resuming ${o.resume}: epoch ${Math.min(state.epoch + 1, o.epochs)} of ${o.epochs}, batch ${state.batch} of ${nb} done (step ${state.step} of ${total}); ${spentSoFar}${left}`);
    if (average && !saved && state.epoch < o.epochs) log(`averaging the weights from step ${state.step} on (decay ${average.decay})`);
  }
  model.train();
  outer: for (let epoch = state.epoch; epoch < o.epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0, correct = 0, seen = 0;
    for (let b = epoch === state.epoch ? state.batch : 0; b < nb; b++) {
      if (o.maxSteps !== undefined && state.step >= o.maxSteps) break outer;
      if (o.schedule) o.optimizer.lr = o.schedule(state.step);
      const { x, y } = o.loader.batch(epoch, b);
      // the forward's arrays, which the backward pass reuses once it is done with them (nothing
      // but the logits is read after it)
      const precision = o.precision ?? 'float32';
      const { result: logits, buffers } = trackAllocations(() => withProductPrecision(precision, () => model.forward(x)));
      const loss = o.loss ? o.loss(logits, x, y) : crossEntropy(logits, y, o.labelSmoothing ?? 0);
      const lv = loss.item();
      if (!Number.isFinite(lv)) {
        const where = o.checkpoint && existsSync(o.checkpoint) ? `the last good checkpoint is ${o.checkpoint}` : 'no checkpoint was written';
        throw new TrainingDiverged(`training stopped: the loss became ${lv} at epoch ${epoch + 1}, batch ${b + 1} (step ${state.step + 1}); try a lower learning rate. ${where}.`);
      }
      o.optimizer.zeroGrad({ reuse: true });
      withProductPrecision(precision, () => loss.backward(undefined, { spent: { buffers, keep: [logits] } }));
      o.optimizer.step();
      average?.update();
      state = { epoch, batch: b + 1, step: state.step + 1 };
      lossSum += lv * y.length;
      seen += y.length;
      const pred = noGrad(() => argmax(logits.detach(), 1));
      for (let i = 0; i < y.length; i++) if (pred.data[i] === y[i]) correct++;
      if (o.checkpointEvery && state.step % o.checkpointEvery === 0) save();
      const signal = interruptRequested();
      if (signal) {
        save();
        const at = `epoch ${epoch + 1} of ${o.epochs}, batch ${b + 1} of ${nb} (step ${state.step} of ${o.epochs * nb})`;
        const msg = `interrupted (${signal}) at ${at}; ${o.checkpoint ? `${o.checkpoint} holds that point: the same command resumes it` : 'nothing was saved'}`;
        if (tty) process.stderr.write('\n');
        record(msg);
        throw new TrainingInterrupted(msg, signal);
      }
      if (!quiet || toFile) {
        const el = (performance.now() - t0) / 1000;
        const line = `epoch ${epoch + 1}/${o.epochs} ${bar((b + 1) / nb)} ${b + 1}/${nb} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(4)} ${(seen / el).toFixed(0)} img/s`;
        const tenth = (b + 1) % Math.max(1, Math.floor(nb / 10)) === 0;
        if (tty) {
          process.stderr.write('\r' + line);
          if (tenth) record(line);
        } else if (tenth) log(line);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    const ev = o.evalSet ? evaluate(model, o.evalSet.x, o.evalSet.y, undefined, { stoppable: false }) : null;
    const evAvg = average && o.evalSet ? average.applied(() => evaluate(model, o.evalSet!.x, o.evalSet!.y, undefined, { stoppable: false })) : null;
    const rec: EpochRecord = {
      epoch: epoch + 1, loss: lossSum / Math.max(1, seen), trainAccuracy: correct / Math.max(1, seen), evalAccuracy: ev?.accuracy ?? null, evalLoss: ev?.loss ?? null,
      seconds: secs, imagesPerSecond: seen / secs, lr: o.optimizer.lr, ...(average ? { averagedAccuracy: evAvg?.accuracy ?? null, averagedLoss: evAvg?.loss ?? null } : {}),
    };
    history.push(rec);
    state = { epoch: epoch + 1, batch: 0, step: state.step };
    if (tty) process.stderr.write('\n');
    log(`epoch ${epoch + 1}/${o.epochs}: loss ${rec.loss.toFixed(4)} train acc ${rec.trainAccuracy.toFixed(4)}${ev ? ` test acc ${ev.accuracy.toFixed(4)}` : ''}${evAvg ? ` (averaged weights ${evAvg.accuracy.toFixed(4)})` : ''} (${secs.toFixed(1)} s, ${rec.imagesPerSecond.toFixed(0)} img/s)`);
    save();
  }
  if (o.maxSteps !== undefined) save();
  return { history, steps: state.step, state, average };
}
