// npm run bench [-- NAME ...] [--json]: runs the named benchmarks (all by default).
// first: re-runs this process with huge pages for large arrays, as the command does (Linux)
import '../src/runtime/rerun.js';
import { benchSpeedup } from './speedup.js';
import { benchCluster } from './cluster.js';
import { benchData } from './data.js';
import { benchConvOnly, benchGemm } from './gemm.js';
import { benchTrain } from './train.js';
import { benchGpu } from './gpu.js';
import { benchMalloc } from './malloc.js';
import { benchOnnx } from './onnx.js';
import type { BenchArgs } from './util.js';

const suites: Record<string, (a: BenchArgs) => Promise<void>> = { gemm: benchGemm, conv: benchConvOnly, data: benchData, train: benchTrain, cluster: benchCluster, speedup: benchSpeedup, gpu: benchGpu, malloc: benchMalloc, onnx: benchOnnx };

const argv = process.argv.slice(2);
const args: BenchArgs = { json: argv.includes('--json'), timeScale: 1 };
const names = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--only');
for (const n of names) {
  if (!suites[n]) {
    console.error(`bench: unknown benchmark '${n}' (known: ${Object.keys(suites).join(', ')})`);
    process.exit(2);
  }
}
for (const n of names.length ? names : Object.keys(suites)) await suites[n](args);
