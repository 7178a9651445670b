// rerunWithHugePages(), called first (through ./rerun.js) by the command and the benchmarks: on Linux, re-runs this very process (same Node, flags and arguments, inheriting stdin/stdout/stderr) with
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that glibc's malloc asks for transparent huge pages for
// its large blocks, which are where V8 puts big Float32Arrays. Every op allocates its output, and a
// fresh block's first touch costs a page fault per 4 KiB page: on this project's VMs, writing a new
// 33.6 MB array took 26 ms against 4 ms for an old one, 7 ms with huge pages. A training step
// allocates its activations and gradients anew each step; alternating runs (medians of 5-30 steps)
// gave LeNet-5 35.8-36.7 ms against 38.4-39.3 ms, DBN 19.8-19.9 ms against 21.8-22.9 ms, and VGG-16
// 2.55 and 2.95 s against 3.37 and 3.46 s in one set but 2.80-3.38 s against 3.25-3.77 s (medians
// 3.25 and 3.26 s) in another: on this noisy machine, from nothing to 15% for VGG-16.
// Nothing happens where GLIBC_TUNABLES is already set (the user's own choice, or this re-run), where
// NEURONMERGE_HUGEPAGES=0, or off Linux; C libraries other than glibc ignore the variable. The
// machine's setting must allow it: /sys/kernel/mm/transparent_hugepage/enabled 'madvise' or 'always'.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';

export const HUGEPAGE_TUNABLES = 'glibc.malloc.hugetlb=1';
/** set in the re-run, so that programs it starts can be given the environment the user had */
export const RERUN_MARK = 'NEURONMERGE_HUGEPAGES_RERUN';

/** the environment without what the re-run added (for the reference programs a benchmark runs) */
export function envWithoutRerun(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env[RERUN_MARK] !== '1') return env;
  const e = { ...env };
  delete e.GLIBC_TUNABLES;
  delete e[RERUN_MARK];
  return e;
}

/** whether this process should re-run itself with huge pages (see the module's comment) */
export function wantsHugePageRerun(env: NodeJS.ProcessEnv = process.env, platform: string = process.platform): boolean {
  return platform === 'linux' && env.GLIBC_TUNABLES === undefined && env.NEURONMERGE_HUGEPAGES !== '0';
}

/**
 * Re-runs this process with huge pages where wantsHugePageRerun() says so; resolves never in that
 * case (this process exits with the re-run's status, or dies of its signal), at once otherwise.
 * SIGINT, SIGTERM and SIGHUP sent to this process are passed on, so that stopping it (a supervisor, a
 * `timeout`) stops the re-run too instead of leaving it orphaned.
 */
export function rerunWithHugePages(): Promise<void> {
  if (!wantsHugePageRerun()) return Promise.resolve();
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: HUGEPAGE_TUNABLES, [RERUN_MARK]: '1' },
  });
  return new Promise<void>((resolve) => {
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const sig of signals) process.on(sig, forward(sig));
    // where the re-run could not start at all, carry on in this process without huge pages
    child.on('error', () => resolve());
    child.on('exit', (code, signal) => {
      if (signal) {
        for (const sig of signals) process.removeAllListeners(sig);
        process.kill(process.pid, signal);
      }
      process.exit(code ?? 1);
    });
  });
}

/**
 * In the re-run: end this process when the one that started it is gone, however it went (SIGKILL
 * included, which cannot be passed on). A worker thread watches the parent's pid, since training keeps
 * the main thread busy for minutes without returning to the event loop.
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  const watcher = new Worker(
    `const { workerData } = require('node:worker_threads');
     setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 250);`,
    { eval: true, workerData: parent },
  );
  watcher.unref();
}
