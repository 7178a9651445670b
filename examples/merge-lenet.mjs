// Train a small LeNet-5 on 5,000 MNIST digits, merge every hidden layer at ratio 0.5, fine-tune, compare.
import { accuracyOf, archOf, cloneModel, finetuneModel, loadTask, mergeModel, modelStats, trainLenet } from 'neuronmerge';

const { model, arch } = await trainLenet({ epochs: 1, limit: 5000, seed: 0, progress: false });
const task = await loadTask(arch);
const merged = cloneModel(model, arch);
const { sites } = mergeModel(merged, { ratio: 0.5, seed: 0 });
for (const s of sites) console.log(`${s.layer.padEnd(22)} ${s.before} → ${s.after} units`);
const [a, b] = [model, merged].map((m) => modelStats(m, task.input).params);
console.log(`parameters ${a} → ${b} (${(100 * (1 - b / a)).toFixed(1)}% removed)`);
const pct = (m) => (100 * accuracyOf(m, task).accuracy).toFixed(2) + '%';
console.log(`test accuracy: original ${pct(model)}, merged ${pct(merged)}`);
await finetuneModel(merged, archOf(merged, arch), task, { epochs: 1, limit: 5000, progress: false });
console.log(`after one epoch of fine-tuning on the same 5,000 digits: ${pct(merged)}`);
