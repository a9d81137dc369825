#include "fieldline/ingest/quarantine.h"

#include <sqlite3.h>

#include <chrono>
#include <utility>

#include "fieldline/core/errc.h"
#include "fieldline/ingest/decode.h"
#include "fieldline/security/token.h"

namespace fieldline::ingest {
namespace {

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt() = default;
  Stmt(Stmt&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s); }
};

Error db_error(sqlite3* db, const std::string& what) {
  return core::make_error(core::Errc::io_error, "quarantine: " + what + ": " + sqlite3_errmsg(db));
}

Status exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return core::make_error(core::Errc::io_error, std::string("quarantine: ") + m);
  }
  return {};
}

Result<Stmt> prepare(sqlite3* db, const std::string& sql) {
  Stmt st;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) return db_error(db, "prepare");
  return st;
}

std::string text(sqlite3_stmt* s, int col) {
  const auto* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, col))) : std::string();
}

void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr const char* kSchema = R"sql(
  CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ns INTEGER NOT NULL,
    device TEXT NOT NULL,
    profile TEXT NOT NULL,
    transport TEXT NOT NULL,
    format TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    contract_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    replayed_ns INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX IF NOT EXISTS quarantine_device ON quarantine(device, id);
  CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine(reason, id);
  CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine(received_ns);
)sql";

constexpr const char* kColumns =
    "id, received_ns, device, profile, transport, format, reason, detail, contract_version, sha256, "
    "COALESCE(replayed_ns, 0), attempts, last_attempt, length(payload)";

QuarantineRecord read_row(sqlite3_stmt* s, bool with_payload) {
  QuarantineRecord r;
  r.id = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  r.received_ns = sqlite3_column_int64(s, 1);
  r.device = text(s, 2);
  r.profile = text(s, 3);
  r.transport = text(s, 4);
  r.format = text(s, 5);
  r.reason = text(s, 6);
  r.detail = text(s, 7);
  r.contract_version = sqlite3_column_int64(s, 8);
  r.sha256 = text(s, 9);
  r.replayed_ns = sqlite3_column_int64(s, 10);
  r.attempts = static_cast<uint32_t>(sqlite3_column_int64(s, 11));
  r.last_attempt = text(s, 12);
  if (with_payload) {
    const void* p = sqlite3_column_blob(s, 14);
    r.payload.assign(static_cast<const char*>(p ? p : ""), static_cast<size_t>(sqlite3_column_bytes(s, 14)));
  } else {
    r.payload.clear();
  }
  return r;
}

}  // namespace

Quarantine::Quarantine(sqlite3* db, int64_t retention_ns) : db_(db), retention_ns_(retention_ns) {
  writer_ = std::thread([this] { writer_loop(); });
}

Quarantine::~Quarantine() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  sqlite3_close(db_);
}

Result<std::unique_ptr<Quarantine>> Quarantine::open(const std::string& path, int64_t retention_ns) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return core::make_error(core::Errc::io_error, "cannot open " + path + ": " + m);
  }
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", kSchema}) {
    if (auto st = exec(db, sql); !st) {
      sqlite3_close(db);
      return st.error();
    }
  }
  return std::unique_ptr<Quarantine>(new Quarantine(db, retention_ns));
}

void Quarantine::add(std::vector<QuarantineRecord> records, Added done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back({std::move(records), std::move(done)});
      queue_cv_.notify_one();
      return;
    }
  }
  done(make_error(Errc::shutting_down, "quarantine is closing"));
}

void Quarantine::writer_loop() {
  for (;;) {
    std::deque<Job> jobs;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      jobs.swap(queue_);
    }
    // Everything queued meanwhile goes in one transaction: one fsync for the lot.
    std::vector<QuarantineRecord> all;
    for (auto& j : jobs) {
      for (auto& r : j.records) all.push_back(std::move(r));
    }
    std::vector<uint64_t> ids;
    Status st;
    {
      std::lock_guard lock(db_mu_);
      st = write_batch(all, ids);
    }
    size_t at = 0;
    for (auto& j : jobs) {
      if (!st) {
        j.done(st.error());
        continue;
      }
      std::vector<uint64_t> mine(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                 ids.begin() + static_cast<std::ptrdiff_t>(at + j.records.size()));
      at += j.records.size();
      j.done(std::move(mine));
    }
  }
}

Status Quarantine::write_batch(std::vector<QuarantineRecord>& records, std::vector<uint64_t>& ids) {
  FL_TRY_STATUS(exec(db_, "BEGIN IMMEDIATE"));
  auto fail = [&](Error e) -> Status {
    (void)exec(db_, "ROLLBACK");
    return e;
  };
  auto ins = prepare(db_,
                     "INSERT INTO quarantine (received_ns, device, profile, transport, format, reason, detail, "
                     "contract_version, payload, sha256) VALUES (?,?,?,?,?,?,?,?,?,?)");
  if (!ins) return fail(ins.error());
  for (auto& r : records) {
    r.sha256 = security::sha256_hex(r.payload);
    sqlite3_reset(ins->s);
    sqlite3_bind_int64(ins->s, 1, r.received_ns);
    bind_text(ins->s, 2, r.device);
    bind_text(ins->s, 3, r.profile);
    bind_text(ins->s, 4, r.transport);
    bind_text(ins->s, 5, r.format);
    bind_text(ins->s, 6, r.reason);
    bind_text(ins->s, 7, r.detail);
    sqlite3_bind_int64(ins->s, 8, r.contract_version);
    sqlite3_bind_blob(ins->s, 9, r.payload.data(), static_cast<int>(r.payload.size()), SQLITE_STATIC);
    bind_text(ins->s, 10, r.sha256);
    if (sqlite3_step(ins->s) != SQLITE_DONE) return fail(db_error(db_, "insert"));
    ids.push_back(static_cast<uint64_t>(sqlite3_last_insert_rowid(db_)));
  }
  if (auto st = exec(db_, "COMMIT"); !st) return fail(st.error());
  return {};
}

Result<std::vector<QuarantineRecord>> Quarantine::list(const QuarantineFilter& f, bool with_payload) {
  std::string sql = std::string("SELECT ") + kColumns + (with_payload ? ", payload" : "") +
                    " FROM quarantine WHERE id > ? AND received_ns >= ? AND received_ns <= ?";
  if (!f.device.empty()) sql += " AND device = ?";
  if (!f.reason.empty()) sql += " AND reason = ?";
  if (f.replayed) sql += *f.replayed ? " AND replayed_ns IS NOT NULL" : " AND replayed_ns IS NULL";
  sql += " ORDER BY id LIMIT ?";
  std::lock_guard lock(db_mu_);
  FL_TRY(q, prepare(db_, sql));
  int i = 1;
  sqlite3_bind_int64(q.s, i++, static_cast<int64_t>(f.after_id));
  sqlite3_bind_int64(q.s, i++, f.from_ns);
  sqlite3_bind_int64(q.s, i++, f.to_ns);
  if (!f.device.empty()) bind_text(q.s, i++, f.device);
  if (!f.reason.empty()) bind_text(q.s, i++, f.reason);
  sqlite3_bind_int64(q.s, i++, static_cast<int64_t>(std::min<size_t>(f.limit, 1'000'000)));
  std::vector<QuarantineRecord> out;
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) out.push_back(read_row(q.s, with_payload));
  if (rc != SQLITE_DONE) return db_error(db_, "list");
  return out;
}

Result<QuarantineRecord> Quarantine::get(uint64_t id) {
  std::lock_guard lock(db_mu_);
  FL_TRY(q, prepare(db_, std::string("SELECT ") + kColumns + ", payload FROM quarantine WHERE id = ?"));
  sqlite3_bind_int64(q.s, 1, static_cast<int64_t>(id));
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_ROW) return read_row(q.s, true);
  if (rc != SQLITE_DONE) return db_error(db_, "get");
  return core::make_error(core::Errc::not_found, "no quarantined message " + std::to_string(id));
}

Status Quarantine::claim(uint64_t id) {
  FL_TRY(r, get(id));
  if (r.replayed_ns != 0) {
    return make_error(Errc::already_replayed, "quarantined message " + std::to_string(id) + " was replayed before");
  }
  std::lock_guard lock(claim_mu_);
  if (!claimed_.insert(id).second) {
    return make_error(Errc::replay_busy, "quarantined message " + std::to_string(id) + " is being replayed");
  }
  return {};
}

Status Quarantine::finish(uint64_t id, bool stored, const std::string& why_not) {
  Status st;
  {
    std::lock_guard lock(db_mu_);
    auto q = prepare(db_, stored ? "UPDATE quarantine SET replayed_ns = ?, attempts = attempts + 1, last_attempt = '' "
                                   "WHERE id = ? AND replayed_ns IS NULL"
                                 : "UPDATE quarantine SET attempts = attempts + 1, last_attempt = ? WHERE id = ?");
    if (!q) {
      st = q.error();
    } else {
      if (stored) sqlite3_bind_int64(q->s, 1, now_ns());
      else bind_text(q->s, 1, why_not);
      sqlite3_bind_int64(q->s, 2, static_cast<int64_t>(id));
      if (sqlite3_step(q->s) != SQLITE_DONE) st = db_error(db_, "replay result");
    }
  }
  std::lock_guard lock(claim_mu_);
  claimed_.erase(id);
  return st;
}

Result<uint64_t> Quarantine::expire(int64_t now) {
  if (retention_ns_ <= 0) return uint64_t{0};
  std::lock_guard lock(db_mu_);
  FL_TRY(q, prepare(db_, "DELETE FROM quarantine WHERE received_ns < ?"));
  sqlite3_bind_int64(q.s, 1, now - retention_ns_);
  if (sqlite3_step(q.s) != SQLITE_DONE) return db_error(db_, "expire");
  return static_cast<uint64_t>(sqlite3_changes(db_));
}

Result<QuarantineStats> Quarantine::stats() {
  std::lock_guard lock(db_mu_);
  FL_TRY(q, prepare(db_, "SELECT count(*), count(*) - count(replayed_ns), COALESCE(sum(length(payload)), 0) FROM quarantine"));
  if (sqlite3_step(q.s) != SQLITE_ROW) return db_error(db_, "stats");
  return QuarantineStats{static_cast<uint64_t>(sqlite3_column_int64(q.s, 0)), static_cast<uint64_t>(sqlite3_column_int64(q.s, 1)),
                         static_cast<uint64_t>(sqlite3_column_int64(q.s, 2))};
}

}  // namespace fieldline::ingest
