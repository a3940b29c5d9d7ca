// A fixed pool of worker threads for data-parallel loops. The calling thread takes part, so a pool of
// N threads runs N-1 workers. Work is split into contiguous ranges (by output rows in matmuls), one per
// thread, so no two threads write the same cache line except at range edges.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moescope {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  int size() const { return n_threads_; }
  // fn(begin, end, thread_index) over [0, n) split into ranges that are multiples of `grain`
  // (except the last), taken by whichever thread is free, shrinking toward the end; one thread
  // may run several. Returns when all ranges are done. Calls from different threads (two
  // runs at once) take turns; fn must not call parallel_for itself.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker(int index);
  void run_pieces(int index);
  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex job_mu_;  // one parallel_for at a time
  // Job fields are written before generation_ is bumped and read after it is seen (release/acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
  std::atomic<int64_t> job_next_{0};  // start of the next range nobody has taken
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  // Threads spin briefly, then sleep on these; the counters say whether a notify is needed.
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  bool stop_ = false;
};

// The process-wide pool used by models (threads = hardware cores unless MOESCOPE_THREADS is set).
// Looked up on every use, so set_default_threads applies to models already loaded.
ThreadPool& default_pool();
void set_default_threads(int n);

}  // namespace moescope
