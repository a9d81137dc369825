#pragma once
// Private parts of the Pipeline shared by pipeline.cc and reprocess.cc: a shard's state and
// the helpers that run work on a shard's thread or the background pool.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fieldline/core/async.h"
#include "fieldline/ingest/pipeline.h"

namespace fieldline::ingest {

namespace asio = boost::asio;

// A transport's counters, looked up once: the ingest path does not search the metrics registry.
struct IngestCounters {
  const char* transport = "";
  ops::Counter* accepted = nullptr;
  ops::Histogram* durable_latency = nullptr;
};
constexpr size_t kTransports = static_cast<size_t>(Transport::import) + 1;

// A rejection's reason as quarantine files it: the error's name, without "ingest." for ours.
inline std::string reason_of(const Error& e) {
  std::string name = e.name();
  return name.starts_with("ingest.") ? name.substr(7) : name;
}

// One submission's outcomes, complete when its parts are: the samples durable in the WAL
// and the rejected messages durable in quarantine. Both finish on the shard's thread.
struct Join {
  std::vector<MessageOutcome> outcomes;
  std::function<void(std::vector<MessageOutcome>)> finish;
  int parts = 0;
  void part_done() {
    if (--parts == 0) finish(std::move(outcomes));
  }
};

// Where a reprocessing job's submissions go instead of storage (SubmitMode::reprocess).
struct ReprocessSink {
  std::vector<tsdb::SampleIn> samples;
  std::vector<RateState> rates;            // by series ref: the job's own, not live ingestion's
  std::vector<QuarantineRecord> rejected;  // messages the current contract refuses
};

struct Pipeline::Shard {
  uint32_t index = 0;
  asio::io_context* io = nullptr;
  std::unique_ptr<tsdb::Db> db;
  std::unique_ptr<RawLog> raw;  // accepted messages as they came: their lineage
  std::vector<std::string_view> raw_metrics;  // reused per message
  std::vector<int64_t> raw_calibrations;
  struct Waiter {
    uint64_t lsn;
    std::chrono::steady_clock::time_point submitted;
    std::function<void()> complete;
  };
  std::deque<Waiter> waiters;  // ascending lsn
  std::unique_ptr<asio::steady_timer> maintenance;
  std::atomic<bool> closed{false};
  ops::Gauge* queue_depth = nullptr;
  ops::Gauge *wal_bytes = nullptr, *wal_syncs = nullptr, *head_series = nullptr, *head_samples = nullptr,
             *blocks = nullptr, *block_bytes = nullptr, *disk_full = nullptr;
  ops::Counter* wal_sync_us = nullptr;
  ops::Counter* samples_stored = nullptr;  // looked up once: drain() runs every round
  uint64_t wal_sync_us_reported = 0;
  std::vector<tsdb::SampleIn> scratch;  // the samples of this round's submissions
  // Submissions prepared in this round of the event loop, appended together by drain().
  struct Pending {
    std::vector<std::pair<size_t, size_t>> spans;  // per message, [begin, end) in scratch
    std::shared_ptr<Join> join;
    std::chrono::steady_clock::time_point started;
    const IngestCounters* counters = nullptr;
    bool observed = false;  // live: shown to the SampleObserver
  };
  std::vector<Pending> pending;
  // Samples the shard's observers derived (predictions), appended after the next round's.
  std::vector<tsdb::SampleIn> derived;
  ops::Counter* derived_refused = nullptr;
  bool drain_posted = false;
  bool job_in_flight = false;  // a block cut or compaction running in the background
  bool reprocessing = false;   // a reprocessing job holds the shard (one at a time)
  std::array<IngestCounters, kTransports> counters;  // by Transport
  // This shard's copy of the published contracts, refreshed when the book's generation moves.
  ContractBook::Map contracts;
  uint64_t contracts_generation = UINT64_MAX;
  CalibrationBook::Map calibrations;
  uint64_t calibrations_generation = UINT64_MAX;
  UnitCache units;
  Validation validation;         // reused for every message
  std::vector<RateState> rates;  // by series ref, for metrics with a maximum rate
  std::vector<int64_t> last_ts;  // by series ref, for metrics with an expected interval
  std::unordered_map<std::string, DeviceQuality> quality;  // by device
  // Counted here per message and added to the shared counters once a second: an atomic add
  // per message on a cache line every shard writes cost more than the counting itself.
  struct ProfileCounts {
    uint64_t conforming = 0, warnings = 0, rejected = 0, late = 0, missing = 0;
  };
  struct ProfileCounters {
    ops::Counter *conforming, *warnings, *rejected, *late, *missing;
    ProfileCounts pending;
    void publish() {
      auto add = [](ops::Counter* c, uint64_t& n) {
        if (n) c->inc(n);
        n = 0;
      };
      add(conforming, pending.conforming);
      add(warnings, pending.warnings);
      add(rejected, pending.rejected);
      add(late, pending.late);
      add(missing, pending.missing);
    }
  };
  std::unordered_map<std::string, ProfileCounters> profile_counters;
  uint64_t ticks = 0;            // maintenance ticks (1 s)
  struct QuotaBucket {
    double tokens = 0;
    int64_t refilled_ns = 0;
  };
  std::unordered_map<std::string, QuotaBucket> quarantine_quota;  // by device
  ops::Counter* flagged[3] = {};  // by Quality
};

using core::on_executor;

template <typename F>
inline auto on_shard(asio::io_context& io, F f) -> asio::awaitable<decltype(f())> {
  // Named, not a temporary inside co_await (GCC 12, see below).
  auto job = on_executor(io.get_executor(), std::move(f));
  auto result = co_await std::move(job);
  co_return result;
}

}  // namespace fieldline::ingest
