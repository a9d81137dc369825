#pragma once
// The shard runtime: one io_context and one thread per shard (Seastar's model, built from
// Asio). A shard owns its devices' storage head and state; other shards reach it only by
// posting work to its executor, never through a lock.

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace fieldline::core {

// Lets the calling thread run only when no other thread wants the CPU (Linux SCHED_IDLE, or
// nice 19 where that is refused): for background work that may wait, such as compressing
// sealed log segments, which must not take CPU from the shards. Returns false if neither took.
bool make_this_thread_idle_priority();

class ShardRuntime {
 public:
  // REQUIRES: shards >= 1.
  explicit ShardRuntime(uint32_t shards);
  ~ShardRuntime();
  ShardRuntime(const ShardRuntime&) = delete;
  ShardRuntime& operator=(const ShardRuntime&) = delete;

  uint32_t size() const { return static_cast<uint32_t>(shards_.size()); }
  boost::asio::io_context& context(uint32_t shard) { return shards_[shard]->io; }
  // Starts one thread per shard (shard 0 included).
  void start();
  // Lets the io_contexts run out of work and stop; join() waits for the threads.
  void release();
  void stop();
  void join();

 private:
  struct Shard {
    boost::asio::io_context io{1};
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace fieldline::core
