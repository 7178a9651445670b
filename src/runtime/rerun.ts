// Imported first by the command and the benchmarks (before anything else loads): re-runs the process
// with huge pages for large arrays where that applies (see ./hugepages.ts), and asks for malloc's
// reuse of freed large blocks (setMallocReuse in src/backend/native.ts) unless NEURONMERGE_MALLOC
// says otherwise; the native backend reads it when it loads. Both address the cost of fresh memory:
// a page fault per 4 KiB of each fresh activation without huge pages, the kernel clearing every
// fresh huge page with them (9.5% of a VGG-16 training step's samples). VGG-16 training step at
// batch 128 (Zen 5, 2 threads, three alternating runs): huge pages alone 692-755 ms, reuse alone
// 659-684, both 636-645; the DBN and LeNet-5 level within 0.2 ms either way.
import { exitWithParent, RERUN_MARK, rerunWithHugePages } from './hugepages.js';
import { nativePathError } from './env.js';

// a build of the addon named by NEURONMERGE_NATIVE_PATH is used or refused, never quietly replaced by
// the TypeScript kernels (the library on its own falls back with a warning)
{
  const why = nativePathError();
  if (why) {
    process.stderr.write(`neuronmerge: ${why}\n`);
    process.exit(1);
  }
}

// set before the first await: the modules imported beside this one (the library, whose native
// backend reads NEURONMERGE_MALLOC as it loads) are evaluated while this module awaits; the re-run
// inherits it
process.env.NEURONMERGE_MALLOC ??= 'reuse';
await rerunWithHugePages();
if (process.env[RERUN_MARK] === '1') exitWithParent();
