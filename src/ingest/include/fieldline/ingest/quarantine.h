#pragma once
// Quarantine: messages that could not be decoded or broke their device's data contract, kept
// whole (raw payload, device, receipt time, transport, format, reason, contract version) so
// they can be inspected, exported and replayed once the contract or decoder is fixed.
//
// A SQLite file of its own (<data_dir>/quarantine.db), written by one thread that commits
// whatever has queued up in one transaction: a burst of bad messages costs one fsync per
// batch, never a shard's time. add() reports back only once the record is durable, so a
// transport may acknowledge a quarantined message (MQTT 3.1.1 QoS 1: it is stored).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fieldline/core/result.h"

struct sqlite3;

namespace fieldline::ingest {

struct QuarantineRecord {
  uint64_t id = 0;
  int64_t received_ns = 0;
  std::string device;
  std::string profile;
  std::string transport;  // mqtt, http, lineproto
  std::string format;     // how to decode payload (see decode.h Format); line protocol adds ":<precision>"
  std::string reason;     // the error's code name: bad_payload, unknown_metric, ...
  std::string detail;     // the error message the sender got
  int64_t contract_version = 0;  // 0: the profile had no contract
  std::string payload;    // the raw bytes
  std::string sha256;     // of payload, hex
  // Replay: set once the message was decoded and stored after a fix; never cleared.
  int64_t replayed_ns = 0;
  uint32_t attempts = 0;      // replays tried
  std::string last_attempt;   // why the last failed replay failed
};

struct QuarantineFilter {
  std::string device, reason;
  int64_t from_ns = INT64_MIN, to_ns = INT64_MAX;  // receipt time
  std::optional<bool> replayed;                    // unset: both
  uint64_t after_id = 0;                           // paging: ids above this
  size_t limit = 100;
};

struct QuarantineStats {
  uint64_t records = 0, pending = 0, bytes = 0;
};

class Quarantine {
 public:
  static Result<std::unique_ptr<Quarantine>> open(const std::string& path, int64_t retention_ns);
  ~Quarantine();
  Quarantine(const Quarantine&) = delete;
  Quarantine& operator=(const Quarantine&) = delete;

  // Stores the records (ids and hashes are assigned here) and calls `done` on the writer thread
  // with their ids once durable, or with the error that kept them out.
  using Added = std::function<void(Result<std::vector<uint64_t>>)>;
  void add(std::vector<QuarantineRecord> records, Added done);

  // Oldest first, without payloads unless asked.
  Result<std::vector<QuarantineRecord>> list(const QuarantineFilter& filter, bool with_payload = false);
  Result<QuarantineRecord> get(uint64_t id);

  // Replay bookkeeping. claim() takes a record for one replay (fails with already_replayed,
  // or with busy while another replay of it runs); finish() records the result and releases it.
  Status claim(uint64_t id);
  Status finish(uint64_t id, bool stored, const std::string& why_not);

  // Deletes records received before now - retention (replayed or not); returns how many.
  Result<uint64_t> expire(int64_t now_ns);
  Result<QuarantineStats> stats();

 private:
  explicit Quarantine(sqlite3* db, int64_t retention_ns);
  void writer_loop();
  Status write_batch(std::vector<QuarantineRecord>& records, std::vector<uint64_t>& ids);

  sqlite3* db_;
  int64_t retention_ns_;
  std::mutex db_mu_;  // one connection, used by the writer thread and readers in turn
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  struct Job {
    std::vector<QuarantineRecord> records;
    Added done;
  };
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::mutex claim_mu_;
  std::set<uint64_t> claimed_;
  std::thread writer_;
};

}  // namespace fieldline::ingest
