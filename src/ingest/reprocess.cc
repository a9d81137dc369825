// Pipeline::reprocess: a device's samples in a time range derived again from its raw messages
// and swapped in for the stored ones.
//
// The job runs in steps, each where its data lives:
//   1. on the device's shard: the raw log's high-water mark (the newest message written) and
//      the samples the range holds now;
//   2. off the shards: the raw log read for the device's messages up to that mark;
//   3. on the shard, a few hundred messages at a time: each decoded, validated, calibrated and
//      tagged exactly as live ingestion does (Pipeline::process in reprocess mode), its samples
//      staged rather than stored;
//   4. checks: refused, changing nothing, when messages would now be rejected or stored samples
//      have no raw message (unless asked otherwise); a dry run stops here;
//   5. the replacement (tsdb::Db::prepare_replace / run_replace / finish_replace): blocks
//      rewritten off the shard, then, back on it, the messages that arrived since step 1 are
//      derived too and the head's part is logged and applied as one record;
//   6. the caller is answered once that record is durable.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "fieldline/core/errc.h"
#include "fieldline/core/log.h"
#include "fieldline/core/time.h"
#include "fieldline/tsdb/errc.h"
#include "pipeline_internal.h"

namespace fieldline::ingest {

namespace {

// The messages of a device that may hold samples in [from, to): by the times their samples had
// when first stored, or by their receipt.
bool concerns(const RawEntry& e, const std::string& device, int64_t from, int64_t to) {
  if (e.device != device) return false;
  return (e.samples > 0 && e.min_ts < to && e.max_ts >= from) || (e.received_ns >= from && e.received_ns < to);
}

// The end of the run of entries from `i` that one submission takes: the same transport and
// reported tags (one device context), at most `most` of them.
size_t run_end(const std::vector<RawEntry>& entries, size_t i, size_t most) {
  size_t j = i + 1;
  while (j < entries.size() && j - i < most && entries[j].transport == entries[i].transport &&
         entries[j].reported == entries[i].reported) {
    ++j;
  }
  return j;
}

// Time intervals, merged, answering "does one hold ts?".
class Intervals {
 public:
  void add(int64_t lo, int64_t hi) {
    if (lo <= hi) spans_.emplace_back(lo, hi);
  }
  void seal() {
    std::sort(spans_.begin(), spans_.end());
    std::vector<std::pair<int64_t, int64_t>> merged;
    for (const auto& s : spans_) {
      if (!merged.empty() && s.first <= merged.back().second) merged.back().second = std::max(merged.back().second, s.second);
      else merged.push_back(s);
    }
    spans_ = std::move(merged);
  }
  bool holds(int64_t ts) const {
    auto it = std::upper_bound(spans_.begin(), spans_.end(), std::pair{ts, INT64_MAX});
    return it != spans_.begin() && std::prev(it)->second >= ts;
  }

 private:
  std::vector<std::pair<int64_t, int64_t>> spans_;
};

}  // namespace

asio::awaitable<Result<ReprocessReport>> Pipeline::reprocess(ReprocessRequest request) {
  const auto started = std::chrono::steady_clock::now();
  if (!request.device) co_return core::make_error(core::Errc::invalid_argument, "reprocess: no device");
  const std::string device = request.device->id;
  const int64_t from = request.from, to = request.to;
  if (from >= to) co_return core::make_error(core::Errc::invalid_argument, "reprocess: --from must come before --to");
  if (!raw_log_on_) {
    co_return core::make_error(core::Errc::unsupported, "reprocess needs the raw log, and ingest.raw_log is off");
  }
  Shard& shard = *shards_[shard_of(device)];
  ReprocessReport report;

  // 1. Hold the shard for the job and take stock of the range.
  struct Start {
    bool busy = false;
    uint64_t through = 0;        // the raw log's newest written message
    std::vector<int64_t> stored;  // times of the range's stored samples, sorted
    std::map<std::string, uint64_t> by_metric;
  };
  auto take_stock = [&shard, &device, from, to]() -> Result<Start> {
    Start s;
    if (shard.reprocessing) {
      s.busy = true;
      return s;
    }
    s.through = shard.raw->flushed_through();
    tsdb::Selector sel;
    sel.matchers = {*tsdb::Matcher::make("device", tsdb::Matcher::Op::eq, device)};
    for (const auto& info : shard.db->select(sel)) {
      if (info.max_ts < from || info.min_ts >= to) continue;
      auto part = shard.db->read(info.key, from, to);
      if (!part) return part.error();
      s.by_metric[info.key.metric] += part->size();
      for (const auto& x : *part) s.stored.push_back(x.ts);
    }
    std::sort(s.stored.begin(), s.stored.end());
    shard.reprocessing = true;
    return s;
  };
  auto stock = co_await on_shard(*shard.io, std::move(take_stock));
  if (!stock) co_return stock.error();
  if (stock->busy) {
    co_return core::make_error(core::Errc::unsupported, "another reprocessing job is running on device '" + device +
                                                            "''s shard; try again when it is done");
  }
  // From here on the shard is held: every way out releases it.
  struct Release {
    Shard& shard;
    ~Release() {
      asio::post(*shard.io, [s = &shard] { s->reprocessing = false; });
    }
  } release{shard};
  for (const auto& [metric, n] : stock->by_metric) {
    report.by_metric[metric].first = n;
    report.samples_before += n;
  }

  // 2. The device's messages up to the mark, read off the shards.
  const int64_t skew = config_.ingest.max_future_skew_ns;
  const std::string dir = shard.raw->dir();
  auto read_log = [this, dir, device, from, to, skew, through = stock->through]() -> Result<std::vector<RawEntry>> {
    std::vector<RawEntry> out;
    auto st = RawLog::scan_range(env_, dir, 0, through, from - skew,
                                 [&](const RawEntry& e) { return concerns(e, device, from, to); },
                                 [&](RawEntry e) { out.push_back(std::move(e)); });
    if (!st) return st.error();
    return out;
  };
  auto entries = co_await on_executor(background_->get_executor(), std::move(read_log));
  if (!entries) co_return entries.error();

  // 3. Each message derived again, on the shard, as live ingestion would.
  DecodeLimits limits;
  limits.max_values = config_.ingest.max_values_per_message;
  auto sink = std::make_shared<ReprocessSink>();
  Intervals explained;  // the sample times the messages had when first stored
  std::map<std::vector<std::pair<std::string, std::string>>, std::shared_ptr<const DeviceContext>> contexts;
  auto context_for = [&](const RawEntry& e) {
    auto& ctx = contexts[e.reported];
    if (!ctx) {
      ctx = e.reported.empty() ? request.device
                               : make_device_context(device, request.device->profile, request.device->tags, e.reported);
    }
    return ctx;
  };
  // Derives a run of entries (same transport and reported tags) into `into`; on the shard.
  auto derive = [this, &shard, &limits, &device](std::span<RawEntry> run, const std::shared_ptr<const DeviceContext>& ctx,
                                                  ReprocessSink& into) {
    std::vector<Message> messages;
    messages.reserve(run.size());
    for (auto& e : run) messages.push_back(decode_message(e.format, std::move(e.payload), e.received_ns, limits, device));
    const Transport transport = parse_transport(run.front().transport);
    auto join = std::make_shared<Join>();
    join->outcomes.resize(messages.size());
    std::vector<MessageOutcome> outcomes;
    join->finish = [&outcomes](std::vector<MessageOutcome> o) { outcomes = std::move(o); };
    process(shard, *ctx, messages, transport, SubmitMode::reprocess, &shard.counters[static_cast<size_t>(transport)], join,
            &into);
    return outcomes;
  };
  auto tally = [&report](const std::vector<MessageOutcome>& outcomes) {
    for (const auto& o : outcomes) {
      ++report.messages;
      report.contract_version = std::max(report.contract_version, o.contract_version);
      if (!o.status) {
        if (report.rejected++ == 0) report.first_rejection = o.status.error().name() + ": " + o.status.error().message();
        ++report.rejected_by_reason[o.status.error().name()];
      }
      report.flagged += o.flagged;
    }
  };
  auto& all = *entries;
  for (size_t i = 0; i < all.size();) {
    const size_t j = run_end(all, i, 256);
    for (size_t k = i; k < j; ++k) explained.add(all[k].min_ts, all[k].max_ts);
    auto ctx = context_for(all[i]);
    std::span<RawEntry> run(all.data() + i, j - i);
    auto step = [&derive, run, ctx, sink]() { return derive(run, ctx, *sink); };
    auto outcomes = co_await on_shard(*shard.io, std::move(step));
    tally(outcomes);
    i = j;
  }
  explained.seal();
  std::erase_if(sink->samples, [from, to](const tsdb::SampleIn& s) { return s.ts < from || s.ts >= to; });

  // 4. What would change, and whether it may.
  std::vector<int64_t> derived_times;
  derived_times.reserve(sink->samples.size());
  for (const auto& s : sink->samples) derived_times.push_back(s.ts);
  std::sort(derived_times.begin(), derived_times.end());
  for (int64_t ts : stock->stored) {
    if (std::binary_search(derived_times.begin(), derived_times.end(), ts) || explained.holds(ts)) continue;
    if (report.unexplained++ == 0) report.first_unexplained = core::format_rfc3339(ts);
  }
  auto count_after = [&shard, sink]() {
    std::map<std::string, uint64_t> n;
    for (const auto& s : sink->samples) ++n[shard.db->series_key(s.ref).metric];
    return n;
  };
  auto counted = co_await on_shard(*shard.io, std::move(count_after));
  for (const auto& [metric, n] : counted) {
    report.by_metric[metric].second = n;
    report.samples_after += n;
  }
  if (report.rejected > 0 && !request.quarantine_rejected) {
    report.refused = std::to_string(report.rejected) + " message(s) would now be rejected (first: " + report.first_rejection +
                     "); fix the contract or decoder, or allow them to go to quarantine";
  } else if (report.unexplained > 0 && !request.force) {
    report.refused = std::to_string(report.unexplained) + " stored sample(s) in the range, the first at " +
                     report.first_unexplained +
                     ", come from no message in the raw log (imported, stored while ingest.raw_log was off, or older "
                     "than its retention); reprocessing would delete them; force it to go ahead";
  }
  auto finish_report = [&] {
    report.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
    return report;
  };
  if (request.dry_run || !report.refused.empty()) co_return finish_report();

  // Rejected messages reach quarantine before their samples go, so none is lost if the job
  // stops between the two (running it again would quarantine them once more).
  auto quarantine_all = [this](std::vector<QuarantineRecord> records) -> asio::awaitable<Result<size_t>> {
    if (records.empty()) co_return size_t{0};
    const size_t n = records.size();
    auto added = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<std::vector<uint64_t>>)>(
        [&](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          quarantine_->add(std::move(records), [h](Result<std::vector<uint64_t>> ids) mutable { (*h)(std::move(ids)); });
        },
        asio::use_awaitable);
    if (!added) co_return added.error();
    co_return n;
  };
  {
    // Named, not a temporary inside co_await (GCC 12; see pipeline.cc).
    auto adding = quarantine_all(std::move(sink->rejected));
    auto quarantined = co_await std::move(adding);
    if (!quarantined) co_return quarantined.error();
    report.quarantined += *quarantined;
  }

  // 5. The replacement: prepared on the shard, once no block cut or compaction is running.
  std::shared_ptr<tsdb::ReplaceJobPtr> job;
  for (int attempt = 0;; ++attempt) {
    auto prepare = [&shard, &device, from, to, sink]() -> std::optional<Result<tsdb::ReplaceJobPtr>> {
      if (shard.job_in_flight) return std::nullopt;
      return shard.db->prepare_replace(device, from, to, std::move(sink->samples));
    };
    auto prepared = co_await on_shard(*shard.io, std::move(prepare));
    if (prepared) {
      if (!*prepared) co_return prepared->error();
      job = std::make_shared<tsdb::ReplaceJobPtr>(std::move(**prepared));
      break;
    }
    if (attempt >= 600) co_return tsdb::make_error(tsdb::Errc::busy, "reprocess: the shard's blocks stayed busy for a minute");
    asio::steady_timer wait(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
    co_await wait.async_wait(asio::use_awaitable);
  }
  auto run = [job, this]() { return tsdb::Db::run_replace(**job, &stopping_); };
  Status ran = co_await on_executor(background_->get_executor(), std::move(run));
  // Back on the shard: messages that arrived since step 1 are derived too, then the swap.
  struct Finished {
    Result<tsdb::ReplaceResult> result = tsdb::ReplaceResult{};
    std::vector<MessageOutcome> late;
    std::vector<QuarantineRecord> rejected;
  };
  auto finish = [this, &shard, &device, &derive, &context_for, job, ran, dir, from, to, skew, through = stock->through]() {
    Finished f;
    std::vector<RawEntry> late;
    ReprocessSink late_sink;
    if (ran) {
      auto st = RawLog::scan_range(env_, dir, through, UINT64_MAX, from - skew,
                                   [&](const RawEntry& e) { return concerns(e, device, from, to); },
                                   [&](RawEntry e) { late.push_back(std::move(e)); });
      if (!st) {
        f.result = shard.db->finish_replace(std::move(*job), st);  // unpublishes the rewritten blocks
        return f;
      }
      for (size_t i = 0; i < late.size();) {
        const size_t j = run_end(late, i, SIZE_MAX);
        auto outcomes = derive(std::span<RawEntry>(late.data() + i, j - i), context_for(late[i]), late_sink);
        f.late.insert(f.late.end(), outcomes.begin(), outcomes.end());
        i = j;
      }
    }
    f.result = shard.db->finish_replace(std::move(*job), ran, late_sink.samples);
    f.rejected = std::move(late_sink.rejected);
    return f;
  };
  auto finished = co_await on_shard(*shard.io, std::move(finish));
  if (!finished.result) co_return finished.result.error();
  report.late_messages = finished.late.size();
  tally(finished.late);
  {
    auto adding = quarantine_all(std::move(finished.rejected));
    auto quarantined = co_await std::move(adding);
    if (quarantined) report.quarantined += *quarantined;
  }
  report.blocks_rewritten = finished.result->blocks_rewritten;
  report.samples_before = finished.result->removed;
  report.samples_after = finished.result->written;

  // 6. Answered once the head's part is durable.
  const uint64_t lsn = finished.result->lsn;
  if (lsn > 0) {
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          asio::post(*shard.io, [&shard, lsn, h] {
            auto complete = [h] {
              auto home = asio::get_associated_executor(*h);
              asio::post(home, [h] { (*h)(); });
            };
            if (shard.db->durable_lsn() >= lsn) return complete();
            // Waiters are kept in lsn order: this one goes where it belongs.
            auto at = std::find_if(shard.waiters.begin(), shard.waiters.end(), [lsn](const auto& w) { return w.lsn > lsn; });
            shard.waiters.insert(at, Shard::Waiter{lsn, std::chrono::steady_clock::now(), complete});
          });
        },
        asio::use_awaitable);
  }
  report.applied = true;
  core::logger("ingest")->info("reprocessed device {} over [{}, {}): {} messages, {} samples out, {} in, {} blocks rewritten",
                               device, core::format_rfc3339(from), core::format_rfc3339(to), report.messages,
                               report.samples_before, report.samples_after, report.blocks_rewritten);
  co_return finish_report();
}

}  // namespace fieldline::ingest
