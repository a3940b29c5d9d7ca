#include "ops/threadpool.h"

#include <cstdlib>
#include <memory>

namespace moescope {

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
    const std::function<void(int64_t, int64_t, int)>* job;
    int64_t n, chunk;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      chunk = job_chunk_;
    }
    int64_t b = (int64_t)index * chunk, e = b + chunk < n ? b + chunk : n;
    if (b < e) (*job)(b, e, index);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
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
  int64_t chunk = (units + n_threads_ - 1) / n_threads_ * grain;
  std::lock_guard<std::mutex> one_job(job_mu_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunk_ = chunk;
    pending_ = n_threads_ - 1;
    generation_++;
  }
  cv_start_.notify_all();
  fn(0, chunk < n ? chunk : n, 0);
  std::unique_lock<std::mutex> lk(mu_);
  cv_done_.wait(lk, [&] { return pending_ == 0; });
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
