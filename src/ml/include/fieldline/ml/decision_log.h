#pragma once
// Decision records kept for audit: the sampled predictions of serving (model, version, device,
// output, top contributions) with the inputs that produced them, in a SQLite file of their own
// (<data_dir>/decisions.db). record() is called on the shards' threads and only queues: one
// writer thread commits what has queued up in one transaction, so a shard never waits for
// the disk. The newest `kept` records stay; older ones are deleted as new ones come.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/core/sqlite.h"
#include "fieldline/ml/online.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::ml {

struct StoredDecision {
  uint64_t id = 0;
  int64_t recorded_ns = 0;  // when serving made it
  DecisionRecord record;
};

class DecisionLog {
 public:
  struct Options {
    std::string path;
    uint64_t kept = 100'000;
  };
  static Result<std::unique_ptr<DecisionLog>> open(const Options& options, ops::Metrics& metrics);
  ~DecisionLog();  // writes what is queued first
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // From any thread: queues the record (dropped and counted once 10,000 wait: the disk is
  // behind, and audit samples must not hold the shards back).
  void record(DecisionRecord record, int64_t recorded_ns);
  // Returns once everything queued before the call is written (or failed).
  void flush();

  struct Filter {
    std::string model, device;  // "": any
    int64_t version = 0;        // 0: any
    uint64_t before_id = 0;     // paging: ids below this (0: from the newest)
    size_t limit = 100;
  };
  // Newest first.
  Result<std::vector<StoredDecision>> list(const Filter& filter);

 private:
  DecisionLog(std::unique_ptr<core::sqlite::Database> db, uint64_t kept, ops::Metrics& metrics);
  void writer_loop();
  Status write(std::deque<StoredDecision>& batch);

  std::unique_ptr<core::sqlite::Database> db_;
  uint64_t kept_;
  ops::Counter& written_;
  ops::Counter& dropped_;
  std::mutex db_mu_;  // one connection, for the writer and readers in turn
  std::mutex queue_mu_;
  std::condition_variable queue_cv_, idle_cv_;
  std::deque<StoredDecision> queue_;
  uint64_t queued_ = 0, done_ = 0;  // records queued and handled, ever
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace fieldline::ml
