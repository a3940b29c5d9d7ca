#include "ops/threadpool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

// A decoded token is ~100 matmuls a few tens of microseconds apart; waking a sleeping thread
// through a futex costs about as much as the matmul itself (measured: 17 % of decode time in
// futex wake-ups on scout-mid). So both sides spin for a short while before sleeping: long enough
// to bridge the gap between two matmuls of one token, short enough that an idle kernel sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Spins until pred() or kSpin has passed; true when pred() held.
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}

// A job is cut into pieces taken in order by whichever thread is free (guided scheduling): each
// piece is 1/(2 x threads) of what is left, rounded to the grain, so pieces shrink toward the end
// and the threads finish together. A core slowed by another process, or a range that costs more
// (the late rows of causal attention), then delays the job by a small piece instead of by half of
// it: with fixed halves one core spun ~13% of a Q4_K_M decode waiting for the other.
}  // namespace

void ThreadPool::run_pieces(int index) {
  const int64_t n = job_n_, grain = job_grain_, split = 2 * (int64_t)n_threads_;
  int64_t b = job_next_.load(std::memory_order_relaxed);
  while (b < n) {
    const int64_t size = std::max<int64_t>(grain, (n - b) / split / grain * grain);
    if (!job_next_.compare_exchange_weak(b, b + size, std::memory_order_relaxed)) continue;  // b reloaded
    (*job_)(b, std::min(b + size, n), index);
    b = job_next_.load(std::memory_order_relaxed);
  }
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; i++) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  while (true) {
    auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(started)) {
      std::unique_lock<std::mutex> lk(mu_);
      // sleepers_ is raised before the check, under the lock: a dispatcher that bumps generation_
      // after this check sees sleepers_ > 0 and notifies under the same lock (no lost wake-up).
      sleepers_.fetch_add(1);
      cv_start_.wait(lk, [&] { return stop_ || started(); });
      sleepers_.fetch_sub(1);
      if (stop_) return;
    }
    seen = generation_.load(std::memory_order_acquire);
    run_pieces(index);
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t units = (n + grain - 1) / grain;
  if (n_threads_ == 1 || units < 2) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> one_job(job_mu_);
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  job_next_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes the job fields above
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_start_.notify_all();
  }
  run_pieces(0);
  auto done = [&] { return pending_.load() == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lk(mu_);
    caller_sleeping_.store(true);
    cv_done_.wait(lk, done);
    caller_sleeping_.store(false);
  }
}

namespace {
std::unique_ptr<ThreadPool> g_pool;
// Pools replaced by set_default_threads are kept (idle) rather than destroyed: a run that started
// on one may still be using it.
std::vector<std::unique_ptr<ThreadPool>> g_retired;
std::mutex g_pool_mu;
int default_thread_count() {
  if (const char* e = getenv("MOESCOPE_THREADS")) {
    int n = atoi(e);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? (int)hc : 1;
}
}  // namespace

ThreadPool& default_pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool.reset(new ThreadPool(default_thread_count()));
  return *g_pool;
}

void set_default_threads(int n) {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (g_pool && g_pool->size() == n) return;
  if (g_pool) g_retired.push_back(std::move(g_pool));
  g_pool.reset(new ThreadPool(n));
}

}  // namespace moescope
