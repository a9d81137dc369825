#include "fieldline/core/runtime.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

namespace fieldline::core {

bool make_this_thread_idle_priority() {
  // Scheduling policy and nice value are per thread on Linux: pid 0 / the thread id is this one.
  sched_param param{};
  if (sched_setscheduler(0, SCHED_IDLE, &param) == 0) return true;
  return setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19) == 0;
}

ShardRuntime::ShardRuntime(uint32_t shards) {
  for (uint32_t i = 0; i < (shards == 0 ? 1 : shards); ++i) {
    auto s = std::make_unique<Shard>();
    s->guard = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
        s->io.get_executor());
    shards_.push_back(std::move(s));
  }
}

ShardRuntime::~ShardRuntime() {
  stop();
  join();
}

void ShardRuntime::start() {
  for (auto& s : shards_) {
    s->thread = std::thread([shard = s.get()] {
      for (;;) {
        try {
          shard->io.run();
          return;
        } catch (const std::exception& e) {
          // Handlers must not throw; one that does is a bug, but it must not take the shard down.
          std::fprintf(stderr, "BUG: exception escaped a shard handler: %s\n", e.what());
        }
      }
    });
  }
}

void ShardRuntime::release() {
  for (auto& s : shards_) s->guard.reset();
}

void ShardRuntime::stop() {
  for (auto& s : shards_) s->io.stop();
}

void ShardRuntime::join() {
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

}  // namespace fieldline::core
