// Imported first by the command, the benchmarks and the training script (before anything else loads):
// re-runs the process with huge pages for large arrays where that applies (see ./hugepages.ts).
import { rerunWithHugePages } from './hugepages.js';

await rerunWithHugePages();
