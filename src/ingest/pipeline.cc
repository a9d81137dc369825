#include "fieldline/ingest/pipeline.h"

#include "pipeline_internal.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/associated_executor.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <optional>
#include <unordered_map>

#include "fieldline/core/errc.h"
#include "fieldline/core/ids.h"
#include "fieldline/core/log.h"
#include "fieldline/tsdb/errc.h"

namespace fieldline::ingest {

namespace asio = boost::asio;

namespace {
constexpr uint64_t kRawSyncStep = 4u << 20;
constexpr std::pair<core::EpochUnit, const char*> kPrecisions[] = {
    {core::EpochUnit::seconds, "s"}, {core::EpochUnit::milliseconds, "ms"},
    {core::EpochUnit::microseconds, "us"}, {core::EpochUnit::nanoseconds, "ns"}};
}  // namespace

std::string format_label(const Message& m) {
  if (m.format != Format::line_protocol) return to_string(m.format);
  for (auto [unit, name] : kPrecisions) {
    if (unit == m.precision) return std::string("line_protocol:") + name;
  }
  return "line_protocol:ns";
}

Transport parse_transport(std::string_view name) {
  for (auto t : {Transport::mqtt, Transport::http, Transport::lineproto}) {
    if (name == to_string(t)) return t;
  }
  return Transport::import;
}

Message decode_message(std::string_view label, std::string raw, int64_t receipt_ns, const DecodeLimits& limits,
                       std::string_view device) {
  Message m;
  m.receipt_ns = receipt_ns;
  m.raw = std::move(raw);
  std::string_view name = label.substr(0, label.find(':'));
  auto format = parse_format(name);
  if (!format) {
    m.decoded = format.error();
    return m;
  }
  m.format = *format;
  if (m.format != Format::line_protocol) {
    m.decode = true;
    return m;
  }
  if (name.size() < label.size()) {
    std::string_view precision = label.substr(name.size() + 1);
    for (auto [unit, n] : kPrecisions) {
      if (precision == n) m.precision = unit;
    }
  }
  auto points = decode_line_protocol(m.raw, m.precision, receipt_ns, limits);
  if (!points) {
    m.decoded = points.error();
    return m;
  }
  for (auto& p : *points) {
    bool other = false;
    std::erase_if(p.tags, [&](const auto& t) {
      if (t.first != "device") return false;
      other = t.second != device;
      return true;
    });
    if (!other) m.points.push_back(std::move(p));
  }
  return m;
}

void decode_in_place(Message& m, const DecoderSpec* profile, const DecodeLimits& limits) {
  Format f = m.format;
  if (f == Format::automatic) {
    f = looks_like_cbor(m.raw)                                          ? Format::senml_cbor
        : profile && profile->kind == DecoderSpec::Kind::senml   ? Format::senml_json
        : profile && profile->kind == DecoderSpec::Kind::mapping ? Format::mapping
                                                                 : Format::json;
  }
  Result<std::vector<Point>> points = make_error(Errc::bad_payload, "no decoder");
  switch (f) {
    case Format::json:
    case Format::automatic: points = decode_json_telemetry(m.raw, m.receipt_ns, limits); break;
    case Format::line_protocol: points = decode_line_protocol(m.raw, m.precision, m.receipt_ns, limits); break;
    case Format::senml_json: points = decode_senml_json(m.raw, m.receipt_ns, limits); break;
    case Format::senml_cbor: points = decode_senml_cbor(m.raw, m.receipt_ns, limits); break;
    case Format::mapping:
      if (!profile || profile->kind != DecoderSpec::Kind::mapping) {
        points = make_error(Errc::bad_payload, "the device's profile has no mapping decoder in its contract");
      } else {
        points = decode_mapped(*profile, m.raw, m.receipt_ns, limits);
      }
      break;
  }
  if (points) m.points = std::move(*points);
  else m.decoded = points.error();
  m.decode = false;
}

const char* to_string(Transport t) {
  switch (t) {
    case Transport::mqtt: return "mqtt";
    case Transport::http: return "http";
    case Transport::lineproto: return "lineproto";
    case Transport::import: return "import";
  }
  return "?";
}


Pipeline::Pipeline(core::ShardRuntime& runtime, core::Env& env, const core::Config& config, ops::Metrics& metrics)
    : runtime_(runtime), env_(env), config_(config), raw_log_on_(config.ingest.raw_log == "on"), metrics_(metrics),
      background_(std::make_unique<asio::thread_pool>(1)), compressor_(std::make_unique<asio::thread_pool>(1)) {
  // Compression can wait; the shards cannot: it runs on CPU time they leave idle.
  asio::post(*compressor_, [] {
    if (!core::make_this_thread_idle_priority()) core::logger("ingest")->warn("raw log compression runs at normal priority");
  });
}

Pipeline::~Pipeline() { (void)close(); }

Result<std::unique_ptr<Pipeline>> Pipeline::open(core::ShardRuntime& runtime, core::Env& env, const core::Config& config,
                                                 ops::Metrics& metrics) {
  std::unique_ptr<Pipeline> p(new Pipeline(runtime, env, config, metrics));
  auto log = core::logger("ingest");
  if (config.ingest.raw_log != "on" && config.ingest.raw_log != "off") {
    return core::make_error(core::Errc::invalid_argument, "ingest.raw_log must be on or off, not '" + config.ingest.raw_log + "'");
  }
  auto retention_rules = tsdb::parse_retention_rules(config.tsdb.retention_rules, config.tsdb.retention_ns,
                                                     config.tsdb.rollup_retention_ns);
  if (!retention_rules) return retention_rules.error();
  for (uint32_t i = 0; i < runtime.size(); ++i) {
    auto shard = std::make_unique<Shard>();
    shard->index = i;
    for (size_t t = 0; t < kTransports; ++t) {
      const char* name = to_string(static_cast<Transport>(t));
      shard->counters[t] = {name, &metrics.counter("fieldline_messages_accepted_total", "Messages stored, by transport", {{"transport", name}}),
                            &metrics.histogram("fieldline_ingest_durable_seconds", "From receipt to durable in the WAL",
                                               {{"transport", name}}, ops::Metrics::latency_bounds())};
    }
    shard->io = &runtime.context(i);
    for (auto q : {Quality::out_of_range, Quality::rate_exceeded}) {
      shard->flagged[static_cast<size_t>(q)] = &metrics.counter(
          "fieldline_samples_flagged_total", "Samples stored with a quality warning, by quality", {{"quality", to_string(q)}});
    }
    tsdb::DbOptions opts;
    opts.wal.fsync = config.tsdb.fsync;
    opts.wal.fsync_interval_ns = config.tsdb.fsync_interval_ns;
    opts.wal.segment_bytes = config.tsdb.wal_segment_bytes;
    opts.block_range_ns = config.tsdb.block_range_ns;
    opts.out_of_order_window_ns = config.tsdb.out_of_order_window_ns;
    opts.retention_ns = config.tsdb.retention_ns;
    opts.rollup_retention_ns = config.tsdb.rollup_retention_ns;
    opts.retention_rules = *retention_rules;
    opts.max_disk_bytes = config.tsdb.max_disk_bytes / runtime.size();
    opts.min_free_bytes = config.tsdb.min_free_bytes;
    Shard* raw = shard.get();
    std::string dir = core::join_path(core::join_path(config.data_dir, "tsdb"), "shard-" + std::to_string(i));
    auto db = tsdb::Db::open(env, dir, opts, [raw](uint64_t lsn) {
      asio::post(*raw->io, [raw, lsn] {
        while (!raw->waiters.empty() && raw->waiters.front().lsn <= lsn) {
          auto w = std::move(raw->waiters.front());
          raw->waiters.pop_front();
          w.complete();
        }
        raw->queue_depth->set(static_cast<int64_t>(raw->waiters.size()));
      });
    });
    if (!db) return db.error();
    const auto& rep = (*db)->replay_report();
    log->info("shard {} opened {}: replayed {} samples from {} WAL segments in {} ms{}", i, dir, rep.samples,
              rep.wal.segments, rep.duration_ns / 1'000'000,
              rep.wal.problems.empty() ? "" : "; dropped " + std::to_string(rep.wal.dropped_bytes) + " damaged bytes");
    for (const auto& problem : rep.wal.problems) log->warn("WAL damage: {}", problem);
    shard->db = std::move(*db);
    RawLogOptions raw_options;
    raw_options.retention_ns = config.ingest.raw_retention_ns;
    raw_options.segment_bytes = config.ingest.raw_segment_bytes;
    auto raw_log = RawLog::open(env, core::join_path(core::join_path(config.data_dir, "raw"), "shard-" + std::to_string(i)), i, raw_options);
    if (!raw_log) return raw_log.error();
    shard->raw = std::move(*raw_log);
    ops::Labels l{{"shard", std::to_string(i)}};
    shard->queue_depth = &metrics.gauge("fieldline_shard_queue_depth", "Messages waiting for durability per shard", l);
    shard->wal_bytes = &metrics.gauge("fieldline_wal_bytes_written", "Bytes written to the WAL since start", l);
    shard->wal_syncs = &metrics.gauge("fieldline_wal_fsyncs", "WAL fsync calls since start", l);
    shard->derived_refused = &metrics.counter("fieldline_derived_samples_refused_total",
                                              "Derived samples (predictions) storage refused");
    shard->samples_stored = &metrics.counter("fieldline_samples_stored_total", "Samples appended to storage");
    shard->wal_sync_us = &metrics.counter("fieldline_wal_fsync_microseconds_total", "Time spent in WAL fsync", l);
    shard->head_series = &metrics.gauge("fieldline_tsdb_head_series", "Series in the in-memory head", l);
    shard->head_samples = &metrics.gauge("fieldline_tsdb_head_samples", "Samples in the in-memory head", l);
    shard->blocks = &metrics.gauge("fieldline_tsdb_blocks", "Persisted blocks", l);
    shard->block_bytes = &metrics.gauge("fieldline_tsdb_block_bytes", "Bytes in persisted blocks", l);
    shard->disk_full = &metrics.gauge("fieldline_tsdb_disk_full", "1 while writes are refused for lack of disk", l);
    p->shards_.push_back(std::move(shard));
  }
  auto quarantine = Quarantine::open(core::join_path(config.data_dir, "quarantine.db"), config.ingest.quarantine_retention_ns);
  if (!quarantine) return quarantine.error();
  p->quarantine_ = std::move(*quarantine);
  return p;
}

std::shared_ptr<const DeviceContext> make_device_context(std::string id, std::string profile,
                                                         std::vector<std::pair<std::string, std::string>> tags) {
  std::erase_if(tags, [](const auto& t) { return t.first == "profile"; });
  if (!profile.empty()) {
    auto at = std::lower_bound(tags.begin(), tags.end(), std::string_view("profile"),
                               [](const auto& t, std::string_view k) { return t.first < k; });
    tags.insert(at, {"profile", profile});
  }
  return std::make_shared<const DeviceContext>(DeviceContext{std::move(id), std::move(tags), std::move(profile), {}, {}});
}

Result<std::vector<std::pair<std::string, std::string>>> reported_tags(std::string_view firmware, std::string_view gateway) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto [key, value] : {std::pair<const char*, std::string_view>{"firmware", firmware}, {"gateway", gateway}}) {
    if (value.empty()) continue;
    bool ok = value.size() <= 64 && std::all_of(value.begin(), value.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '-';
    });
    if (!ok) {
      return make_error(Errc::bad_metric, std::string(key) + " '" + std::string(value.substr(0, 64)) +
                                              "' is not 1-64 characters from [A-Za-z0-9._:+/-]");
    }
    out.emplace_back(key, std::string(value));
  }
  return out;
}

std::shared_ptr<const DeviceContext> make_device_context(std::string id, std::string profile,
                                                         std::vector<std::pair<std::string, std::string>> tags,
                                                         const std::vector<std::pair<std::string, std::string>>& reported) {
  for (const auto& [k, v] : reported) {
    std::erase_if(tags, [&](const auto& t) { return t.first == k; });
    tags.emplace_back(k, v);
  }
  std::sort(tags.begin(), tags.end());
  auto context = make_device_context(std::move(id), std::move(profile), std::move(tags));
  if (reported.empty()) return context;
  auto with_reported = std::make_shared<DeviceContext>(*context);
  with_reported->reported = reported;
  return with_reported;
}

namespace {

// The series a point goes to: the device's tags and the point's own (line protocol), plus
// what ingestion knows about it: protocol, contract version and, for a flagged value, its
// quality. A point without tags of its own (every MQTT and JSON one) resolves through the
// context's memory after the first time; otherwise the tags are merged in `scratch`.
struct SeriesExtras {
  Transport transport;
  int64_t contract_version;
  int64_t calibration;
};

Result<tsdb::SeriesRef> resolve_series(tsdb::Db& db, const DeviceContext& device, Point& point, const SeriesExtras& extras,
                                       Quality quality, tsdb::Tags& scratch) {
  const Transport transport = extras.transport;
  const int64_t contract_version = extras.contract_version;
  const auto type = tsdb::type_of(point.value);
  const bool untagged = point.tags.empty();
  if (untagged) {
    for (const auto& s : device.series_refs) {
      if (s.metric == point.metric && s.transport == transport && s.quality == quality &&
          s.contract_version == contract_version && s.calibration == extras.calibration) {
        return s.ref;
      }
    }
  }
  // Ingestion's own tags win over a device's or a point's of the same name.
  std::array<std::pair<std::string, std::string>, 4> own;
  size_t n_own = 0;
  if (extras.calibration > 0) own[n_own++] = {"calibration", std::to_string(extras.calibration)};
  if (contract_version > 0) own[n_own++] = {"contract_version", std::to_string(contract_version)};
  own[n_own++] = {"protocol", to_string(transport)};
  if (quality != Quality::good) own[n_own++] = {"quality", to_string(quality)};
  auto is_own = [&](const std::string& key) {
    for (size_t i = 0; i < n_own; ++i) {
      if (own[i].first == key) return true;
    }
    return false;
  };
  scratch.clear();
  for (const auto& t : device.tags) {
    if (!is_own(t.first)) scratch.push_back(t);
  }
  for (size_t i = 0; i < n_own; ++i) scratch.push_back(own[i]);
  for (auto& t : point.tags) {
    bool shadowed = is_own(t.first);
    for (const auto& d : device.tags) shadowed = shadowed || d.first == t.first;
    if (!shadowed) scratch.push_back(std::move(t));
  }
  std::sort(scratch.begin(), scratch.end());
  scratch.erase(std::unique(scratch.begin(), scratch.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
                scratch.end());
  FL_TRY(ref, db.series(tsdb::SeriesLabels(device.id, point.metric, scratch), type));
  // Bounded: a device with hundreds of metrics keeps using the engine's index.
  if (untagged && device.series_refs.size() < 64) {
    device.series_refs.push_back({point.metric, transport, quality, contract_version, extras.calibration, ref});
  }
  return ref;
}

}  // namespace

uint32_t Pipeline::shard_of(const std::string& device) const {
  return core::shard_of(device, static_cast<uint32_t>(shards_.size()));
}

boost::asio::any_io_executor Pipeline::shard_executor(uint32_t shard) const { return runtime_.context(shard).get_executor(); }

bool Pipeline::ready() const {
  for (const auto& s : shards_) {
    if (s->closed.load()) return false;
  }
  return !shards_.empty();
}

void Pipeline::submit(std::shared_ptr<const DeviceContext> device, std::vector<Message> messages, Transport transport,
                      asio::any_io_executor reply, Done done, SubmitMode mode) {
  Shard& shard = *shards_[shard_of(device->id)];
  const IngestCounters* counters = &shard.counters[static_cast<size_t>(transport)];
  auto work = [this, &shard, device = std::move(device), messages = std::move(messages), counters, transport, mode,
               reply = std::move(reply), done = std::move(done)]() mutable {
    auto join = std::make_shared<Join>();
    join->outcomes.resize(messages.size());
    // Moved, not copied: a copy of `done` is one more allocation per submission.
    join->finish = [reply = std::move(reply), done = std::move(done)](std::vector<MessageOutcome> out) mutable {
      asio::post(reply, [done = std::move(done), out = std::move(out)]() mutable { done(std::move(out)); });
    };
    process(shard, *device, messages, transport, mode, counters, std::move(join), nullptr);
  };
  // A connection on the shard that owns its device (MQTT sessions move there) submits from the
  // shard's own thread: processed at once, not posted to itself (an allocation and a trip
  // through the scheduler per batch). The outcome is still posted, never run inside submit().
  if (shard.io->get_executor().running_in_this_thread()) return work();
  asio::post(*shard.io, std::move(work));
}

void Pipeline::process(Shard& shard, const DeviceContext& device_context, std::vector<Message>& messages, Transport transport,
                       SubmitMode mode, const IngestCounters* counters, std::shared_ptr<Join> join, ReprocessSink* sink) {
  const DeviceContext* device = &device_context;
  auto started = std::chrono::steady_clock::now();
  auto& outcomes = join->outcomes;
  if (shard.closed.load()) {
    for (auto& o : outcomes) o.status = make_error(Errc::shutting_down, "server is shutting down");
    return join->finish(std::move(outcomes));
  }
  // One contract version for the whole submission, looked up once.
  if (shard.contracts_generation != contracts_.generation()) shard.contracts = contracts_.snapshot(shard.contracts_generation);
  std::shared_ptr<const ActiveContract> contract;
  if (auto it = shard.contracts.find(device->profile); it != shard.contracts.end()) contract = it->second;
  if (shard.calibrations_generation != calibrations_.generation()) {
    shard.calibrations = calibrations_.snapshot(shard.calibrations_generation);
  }
  std::shared_ptr<const CalibrationSet> calibrations;
  if (!shard.calibrations.empty()) {
    if (auto it = shard.calibrations.find(device->id); it != shard.calibrations.end()) calibrations = it->second;
  }
  const int64_t version = contract ? contract->version : 0;
  const int64_t now = env_.now_ns();
  // Replays of quarantined messages were counted when they first came: they update a scratch
  // record, not the device's figures.
  std::optional<DeviceQuality> replay_quality;
  auto& quality = mode == SubmitMode::live ? shard.quality[device->id] : replay_quality.emplace();
  if (quality.device.empty() || quality.contract_version != version || quality.profile != device->profile) {
    quality.device = device->id;
    quality.profile = device->profile;
    quality.contract_version = version;
    quality.expected_interval_s = 0;
    if (contract) {
      for (const auto& m : contract->contract.metrics) {
        if (m.expected_interval_s && (quality.expected_interval_s == 0 || *m.expected_interval_s < quality.expected_interval_s)) {
          quality.expected_interval_s = *m.expected_interval_s;
        }
      }
    }
  }
  auto pc = shard.profile_counters.find(device->profile);
  if (pc == shard.profile_counters.end()) {
    auto counter = [&](const char* name, const char* help, ops::Labels labels) { return &metrics_.counter(name, help, labels); };
    const std::string& p = device->profile;
    const char* messages_help = "Messages by device profile and outcome (conforming, warnings, rejected)";
    pc = shard.profile_counters.emplace(p, Shard::ProfileCounters{
        counter("fieldline_quality_messages_total", messages_help, {{"profile", p}, {"outcome", "conforming"}}),
        counter("fieldline_quality_messages_total", messages_help, {{"profile", p}, {"outcome", "warnings"}}),
        counter("fieldline_quality_messages_total", messages_help, {{"profile", p}, {"outcome", "rejected"}}),
        counter("fieldline_quality_late_samples_total", "Samples received later than ingest.late_after, by profile", {{"profile", p}}),
        counter("fieldline_quality_missing_samples_total", "Samples the contract's expected_interval_s called for and that never came, by profile",
                {{"profile", p}}),
        {}}).first;
  }
  Shard::ProfileCounts replay_counts;
  auto& profile_counts = mode == SubmitMode::live ? pc->second.pending : replay_counts;
  const int64_t late_after = config_.ingest.late_after_ns;
  DecodeLimits limits;
  limits.max_values = config_.ingest.max_values_per_message;
  // Samples go straight into the batch of this round of the shard's event loop.
  auto& batch = sink ? sink->samples : shard.scratch;
  auto& rates = sink ? sink->rates : shard.rates;
  const size_t round_begin = batch.size();
  std::vector<std::pair<size_t, size_t>> spans(messages.size());  // [begin, end) in the round's batch
  std::vector<QuarantineRecord> rejects;
  std::vector<size_t> rejected_messages;
  tsdb::Tags tags;  // a tagged point's merged tags
  for (size_t m = 0; m < messages.size(); ++m) {
    auto& msg = messages[m];
    auto& outcome = outcomes[m];
    outcome.contract_version = version;
    size_t begin = batch.size();
    uint64_t late = 0, missing = 0, out_of_range = 0, rate_exceeded = 0;
    if (msg.decode) decode_in_place(msg, contract ? &contract->contract.decoder : nullptr, limits);
    Status st = msg.decoded;
    auto& checked = shard.validation;
    checked.reset();
    if (st && contract) st = validate_message(*contract, msg.points, shard.units, calibrations.get(), checked);
    else if (st && calibrations) calibrate_message(*calibrations, msg.points, checked);
    for (size_t i = 0; st && i < msg.points.size(); ++i) {
      auto& point = msg.points[i];
      if (point.ts > now + config_.ingest.max_future_skew_ns) {
        st = make_error(Errc::future_timestamp, "'" + point.metric + "' at " + core::format_rfc3339(point.ts) +
                                                    " is more than " + core::format_duration(config_.ingest.max_future_skew_ns) +
                                                    " ahead of the server clock");
        break;
      }
      Quality quality = checked.quality_of(i);
      const SeriesExtras extras{transport, version, checked.calibration_of(i)};
      auto ref = resolve_series(*shard.db, *device, point, extras, Quality::good, tags);
      if (!ref) {
        st = ref.error();
        break;
      }
      if (shard.db->series_type(*ref) != tsdb::type_of(point.value)) {
        st = make_error(Errc::type_conflict, "'" + point.metric + "' holds " + tsdb::to_string(shard.db->series_type(*ref)) +
                                                 " values, got " + tsdb::to_string(tsdb::type_of(point.value)));
        break;
      }
      if (!checked.specs.empty() && quality == Quality::good) {
        const MetricSpec* spec = checked.specs[i];
        if (spec->max_rate_hz) {
          if (rates.size() <= *ref) rates.resize(*ref + 1);
          if (!admit_rate(rates[*ref], point.ts, *spec->max_rate_hz)) {
            quality = Quality::rate_exceeded;
            checked.flag(i, msg.points.size(), quality);
            if (checked.flagged == 1) {
              checked.first_warning = "'" + point.metric + "' arrives faster than its contract's " +
                                      std::to_string(*spec->max_rate_hz) + " Hz";
            }
          }
        }
      }
      if (now - point.ts > late_after) ++late;
      if (!sink && !checked.specs.empty() && checked.specs[i]->expected_interval_s) {
        if (shard.last_ts.size() <= *ref) shard.last_ts.resize(*ref + 1, INT64_MIN);
        int64_t& last = shard.last_ts[*ref];
        const double interval = *checked.specs[i]->expected_interval_s * 1e9;
        if (last != INT64_MIN && point.ts > last) {
          const double gap = static_cast<double>(point.ts - last);
          if (gap > 1.5 * interval) missing += static_cast<uint64_t>(std::llround(gap / interval)) - 1;
        }
        if (point.ts > last) last = point.ts;
      }
      if (quality == Quality::out_of_range) ++out_of_range;
      if (quality == Quality::rate_exceeded) ++rate_exceeded;
      if (quality != Quality::good) {
        ref = resolve_series(*shard.db, *device, point, extras, quality, tags);
        if (!ref) {
          st = ref.error();
          break;
        }
      }
      batch.push_back({*ref, point.ts, std::move(point.value)});
    }
    ++quality.messages;
    quality.last_receipt_ns = msg.receipt_ns ? msg.receipt_ns : now;
    if (!st) {
      batch.resize(begin);
      outcome.status = st;
      if (!sink) rejected_counter(counters->transport, st.error()).inc();
      ++quality.rejected;
      ++quality.rejected_by_reason[reason_of(st.error())];
      ++profile_counts.rejected;
      if (mode == SubmitMode::live && !quarantine_admits(shard, device->id, now)) {
        // Over the device's quota: refused, counted, and not kept.
        metrics_.counter("fieldline_messages_quarantine_dropped_total",
                         "Refused messages not kept because their device's quarantine quota was spent").inc();
        outcome.status = make_error(Errc::quarantine_quota, "device '" + device->id + "' has put " +
                                                                std::to_string(config_.ingest.quarantine_quota) +
                                                                " messages in quarantine this hour; this one is refused and not kept (" +
                                                                st.error().message() + ")");
      } else if (mode == SubmitMode::live || sink) {
        QuarantineRecord r;
        r.received_ns = msg.receipt_ns ? msg.receipt_ns : now;
        r.device = device->id;
        r.profile = device->profile;
        r.transport = to_string(transport);
        r.format = format_label(msg);
        r.reason = reason_of(st.error());
        r.detail = st.error().message();
        r.contract_version = version;
        r.payload = std::move(msg.raw);
        if (sink) {
          // Kept for the job, which quarantines them only if it applies.
          sink->rejected.push_back(std::move(r));
        } else {
          rejects.push_back(std::move(r));
          rejected_messages.push_back(m);
        }
      }
    } else {
      if (batch.size() > begin && raw_log_on_ && !sink) {
        // The message's lineage: what came, how it was read, what it became (views into
        // the message and reused buffers: no allocation per message).
        auto& cals = shard.raw_calibrations;
        cals.clear();
        for (auto c : checked.calibration) {
          if (c != 0 && std::find(cals.begin(), cals.end(), c) == cals.end()) cals.push_back(c);
        }
        auto& names = shard.raw_metrics;
        names.clear();
        RawEntryView entry;
        entry.min_ts = INT64_MAX;
        entry.max_ts = INT64_MIN;
        for (const auto& p : msg.points) {
          names.emplace_back(p.metric);
          entry.min_ts = std::min(entry.min_ts, p.ts);
          entry.max_ts = std::max(entry.max_ts, p.ts);
        }
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        const std::string format = format_label(msg);
        entry.received_ns = msg.receipt_ns ? msg.receipt_ns : now;
        entry.device = device->id;
        entry.transport = to_string(transport);
        entry.format = format;
        entry.contract_version = version;
        entry.calibrations = cals;
        entry.metrics = names;
        entry.samples = static_cast<uint32_t>(batch.size() - begin);
        entry.flagged = checked.flagged;
        entry.payload = msg.raw;
        entry.reported = device->reported;
        outcome.message_id = shard.raw->add(entry);
      }
      outcome.flagged = checked.flagged;
      if (checked.flagged) outcome.first_warning = std::move(checked.first_warning);
      ++(checked.flagged ? quality.with_warnings : quality.conforming);
      ++(checked.flagged ? profile_counts.warnings : profile_counts.conforming);
      quality.samples += batch.size() - begin;
      quality.out_of_range += out_of_range;
      quality.rate_exceeded += rate_exceeded;
      if (out_of_range && !sink) shard.flagged[static_cast<size_t>(Quality::out_of_range)]->inc(out_of_range);
      if (rate_exceeded && !sink) shard.flagged[static_cast<size_t>(Quality::rate_exceeded)]->inc(rate_exceeded);
      quality.late += late;
      quality.missing += missing;
      profile_counts.late += late;
      profile_counts.missing += missing;
    }
    spans[m] = {begin, batch.size()};
  }
  if (sink) {
    // A reprocessing job's messages: staged for its replacement, not stored.
    for (size_t m = 0; m < messages.size(); ++m) outcomes[m].stored = static_cast<uint32_t>(spans[m].second - spans[m].first);
    return join->finish(std::move(outcomes));
  }
  const bool appends = batch.size() != round_begin;
  join->parts = (appends ? 1 : 0) + (rejects.empty() ? 0 : 1);
  if (join->parts == 0) return join->finish(std::move(outcomes));
  if (!rejects.empty()) {
    // Reported once the quarantine holds them: the sender may then be told (or, for MQTT
    // 3.1.1, acknowledged) knowing the message is kept.
    quarantine_->add(std::move(rejects), [this, &shard, join, which = std::move(rejected_messages),
                                          transport_name = counters->transport](Result<std::vector<uint64_t>> ids) mutable {
      asio::post(*shard.io, [this, join, which = std::move(which), ids = std::move(ids), transport_name] {
        for (size_t k = 0; k < which.size(); ++k) {
          auto& o = join->outcomes[which[k]];
          if (ids) {
            o.quarantine_id = (*ids)[k];
            metrics_.counter("fieldline_messages_quarantined_total", "Messages kept in quarantine, by transport and reason",
                             {{"transport", transport_name}, {"reason", reason_of(o.status.error())}}).inc();
          } else {
            o.status = make_error(Errc::storage_failed, "could not quarantine the message (" + o.status.error().message() +
                                                            "): " + ids.error().message());
          }
        }
        join->part_done();
      });
    });
  }
  if (!appends) return;
  // Appended together with every other submission that reached the shard in this round of
  // its event loop: one WAL record and one write() for all of them.
  shard.pending.push_back(Shard::Pending{std::move(spans), std::move(join), started, counters,
                                         mode == SubmitMode::live && observer_ != nullptr});
  if (!shard.drain_posted) {
    shard.drain_posted = true;
    asio::post(*shard.io, [this, &shard] { drain(shard); });
  }
}

bool Pipeline::quarantine_admits(Shard& shard, const std::string& device, int64_t now) {
  const double quota = config_.ingest.quarantine_quota;
  if (quota <= 0) return true;
  auto [it, fresh] = shard.quarantine_quota.try_emplace(device);
  auto& b = it->second;
  if (fresh) {
    b.tokens = quota;
    b.refilled_ns = now;
  }
  // A token bucket: `quota` at once, refilled at `quota` an hour.
  b.tokens = std::min(quota, b.tokens + quota * static_cast<double>(now - b.refilled_ns) / 3.6e12);
  b.refilled_ns = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

ops::Counter& Pipeline::rejected_counter(const char* transport, const Error& e) {
  return metrics_.counter("fieldline_messages_rejected_total", "Messages refused, by transport and reason",
                          {{"transport", transport}, {"reason", e.name()}});
}

namespace {

// Shows a drained round's stored live samples to the observer.
void observe(SampleObserver& observer, Pipeline::Shard& shard, const std::vector<Pipeline::Shard::Pending>& round,
             const std::vector<tsdb::SampleRejection>& rejected) {
  const std::span<const tsdb::SampleIn> batch(shard.scratch);
  size_t ri = 0;  // rejected samples (in index order) are not shown
  for (const auto& p : round) {
    for (size_t m = 0; m < p.spans.size(); ++m) {
      auto [begin, end] = p.spans[m];
      while (ri < rejected.size() && rejected[ri].index < begin) ++ri;
      if (!p.observed || !p.join->outcomes[m].status) continue;
      size_t from = begin;
      for (; ri < rejected.size() && rejected[ri].index < end; ++ri) {
        if (rejected[ri].index > from) observer.observe(shard.index, *shard.db, batch.subspan(from, rejected[ri].index - from));
        from = rejected[ri].index + 1;
      }
      if (end > from) observer.observe(shard.index, *shard.db, batch.subspan(from, end - from));
    }
  }
}

}  // namespace

void Pipeline::store_derived(uint32_t index, const DerivedSample& sample) {
  Shard& shard = *shards_[index];
  if (stopping_) return;
  auto ref = shard.db->series(tsdb::SeriesLabels(sample.device, sample.metric, sample.tags), tsdb::ValueType::float64);
  if (!ref) {
    shard.derived_refused->inc();
    return;
  }
  shard.derived.push_back({*ref, sample.ts, sample.value});
  if (!shard.drain_posted) {
    shard.drain_posted = true;
    asio::post(*shard.io, [this, &shard] { drain(shard); });
  }
}

void Pipeline::drain(Shard& shard) {
  shard.drain_posted = false;
  if (shard.pending.empty() && shard.derived.empty()) return;
  std::vector<Shard::Pending> round;
  round.swap(shard.pending);
  auto& batch = shard.scratch;
  // Derived samples go last, after every span the round's submissions index, and are not
  // observed: the observers derived them.
  const size_t submitted = batch.size();
  batch.insert(batch.end(), shard.derived.begin(), shard.derived.end());
  shard.derived.clear();
  // The round's raw messages reach their log before its samples reach the WAL, so no stored
  // sample is without its lineage.
  Status raw_written = shard.raw->flush();
  if (raw_written && config_.tsdb.fsync == core::FsyncPolicy::always) raw_written = shard.raw->sync();
  if (raw_written && config_.tsdb.fsync == core::FsyncPolicy::interval && shard.raw->unsynced_bytes() >= kRawSyncStep) {
    // A busy raw log is synced every few MiB as well as every second: one second's worth
    // (tens of MB at 150k messages/s) written back at once queued ahead of the WAL's fsyncs.
    sync_raw_log(shard);
  }
  auto appended = raw_written ? shard.db->append(batch) : Result<tsdb::AppendResult>(raw_written.error());
  if (appended && observer_) observe(*observer_, shard, round, appended->rejected);
  batch.clear();
  if (!appended) {
    const Error& e = appended.error();
    Error mapped = tsdb::is(e, tsdb::Errc::disk_full) || core::is_no_space(e) ? make_error(Errc::storage_full, e.message())
                                                                               : make_error(Errc::storage_failed, e.message());
    for (auto& p : round) {
      for (size_t m = 0; m < p.join->outcomes.size(); ++m) {
        auto& o = p.join->outcomes[m];
        if (o.status && p.spans[m].first != p.spans[m].second) {
          o.status = mapped;
          rejected_counter(p.counters->transport, mapped).inc();
        }
      }
      p.join->part_done();
    }
    return;
  }
  size_t ri = 0;
  const auto& rejected = appended->rejected;  // in index order
  for (auto& p : round) {
    uint64_t accepted = 0;
    for (size_t m = 0; m < p.join->outcomes.size(); ++m) {
      auto& outcome = p.join->outcomes[m];
      if (!outcome.status) continue;
      auto [begin, end] = p.spans[m];
      outcome.stored = static_cast<uint32_t>(end - begin);
      while (ri < rejected.size() && rejected[ri].index < end) {
        if (outcome.rejected == 0) outcome.first_rejection = rejected[ri].error.message();
        ++outcome.rejected;
        --outcome.stored;
        metrics_.counter("fieldline_samples_rejected_total", "Samples refused by storage, by reason",
                         {{"reason", rejected[ri].error.name()}}).inc();
        ++ri;
      }
      ++accepted;
    }
    p.counters->accepted->inc(accepted);  // once per submission: the counter is shared by the shards
  }
  shard.samples_stored->inc(appended->accepted);
  if (batch.size() > submitted) {
    // Rejections are in index order: the derived samples' come last.
    const auto first_derived = std::find_if(rejected.begin(), rejected.end(), [submitted](const auto& r) { return r.index >= submitted; });
    if (first_derived != rejected.end()) shard.derived_refused->inc(static_cast<uint64_t>(rejected.end() - first_derived));
  }
  if (appended->duplicates) {
    metrics_.counter("fieldline_samples_duplicate_total", "Identical resends dropped").inc(appended->duplicates);
  }
  for (auto& p : round) {
    auto complete = [join = std::move(p.join), started = p.started, latency = p.counters->durable_latency]() {
      latency->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      join->part_done();
    };
    if (appended->lsn == 0 || shard.db->durable_lsn() >= appended->lsn) {
      complete();
    } else {
      shard.waiters.push_back({appended->lsn, p.started, std::move(complete)});
    }
  }
  shard.queue_depth->set(static_cast<int64_t>(shard.waiters.size()));
}


// GCC 12 mishandles non-trivial temporaries inside co_await expressions (double destruction),
// so each shard job is a named local moved into on_shard.
asio::awaitable<Result<std::vector<ReadSample>>> Pipeline::read(std::string device, std::string metric,
                                                                int64_t from, int64_t to) {
  Shard& shard = *shards_[shard_of(device)];
  auto job = [&shard, device, metric, from, to]() -> Result<std::vector<ReadSample>> {
    tsdb::Selector sel;
    auto d = tsdb::Matcher::make("device", tsdb::Matcher::Op::eq, device);
    auto m = tsdb::Matcher::make("metric", tsdb::Matcher::Op::eq, metric);
    sel.matchers = {*d, *m};
    std::vector<ReadSample> out;
    for (const auto& info : shard.db->select(sel)) {
      Quality quality = Quality::good;
      int64_t calibration = 0;
      for (const auto& [k, v] : info.key.tags) {
        if (k == "quality") {
          for (auto q : {Quality::out_of_range, Quality::rate_exceeded}) {
            if (v == to_string(q)) quality = q;
          }
        } else if (k == "calibration") {
          std::from_chars(v.data(), v.data() + v.size(), calibration);
        }
      }
      auto part = shard.db->read(info.key, from, to);
      if (!part) return part.error();
      out.reserve(out.size() + part->size());
      for (auto& s : *part) {
        // Built in place, not from a braced temporary: GCC 12 warns (falsely) that the moved
        // variant may be uninitialised there.
        auto& r = out.emplace_back();
        r.ts = s.ts;
        r.value = std::move(s.value);
        r.quality = quality;
        r.calibration = calibration;
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ts < b.ts; });
    return out;
  };
  auto result = co_await on_shard(*shard.io, std::move(job));
  co_return result;
}

asio::awaitable<Result<std::vector<tsdb::Sample>>> Pipeline::read_series(tsdb::SeriesKey key, int64_t from, int64_t to) {
  Shard& shard = *shards_[shard_of(key.device)];
  auto job = [&shard, key, from, to]() { return shard.db->read(key, from, to); };
  auto result = co_await on_shard(*shard.io, std::move(job));
  co_return result;
}

asio::awaitable<Result<tsdb::AggregateResult>> Pipeline::aggregate(tsdb::AggregateQuery query) {
  tsdb::AggregateResult total;
  const std::string* device = query.selector.pinned_device();
  for (auto& sp : shards_) {
    Shard& shard = *sp;
    if (device && shard.index != shard_of(*device)) continue;
    auto job = [&shard, &query]() { return shard.db->aggregate(query); };
    auto part = co_await on_shard(*shard.io, std::move(job));
    if (!part) co_return part.error();
    total.merge(std::move(*part));
  }
  co_return total;
}

asio::awaitable<Result<std::vector<tsdb::SeriesInfo>>> Pipeline::select(tsdb::Selector selector) {
  std::vector<tsdb::SeriesInfo> out;
  for (auto& sp : shards_) {
    Shard& shard = *sp;
    auto job = [&shard, &selector]() { return shard.db->select(selector); };
    auto part = co_await on_shard(*shard.io, std::move(job));
    out.insert(out.end(), part.begin(), part.end());
  }
  co_return out;
}

asio::awaitable<std::vector<std::pair<std::string, tsdb::ValueType>>> Pipeline::metrics_of(std::string device) {
  Shard& shard = *shards_[shard_of(device)];
  auto job = [&shard, device]() { return shard.db->metrics_of(device); };
  auto result = co_await on_shard(*shard.io, std::move(job));
  co_return result;
}

asio::awaitable<Result<std::vector<RawEntry>>> Pipeline::message(uint64_t id) {
  const uint64_t shard = id >> 48;
  if (shard >= shards_.size()) co_return std::vector<RawEntry>{};
  // Reading (and decompressing) segments is file work: off the shards.
  auto job = [this, id, dir = shards_[shard]->raw->dir()]() {
    return RawLog::scan(env_, dir, [id](const RawEntry& e) { return e.id == id; }, 1, id);
  };
  auto result = co_await on_executor(background_->get_executor(), std::move(job));
  co_return result;
}

asio::awaitable<Result<std::vector<RawEntry>>> Pipeline::messages_at(std::string device, std::string metric,
                                                                     int64_t ts, size_t limit) {
  auto job = [this, device, metric, ts, limit, dir = shards_[shard_of(device)]->raw->dir()]() {
    return RawLog::scan(env_, dir, [&](const RawEntry& e) {
      return e.device == device && e.min_ts <= ts && ts <= e.max_ts && std::binary_search(e.metrics.begin(), e.metrics.end(), metric);
    }, limit);
  };
  auto result = co_await on_executor(background_->get_executor(), std::move(job));
  co_return result;
}

asio::awaitable<std::vector<DeviceQuality>> Pipeline::quality(std::string device) {
  std::vector<DeviceQuality> out;
  for (auto& sp : shards_) {
    Shard& shard = *sp;
    if (!device.empty() && shard.index != shard_of(device)) continue;
    auto job = [&shard, &device]() {
      std::vector<DeviceQuality> part;
      if (!device.empty()) {
        if (auto it = shard.quality.find(device); it != shard.quality.end()) part.push_back(it->second);
      } else {
        for (const auto& [id, q] : shard.quality) part.push_back(q);
      }
      return part;
    };
    auto part = co_await on_shard(*shard.io, std::move(job));
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.device < b.device; });
  co_return out;
}

void Pipeline::sync_raw_log(Shard& shard) {
  shard.raw->sync_requested();
  if (auto file = shard.raw->active_file()) {
    asio::post(*background_, [file] {
      if (auto st = file->sync(); !st) core::logger("ingest")->error("raw log sync: {}", st.error().message());
    });
  }
}

void Pipeline::compress_later(const std::string& sealed) {
  asio::post(*compressor_, [this, sealed] {
    if (stopping_.load()) return;  // left sealed: compressed after the next start
    if (auto st = RawLog::compress(env_, sealed); !st) core::logger("ingest")->error("raw log compression: {}", st.error().message());
  });
}

void Pipeline::start() {
  for (auto& sp : shards_) {
    for (auto& sealed : sp->raw->pending_compression()) compress_later(sealed);
  }
  for (auto& sp : shards_) {
    Shard* shard = sp.get();
    shard->maintenance = std::make_unique<asio::steady_timer>(*shard->io);
    auto tick = std::make_shared<std::function<void()>>();
    // The timer owns the tick via its handler; the shared_ptr breaks the self-reference.
    *tick = [this, shard, weak = std::weak_ptr<std::function<void()>>(tick)]() {
      shard->maintenance->expires_after(std::chrono::seconds(1));
      shard->maintenance->async_wait([this, shard, weak](boost::system::error_code ec) {
        if (ec || shard->closed.load()) return;
        auto now = env_.now_ns();
        if (!shard->job_in_flight) {
          // Block cuts and compactions are encoded and written in the background and
          // published back on the shard; one at a time per shard.
          auto launch = [this, shard](auto job, auto run_fn, auto finish_fn, const char* what) {
            shard->job_in_flight = true;
            auto held = std::make_shared<decltype(job)>(std::move(job));
            asio::post(*background_, [this, shard, held, run_fn, finish_fn, what] {
              auto run = run_fn(**held, &stopping_);
              asio::post(*shard->io, [shard, held, run, finish_fn, what] {
                shard->job_in_flight = false;
                auto st = finish_fn(*shard->db, std::move(*held), run);
                if (!st) core::logger("tsdb")->error("{} of shard {} failed: {}", what, shard->index, st.error().message());
              });
            });
          };
          if (auto cut = shard->db->prepare_cut()) {
            launch(std::move(cut), &tsdb::Db::run_cut,
                   [](tsdb::Db& db, tsdb::CutJobPtr j, const Status& r) { return db.finish_cut(std::move(j), r); }, "block cut");
          } else if (auto compaction = shard->db->prepare_compaction()) {
            launch(std::move(compaction), &tsdb::Db::run_compaction,
                   [](tsdb::Db& db, tsdb::CompactJobPtr j, const Status& r) { return db.finish_compaction(std::move(j), r); },
                   "compaction");
          }
        }
        // Raw log: synced once a second (the WAL's interval policy is finer; kill -9 loses
        // nothing either way), sealed segments synced and compressed, all off the shard (an
        // fdatasync of a second's messages can take longer than a round should); retention hourly.
        if (config_.tsdb.fsync != core::FsyncPolicy::never) sync_raw_log(*shard);
        if (auto sealed = shard->raw->rotate_if_due(now)) {
          asio::post(*background_, [this, sealed = std::move(*sealed)]() mutable {
            const std::string path = sealed.path;
            if (auto st = RawLog::seal(env_, std::move(sealed)); !st) {
              core::logger("ingest")->error("raw log seal: {}", st.error().message());
              return;
            }
            compress_later(path);
          });
        }
        if (shard->ticks % 3600 == 1) {
          if (auto st = shard->raw->expire(now); !st) core::logger("ingest")->error("raw log retention: {}", st.error().message());
        }
        // Quarantine retention and its gauges, once a minute, off the shards.
        if (shard->index == 0 && shard->ticks % 60 == 0) {
          asio::post(*background_, [this, now] {
            auto expired = quarantine_->expire(now);
            if (!expired) core::logger("ingest")->error("quarantine retention: {}", expired.error().message());
            if (auto qs = quarantine_->stats()) {
              metrics_.gauge("fieldline_quarantine_messages", "Messages in quarantine").set(static_cast<int64_t>(qs->records));
              metrics_.gauge("fieldline_quarantine_pending", "Quarantined messages not yet replayed").set(static_cast<int64_t>(qs->pending));
              metrics_.gauge("fieldline_quarantine_bytes", "Raw payload bytes in quarantine").set(static_cast<int64_t>(qs->bytes));
            }
          });
        }
        ++shard->ticks;
        if (observer_) observer_->tick(shard->index, *shard->db, now);
        for (auto& [profile, counters] : shard->profile_counters) counters.publish();
        auto st = shard->db->maintain_blocks(now);
        if (!st) core::logger("tsdb")->error("maintenance of shard {} failed: {}", shard->index, st.error().message());
        auto s = shard->db->stats();
        shard->wal_bytes->set(static_cast<int64_t>(s.wal_bytes_written));
        shard->wal_syncs->set(static_cast<int64_t>(s.wal_syncs));
        uint64_t us = s.wal_sync_ns_total / 1000;
        shard->wal_sync_us->inc(us - shard->wal_sync_us_reported);
        shard->wal_sync_us_reported = us;
        shard->head_series->set(static_cast<int64_t>(s.head_series));
        shard->head_samples->set(static_cast<int64_t>(s.head_samples));
        shard->blocks->set(static_cast<int64_t>(s.blocks));
        shard->block_bytes->set(static_cast<int64_t>(s.block_bytes));
        shard->disk_full->set(s.disk_full ? 1 : 0);
        if (auto t = weak.lock()) (*t)();
      });
    };
    asio::post(*shard->io, [tick] { (*tick)(); });
    ticks_.push_back(tick);
  }
}

Status Pipeline::close() {
  Status result;
  // A block cut still running stops early (its data stays in the WAL); its result is posted
  // to the shard before the close below, so every Db is consistent when it closes.
  stopping_.store(true);
  if (background_) background_->join();
  if (compressor_) compressor_->join();
  for (auto& sp : shards_) {
    Shard* shard = sp.get();
    if (shard->closed.exchange(true)) continue;
    std::promise<Status> done;
    auto fut = done.get_future();
    asio::post(*shard->io, [this, shard, &done] {
      if (shard->maintenance) shard->maintenance->cancel();
      if (observer_) observer_->close(shard->index);
      Status raw = shard->raw->flush();
      if (raw) raw = shard->raw->sync();
      auto st = shard->db->close();
      if (st && !raw) st = raw;
      // Everything appended is now durable: release the waiters.
      while (!shard->waiters.empty()) {
        auto w = std::move(shard->waiters.front());
        shard->waiters.pop_front();
        w.complete();
      }
      done.set_value(st);
    });
    if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      result = core::make_error(core::Errc::io_error, "shard " + std::to_string(shard->index) + " did not close in time");
      continue;
    }
    auto st = fut.get();
    if (!st) result = st;
  }
  ticks_.clear();
  return result;
}

}  // namespace fieldline::ingest
