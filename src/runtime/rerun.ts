// Imported first by the command and the benchmarks (before anything else loads):
// re-runs the process with huge pages for large arrays where that applies (see ./hugepages.ts); where
// the process runs without them (NEURONMERGE_HUGEPAGES=0, the user's own GLIBC_TUNABLES, off Linux),
// asks instead for malloc's reuse of freed large blocks (setMallocReuse in src/backend/native.ts)
// unless NEURONMERGE_MALLOC says otherwise; the native backend reads it when it loads. Both address
// the same cost, a page fault per 4 KiB of each fresh activation. Interleaved in one process (npm run
// bench -- malloc), reuse against glibc's defaults: without huge pages 0.90-0.93 of the step time
// (DBN, LeNet-5, VGG-16), with them level within the noise (0.94-1.08 over two runs); so one or the other.
import { exitWithParent, HUGEPAGE_TUNABLES, RERUN_MARK, rerunWithHugePages, wantsHugePageRerun } from './hugepages.js';

// decided before the first await: the modules imported beside this one (the library, whose native
// backend reads NEURONMERGE_MALLOC as it loads) are evaluated while this module awaits
if (!wantsHugePageRerun() && !(process.env.GLIBC_TUNABLES ?? '').includes(HUGEPAGE_TUNABLES)) process.env.NEURONMERGE_MALLOC ??= 'reuse';
await rerunWithHugePages();
if (process.env[RERUN_MARK] === '1') exitWithParent();
