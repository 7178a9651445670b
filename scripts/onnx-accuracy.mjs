#!/usr/bin/env node
// The test accuracy of an ONNX model as onnxruntime computes it (onnxruntime-node, a development
// dependency), on the test set neuronmerge evaluates it on, fed exactly as neuronmerge feeds it:
//   node scripts/onnx-accuracy.mjs MODEL.onnx [--data PATH] [--dataset NAME]
// so that a figure neuronmerge reports for a model can be checked in another runtime.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { fromOnnx, loadTask } from '../dist/src/internal.js';

const args = process.argv.slice(2);
const file = args.find((a, i) => !a.startsWith('--') && !['--data', '--dataset'].includes(args[i - 1]));
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
if (!file) {
  console.error('usage: node scripts/onnx-accuracy.mjs MODEL.onnx [--data PATH] [--dataset NAME]');
  process.exit(2);
}
// a missing or broken file, or data that cannot be had, is one line naming it, not a stack trace
const fail = (e) => {
  console.error(`onnx-accuracy: ${e.code === 'ENOENT' ? `${file}: no such file` : e.message.split('\n')[0]}`);
  process.exit(1);
};
let bytes, arch, task, session;
try {
  bytes = readFileSync(file);
  ({ arch } = fromOnnx(bytes, file, { dataset: opt('--dataset') }));
  task = await loadTask(arch, { path: opt('--data'), dataset: opt('--dataset') });
  session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
} catch (e) {
  fail(e);
}
const [input] = session.inputNames, [output] = session.outputNames;
const x = task.ev.x, y = task.ev.y, per = x.size / y.length, C = arch.classes;
let right = 0;
for (let i = 0; i < y.length; i += 1000) {
  const n = Math.min(1000, y.length - i);
  const out = (await session.run({ [input]: new ort.Tensor('float32', Float32Array.from(x.data.subarray(i * per, (i + n) * per)), [n, ...task.input]) }))[output].data;
  for (let k = 0; k < n; k++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (out[k * C + c] > out[k * C + best]) best = c;
    if (best === y[i + k]) right++;
  }
}
console.log(`${file}: onnxruntime ${ort.env.versions.common}, ${task.settings.dataset} test set (${y.length} images): accuracy ${(100 * right / y.length).toFixed(2)}%`);
