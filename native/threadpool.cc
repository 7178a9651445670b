#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace nm {
namespace {

// set while a thread runs pool work: a nested parallel_for then runs inline instead of deadlocking
thread_local bool inside_pool = false;

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    stop();
    quit_ = false;
    quit_hint_.store(false);
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { loop(); });
  }

  void run(int n, const std::function<void(int)>& fn, int threads) {
    std::lock_guard<std::mutex> run(run_mutex_);  // one parallel_for at a time
    const int helpers = std::min<int>(static_cast<int>(workers_.size()), std::max(0, threads - 1));
    if (n <= 1 || helpers == 0) {
      for (int i = 0; i < n; i++) fn(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_.store(helpers, std::memory_order_relaxed);
      wanted_ = helpers;
      generation_++;
      gen_hint_.store(generation_, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // the helpers usually finish within microseconds of this thread: spin for them first, since
    // sleeping on the condition variable costs a futex wake-up (tens of microseconds on a VM) per call
    for (int spin = 0; spin < kSpin && active_.load(std::memory_order_acquire) != 0; spin++) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return active_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
  }

 private:
  void work() {
    inside_pool = true;
    for (;;) {
      const int i = next_.fetch_add(1);
      if (i >= n_) break;
      (*fn_)(i);
    }
    inside_pool = false;
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      // spin a little before sleeping: back-to-back parallel calls (a training step makes hundreds)
      // then find the worker awake instead of paying a wake-up each time
      for (int spin = 0; spin < kSpin && gen_hint_.load(std::memory_order_acquire) == seen && !quit_hint_.load(std::memory_order_relaxed); spin++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return quit_ || (generation_ != seen && wanted_ > 0); });
        if (quit_) return;
        seen = generation_;
        wanted_--;
      }
      work();
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // taking the lock orders this notify after the caller's check of active_ (no lost wake-up)
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      quit_ = true;
      quit_hint_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> active_{0};  // helpers still working on the current parallel_for
  int wanted_ = 0;
  uint64_t generation_ = 0;
  bool quit_ = false;
  // lock-free copies for the spin before sleeping
  std::atomic<uint64_t> gen_hint_{0};
  std::atomic<bool> quit_hint_{false};
  static constexpr int kSpin = 20000;  // about 0.5 ms of pause instructions (24 ns each on this EPYC)
};

int default_threads() {
  if (const char* e = std::getenv("NEURONMERGE_THREADS")) {
    const int n = std::atoi(e);
    if (n >= 1 && n <= 1024) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

void parallel_for(int n, const std::function<void(int)>& fn, int threads) {
  if (n <= 1 || threads == 1 || inside_pool) {
    for (int i = 0; i < n; i++) fn(i);
    return;
  }
  Pool& p = pool();
  p.run(n, fn, threads > 0 ? threads : p.size());
}

int num_threads() { return pool().size(); }

bool inside_parallel() { return inside_pool; }

int set_threads(int n) {
  pool().resize(std::max(1, std::min(n, 1024)));
  return pool().size();
}

}  // namespace nm
