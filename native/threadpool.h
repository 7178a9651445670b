// A persistent thread pool: workers sleep on a condition variable and wake for each parallel_for;
// the calling thread takes part. Sized to the available cores, or NEURONMERGE_THREADS, or set_threads().
#pragma once
#include <functional>

namespace nm {

/** run fn(i) for i in [0, n) on the pool, at most `threads` at a time (0 = the pool's size); blocks */
void parallel_for(int n, const std::function<void(int)>& fn, int threads = 0);
/** the pool's size (threads, the caller included) */
int num_threads();
/** true on a thread that is running pool work (a parallel_for from there runs inline) */
bool inside_parallel();
/** resize the pool (>= 1); returns the new size */
int set_threads(int n);

}  // namespace nm
