#include "fieldline/ml/decision_log.h"

#include <boost/json.hpp>

#include <cmath>

#include "fieldline/core/json.h"
#include "fieldline/core/log.h"

namespace fieldline::ml {

namespace json = boost::json;

namespace {

constexpr size_t kMaxQueued = 10'000;

constexpr const char* kSchema = R"sql(
  CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_ns INTEGER NOT NULL,
    as_of_ns INTEGER NOT NULL,
    device TEXT NOT NULL,
    profile TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    value REAL,
    top TEXT NOT NULL,     -- [[feature, contribution], ...]
    inputs TEXT NOT NULL   -- {"feature": value or null, ...} in the view's column order
  );
  CREATE INDEX IF NOT EXISTS decisions_by_model ON decisions(model, id);
  CREATE INDEX IF NOT EXISTS decisions_by_device ON decisions(device, id);
)sql";

std::string top_json(const Prediction& p) {
  json::array top;
  for (const auto& [feature, contribution] : p.top) top.push_back(json::array{feature, contribution});
  return core::to_json(top);
}

std::string inputs_json(const DecisionRecord& r) {
  // Serialised in column order (boost::json keeps insertion order), NaN as null.
  json::object inputs;
  for (size_t i = 0; i < r.names.size() && i < r.inputs.size(); ++i) {
    if (std::isnan(r.inputs[i])) inputs[r.names[i]] = nullptr;
    else inputs[r.names[i]] = r.inputs[i];
  }
  return core::to_json(inputs);
}

}  // namespace

Result<std::unique_ptr<DecisionLog>> DecisionLog::open(const Options& options, ops::Metrics& metrics) {
  FL_TRY(db, core::sqlite::Database::open(options.path, false));
  FL_TRY_STATUS(db->exec(kSchema));
  return std::unique_ptr<DecisionLog>(new DecisionLog(std::move(db), options.kept, metrics));
}

DecisionLog::DecisionLog(std::unique_ptr<core::sqlite::Database> db, uint64_t kept, ops::Metrics& metrics)
    : db_(std::move(db)),
      kept_(kept),
      written_(metrics.counter("fieldline_decision_records_total", "Decision records written for audit")),
      dropped_(metrics.counter("fieldline_decision_records_dropped_total",
                               "Decision records dropped because the writer was behind or failed")) {
  writer_ = std::thread([this] { writer_loop(); });
}

DecisionLog::~DecisionLog() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void DecisionLog::record(DecisionRecord record, int64_t recorded_ns) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_ && queue_.size() < kMaxQueued) {
      queue_.push_back({0, recorded_ns, std::move(record)});
      ++queued_;
      queue_cv_.notify_one();
      return;
    }
  }
  dropped_.inc();
}

void DecisionLog::flush() {
  std::unique_lock lock(queue_mu_);
  const uint64_t target = queued_;
  idle_cv_.wait(lock, [&] { return done_ >= target || stopping_; });
}

void DecisionLog::writer_loop() {
  for (;;) {
    std::deque<StoredDecision> batch;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      batch.swap(queue_);
    }
    const size_t n = batch.size();
    if (auto st = write(batch); st) {
      written_.inc(n);
    } else {
      dropped_.inc(n);
      core::logger("ml")->error("cannot write {} decision records: {}", n, st.error().message());
    }
    {
      std::lock_guard lock(queue_mu_);
      done_ += n;
    }
    idle_cv_.notify_all();
  }
}

Status DecisionLog::write(std::deque<StoredDecision>& batch) {
  std::lock_guard lock(db_mu_);
  FL_TRY_STATUS(db_->exec("BEGIN"));
  auto body = [&]() -> Status {
    FL_TRY(insert, db_->prepare("INSERT INTO decisions (recorded_ns, as_of_ns, device, profile, model, version, value, top, inputs) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    for (const auto& d : batch) {
      const Prediction& p = d.record.prediction;
      insert.reset();
      insert.bind(1, d.recorded_ns).bind(2, p.as_of_ns).bind(3, p.device).bind(4, p.profile).bind(5, p.model);
      insert.bind(6, p.version).bind(7, p.value).bind(8, top_json(p)).bind(9, inputs_json(d.record));
      FL_TRY_STATUS(insert.run());
    }
    // Only the newest `kept` stay.
    FL_TRY(trim, db_->prepare("DELETE FROM decisions WHERE id <= ?1"));
    const int64_t newest = db_->last_insert_id();
    if (newest > static_cast<int64_t>(kept_)) {
      FL_TRY_STATUS(trim.bind(1, newest - static_cast<int64_t>(kept_)).run());
    }
    return {};
  };
  if (auto st = body(); !st) {
    (void)db_->exec("ROLLBACK");
    return st;
  }
  return db_->exec("COMMIT");
}

Result<std::vector<StoredDecision>> DecisionLog::list(const Filter& filter) {
  std::lock_guard lock(db_mu_);
  FL_TRY(select, db_->prepare("SELECT id, recorded_ns, as_of_ns, device, profile, model, version, value, top, inputs FROM decisions "
                              "WHERE (?1 = '' OR model = ?1) AND (?2 = '' OR device = ?2) AND (?3 = 0 OR version = ?3) "
                              "AND (?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5"));
  select.bind(1, filter.model).bind(2, filter.device).bind(3, filter.version);
  select.bind(4, static_cast<int64_t>(filter.before_id)).bind(5, static_cast<int64_t>(filter.limit));
  std::vector<StoredDecision> out;
  for (;;) {
    FL_TRY(row, select.step());
    if (!row) break;
    StoredDecision d;
    d.id = static_cast<uint64_t>(select.int64(0));
    d.recorded_ns = select.int64(1);
    Prediction& p = d.record.prediction;
    p.as_of_ns = select.int64(2);
    p.device = select.text(3);
    p.profile = select.text(4);
    p.model = select.text(5);
    p.version = select.int64(6);
    p.value = select.real(7);
    boost::system::error_code ec;
    auto top = json::parse(select.text(8), ec);
    if (!ec && top.is_array()) {
      for (const auto& item : top.as_array()) {
        if (item.is_array() && item.as_array().size() == 2 && item.as_array()[0].is_string() && item.as_array()[1].is_number()) {
          p.top.emplace_back(std::string(item.as_array()[0].as_string()), item.as_array()[1].to_number<double>());
        }
      }
    }
    auto inputs = json::parse(select.text(9), ec);
    if (!ec && inputs.is_object()) {
      for (const auto& [name, value] : inputs.as_object()) {
        d.record.names.emplace_back(name);
        d.record.inputs.push_back(value.is_number() ? value.to_number<double>() : NAN);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace fieldline::ml
