#pragma once
// The ingest pipeline: routes each device's decoded messages to the shard that owns it,
// validates them against the device profile's data contract, tags their series, appends them
// to that shard's time-series Db and reports back once they are durable (the transports
// acknowledge only then). A message that cannot be decoded or breaks its contract goes whole
// to quarantine, and is reported once the quarantine holds it. Queries are routed the same way.
//
// Threading: submit() and the query coroutines may be called from any shard thread. Each
// shard's Db is touched only on that shard's thread. Completions are posted to the caller's
// executor.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fieldline/core/config.h"
#include "fieldline/core/env.h"
#include "fieldline/core/result.h"
#include "fieldline/core/runtime.h"
#include "fieldline/ingest/decode.h"
#include "fieldline/ingest/quarantine.h"
#include "fieldline/ingest/rawlog.h"
#include "fieldline/ingest/validate.h"
#include "fieldline/ops/metrics.h"
#include "fieldline/tsdb/db.h"

namespace fieldline::ingest {

enum class Transport : uint8_t { mqtt, http, lineproto, import };
const char* to_string(Transport t);

// A series a device context resolved: the device's metric, sent over a transport, under a
// contract version, with a quality.
struct ResolvedSeries {
  std::string metric;
  Transport transport;
  Quality quality;
  int64_t contract_version;
  int64_t calibration;
  tsdb::SeriesRef ref;
};

// The authenticated sender, fixed for a connection.
struct DeviceContext {
  std::string id;
  std::vector<std::pair<std::string, std::string>> tags;  // sorted; added to every series
  std::string profile;
  // The series this context's metrics resolved to, so a long-lived context (an MQTT session)
  // resolves each metric once. Touched only on the device's owning shard, where every
  // submission for the device runs, hence mutable without a lock.
  mutable std::vector<ResolvedSeries> series_refs;
  // What the device reported about itself (see reported_tags), kept with its raw messages.
  std::vector<std::pair<std::string, std::string>> reported;
};

// A device's context for ingestion: its tags plus `profile=<profile>`, so every series it
// writes can be selected and grouped by profile (retention rules, fleet queries). A device
// tag named "profile" gives way to the device's actual profile.
std::shared_ptr<const DeviceContext> make_device_context(std::string id, std::string profile,
                                                         std::vector<std::pair<std::string, std::string>> tags);

// What a device reports about itself for the series it writes: its firmware version and the
// gateway it sends through (MQTT 5 CONNECT user properties "firmware" and "gateway", HTTP
// headers X-Fieldline-Firmware and X-Fieldline-Gateway). They become the series tags
// `firmware` and `gateway`, taking the place of registry tags of those names. Fails for a
// value that is not 1-64 characters from [A-Za-z0-9._:+/-].
Result<std::vector<std::pair<std::string, std::string>>> reported_tags(std::string_view firmware, std::string_view gateway);
std::shared_ptr<const DeviceContext> make_device_context(std::string id, std::string profile,
                                                         std::vector<std::pair<std::string, std::string>> tags,
                                                         const std::vector<std::pair<std::string, std::string>>& reported);

struct Message {
  std::vector<Point> points;
  // The message as received, and how to decode it (again): what quarantine keeps.
  std::string raw;
  Format format = Format::automatic;
  core::EpochUnit precision = core::EpochUnit::nanoseconds;  // line protocol timestamps
  int64_t receipt_ns = 0;
  // Set: the pipeline decodes `raw` on the owning shard, with the decoder the profile's
  // contract names (schema on read). Unset: the transport decoded it into `points`.
  bool decode = false;
  Status decoded;  // an error: the decoder refused `raw` (points is empty); it goes to quarantine
};

// Decodes `m.raw` into `m.points` (or `m.decoded`) as `m.format` says, resolving automatic
// with the profile's decoder (`profile`, may be null).
void decode_in_place(Message& m, const DecoderSpec* profile, const DecodeLimits& limits);

// "json", or "line_protocol:<precision>": what QuarantineRecord::format holds.
std::string format_label(const Message& m);
// A quarantined or retained message of `device` to decode again as `label` says. Line
// protocol is decoded here, keeping the device's lines (each line names its device); anything
// else is left to the pipeline, which decodes it with the profile's current decoder.
Message decode_message(std::string_view label, std::string raw, int64_t receipt_ns, const DecodeLimits& limits,
                       std::string_view device);
// "mqtt", "http", "lineproto"; anything else reads as import.
Transport parse_transport(std::string_view name);

struct MessageOutcome {
  Status status;            // error: nothing of the message was stored
  uint32_t stored = 0;      // new samples
  uint32_t duplicates = 0;  // identical resends
  uint32_t rejected = 0;    // samples refused by storage (too old, conflicting duplicate)
  std::string first_rejection;
  uint32_t flagged = 0;     // stored with a quality warning (out of range, above the rate)
  std::string first_warning;
  int64_t contract_version = 0;  // validated against; 0: the profile has no contract
  uint64_t quarantine_id = 0;    // set: status is the reason and the message is in quarantine
  uint64_t message_id = 0;       // stored: its entry in the raw log (its lineage)
};

// A stored value of a device's metric, with the quality it was stored with.
struct ReadSample {
  int64_t ts = 0;
  tsdb::Value value;
  Quality quality = Quality::good;
  int64_t calibration = 0;  // the calibration applied at ingestion (0: none)
};

// Data quality of one device since the server started (the quarantine keeps rejections
// beyond that).
struct DeviceQuality {
  std::string device, profile;
  int64_t contract_version = 0;
  uint64_t messages = 0, conforming = 0, with_warnings = 0, rejected = 0;
  std::map<std::string, uint64_t> rejected_by_reason;
  uint64_t samples = 0, out_of_range = 0, rate_exceeded = 0;
  uint64_t late = 0;     // received more than ingest.late_after after their timestamp
  uint64_t missing = 0;  // expected by the contract's expected_interval_s but not received
  int64_t last_receipt_ns = 0;
  double expected_interval_s = 0;  // the shortest of the contract's (0: none)
};

// A value the platform derived for a device on the device's shard, such as a model's
// prediction: stored as the series {device, metric, tags} beside what the device sent.
struct DerivedSample {
  std::string device, metric;
  tsdb::Tags tags;
  int64_t ts = 0;
  double value = 0;
};

// Live messages that fail go to quarantine; replayed ones (already there) only report;
// reprocessed ones (Pipeline::reprocess) are staged for the job's replacement.
enum class SubmitMode { live, replay, reprocess };

struct IngestCounters;
struct Join;
struct ReprocessSink;

// Reprocessing: a device's samples in [from, to) derived again from its raw messages with
// the current contract, decoder and calibrations, replacing what is stored (see
// Pipeline::reprocess).
struct ReprocessRequest {
  std::shared_ptr<const DeviceContext> device;  // as the registry has it now: its tags and profile
  int64_t from = 0, to = 0;                     // sample times
  bool dry_run = false;                         // report what would change, change nothing
  bool quarantine_rejected = false;  // messages the contract now refuses go to quarantine (else: refused)
  bool force = false;                // delete stored samples that no raw message accounts for (else: refused)
};

struct ReprocessReport {
  bool applied = false;
  std::string refused;  // why it was not applied (empty when applied or a dry run)
  int64_t contract_version = 0;
  uint64_t messages = 0;  // raw messages decoded again, those that arrived while it ran included
  uint64_t late_messages = 0;
  uint64_t rejected = 0, flagged = 0;
  std::map<std::string, uint64_t> rejected_by_reason;
  std::string first_rejection;
  uint64_t samples_before = 0, samples_after = 0;  // in the range
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_metric;  // metric -> before, after
  // Stored samples in the range that no raw message accounts for (imported, stored while
  // ingest.raw_log was off, or older than the raw log's retention).
  uint64_t unexplained = 0;
  std::string first_unexplained;
  uint64_t quarantined = 0;
  uint32_t blocks_rewritten = 0;
  int64_t duration_ns = 0;
};

// What runs in each shard after ingestion (detectors and rules, later online features): it
// sees every sample live ingestion stores, in arrival order, on the owning shard's thread, as
// soon as the samples are appended (before they are durable: a sample lost to a crash before
// its fsync was never acknowledged and comes again). Replayed and reprocessed messages are not
// shown: they are history, not news. It must be quick; it shares the shard's time budget.
class SampleObserver {
 public:
  virtual ~SampleObserver() = default;
  // `db` names the samples' series (Db::series_key).
  virtual void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) = 0;
  // Once a second on each shard's thread (`db` is the shard's, as in observe()).
  virtual void tick(uint32_t shard, const tsdb::Db& db, int64_t now_ns) = 0;
  // On each shard's thread as the pipeline closes, before its Db does.
  virtual void close(uint32_t shard) = 0;
};

// Several observers, shown each round in the order they were added.
class SampleObservers final : public SampleObserver {
 public:
  void add(SampleObserver* observer) { observers_.push_back(observer); }
  bool empty() const { return observers_.empty(); }
  void observe(uint32_t shard, const tsdb::Db& db, std::span<const tsdb::SampleIn> samples) override {
    for (auto* o : observers_) o->observe(shard, db, samples);
  }
  void tick(uint32_t shard, const tsdb::Db& db, int64_t now_ns) override {
    for (auto* o : observers_) o->tick(shard, db, now_ns);
  }
  void close(uint32_t shard) override {
    for (auto* o : observers_) o->close(shard);
  }

 private:
  std::vector<SampleObserver*> observers_;
};

class Pipeline {
 public:
  using Done = std::function<void(std::vector<MessageOutcome>)>;

  // Opens one Db per shard under <data_dir>/tsdb/shard-<i>, replaying their WALs, and the
  // quarantine (<data_dir>/quarantine.db).
  static Result<std::unique_ptr<Pipeline>> open(core::ShardRuntime& runtime, core::Env& env, const core::Config& config,
                                                ops::Metrics& metrics);
  ~Pipeline();

  uint32_t shard_of(const std::string& device) const;
  // The shard's thread, for work on what the shard owns (its observers' state).
  boost::asio::any_io_executor shard_executor(uint32_t shard) const;

  // Stores `messages` of `device`; `done` runs on `reply` with one outcome per message, after
  // everything stored is durable, or at once on failure; it is always posted, never run inside
  // submit(). Called on the owning shard's thread, the messages are processed before submit()
  // returns. Each message is stored whole or not at all (apart from per-sample storage
  // rejections, which are reported).
  void submit(std::shared_ptr<const DeviceContext> device, std::vector<Message> messages, Transport transport,
              boost::asio::any_io_executor reply, Done done, SubmitMode mode = SubmitMode::live);

  // The contract versions ingestion validates against (publish a new one here once the
  // registry holds it).
  ContractBook& contracts() { return contracts_; }
  // The calibrations ingestion applies, per device (publish a device's set when it changes).
  CalibrationBook& calibrations() { return calibrations_; }
  Quarantine& quarantine() { return *quarantine_; }

  // The query coroutines take their arguments by value: a coroutine that held a reference
  // to a caller's temporary would read it after it died (quality() did, once).
  // Every series of the device's metric (any protocol, contract version or quality), merged
  // in time order.
  boost::asio::awaitable<Result<std::vector<ReadSample>>> read(std::string device, std::string metric,
                                                               int64_t from, int64_t to);
  // One series, as select() named it.
  boost::asio::awaitable<Result<std::vector<tsdb::Sample>>> read_series(tsdb::SeriesKey key, int64_t from, int64_t to);
  boost::asio::awaitable<Result<tsdb::AggregateResult>> aggregate(tsdb::AggregateQuery query);
  boost::asio::awaitable<Result<std::vector<tsdb::SeriesInfo>>> select(tsdb::Selector selector);
  boost::asio::awaitable<std::vector<std::pair<std::string, tsdb::ValueType>>> metrics_of(std::string device);
  // Lineage: a message by id, or the messages that stored a device's metric at a time (the
  // newest first, at most `limit`), from the raw logs (read off the shards).
  boost::asio::awaitable<Result<std::vector<RawEntry>>> message(uint64_t id);
  boost::asio::awaitable<Result<std::vector<RawEntry>>> messages_at(std::string device, std::string metric,
                                                                    int64_t ts, size_t limit);
  // Derives the device's samples in [from, to) again from its raw messages (those whose
  // samples or receipt fall in the range) and replaces the stored ones with them, exactly
  // once: the range's old samples go and the new ones come in one replacement per shard
  // (tsdb::Db::prepare_replace), messages that arrive meanwhile included. Refused, changing
  // nothing, when messages would now be rejected or stored samples have no raw message,
  // unless the request allows it. One job per shard at a time. Idempotent: running it again
  // gives the same data (a crash part way is completed by running it again).
  boost::asio::awaitable<Result<ReprocessReport>> reprocess(ReprocessRequest request);
  // Every device's data quality ("" ), or one device's.
  boost::asio::awaitable<std::vector<DeviceQuality>> quality(std::string device);

  // On `shard`'s thread (an observer's): stores `sample` with the shard's next batch, through
  // the WAL like any sample. Nobody waits for it and no observer is shown it: a crash before
  // its fsync loses it, and it is derived again from the data that is kept. Samples storage
  // refuses (a series of another type, a time outside the head's window) are counted in
  // fieldline_derived_samples_refused_total.
  void store_derived(uint32_t shard, const DerivedSample& sample);

  // Set before start(); it must outlive close().
  void set_observer(SampleObserver* observer) { observer_ = observer; }
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }

  // Starts the per-shard maintenance timers (block cuts, compaction, retention, gauges).
  void start();
  // Stops accepting, waits for in-flight appends, syncs every WAL. Call from outside the shards
  // while they still run.
  Status close();
  bool ready() const;

  struct Shard;

 private:
  Pipeline(core::ShardRuntime& runtime, core::Env& env, const core::Config& config, ops::Metrics& metrics);
  // Decodes, validates and tags one submission on its shard's thread and stages its samples
  // for the round's batch (or, given a sink, for a reprocessing job); submit's body.
  void process(Shard& shard, const DeviceContext& device, std::vector<Message>& messages, Transport transport,
               SubmitMode mode, const IngestCounters* counters, std::shared_ptr<Join> join, ReprocessSink* sink);
  // Appends everything submitted to the shard since the last drain as one batch.
  void drain(Shard& shard);
  ops::Counter& rejected_counter(const char* transport, const Error& e);
  // Syncs the shard's active raw log segment in the background.
  void sync_raw_log(Shard& shard);
  // Compresses a sealed raw log segment on the idle-priority thread.
  void compress_later(const std::string& sealed);
  // Takes one of the device's quarantine tokens (ingest.quarantine_quota an hour).
  bool quarantine_admits(Shard& shard, const std::string& device, int64_t now_ns);

  core::ShardRuntime& runtime_;
  core::Env& env_;
  core::Config config_;
  bool raw_log_on_;  // config_.ingest.raw_log == "on"
  ops::Metrics& metrics_;
  std::vector<std::unique_ptr<Shard>> shards_;
  ContractBook contracts_;
  CalibrationBook calibrations_;
  std::unique_ptr<Quarantine> quarantine_;
  std::vector<std::shared_ptr<std::function<void()>>> ticks_;  // maintenance loops, kept alive here
  // Block cuts are encoded and written here, off the shards, so ingestion never waits for them.
  std::unique_ptr<boost::asio::thread_pool> background_;
  // Sealed raw log segments are compressed here, at idle priority.
  std::unique_ptr<boost::asio::thread_pool> compressor_;
  std::atomic<bool> stopping_{false};
  SampleObserver* observer_ = nullptr;
};

}  // namespace fieldline::ingest
