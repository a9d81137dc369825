#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include <boost/json.hpp>

#include "fieldline/core/errc.h"
#include "fieldline/core/ids.h"
#include "fieldline/registry/registry.h"
#include "fieldline/security/token.h"

namespace fieldline::registry {
namespace {

class RegistryCategory final : public NamedCategory {
 public:
  const char* name() const noexcept override { return "registry"; }
  const char* code_name(int c) const noexcept override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::not_found: return "not_found";
      case Errc::already_exists: return "already_exists";
      case Errc::invalid_argument: return "invalid_argument";
      case Errc::unauthorized: return "unauthorized";
      case Errc::storage: return "storage";
    }
    return "unknown";
  }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::not_found: return "device not found";
      case Errc::already_exists: return "device already exists";
      case Errc::invalid_argument: return "invalid argument";
      case Errc::unauthorized: return "bad credentials";
      case Errc::storage: return "registry storage error";
    }
    return "unknown registry error";
  }
};

// Versioned migrations: index i brings the schema from version i to i + 1. Never edit one
// that has shipped; append a new one.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE devices (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      profile TEXT NOT NULL,
      tags TEXT NOT NULL,             -- JSON object
      enabled INTEGER NOT NULL,
      created_ns INTEGER NOT NULL,
      last_seen_ns INTEGER NOT NULL DEFAULT 0,
      token_salt BLOB NOT NULL,
      token_hash BLOB NOT NULL
    );
    CREATE TABLE admin_tokens (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL,
      token_salt BLOB NOT NULL,
      token_hash BLOB NOT NULL,
      created_ns INTEGER NOT NULL
    );
    )sql",
    // 2: a non-secret lookup key per device token (security::token_lookup_key), so a bare
    // token finds its device without trying every salted hash. NULL for older tokens.
    R"sql(
    ALTER TABLE devices ADD COLUMN token_lookup TEXT;
    )sql",
    // 3: persistent MQTT sessions (client id -> device, expiry, subscriptions as JSON).
    R"sql(
    CREATE TABLE mqtt_sessions (
      client_id TEXT PRIMARY KEY,
      device TEXT NOT NULL,
      expiry_ns INTEGER NOT NULL,
      subscriptions TEXT NOT NULL
    );
    )sql",
    // 4: data contracts in immutable versions, and the append-only audit log; the triggers
    // make "immutable" and "append-only" hold for anything that opens the file, not just us.
    R"sql(
    CREATE TABLE contracts (
      profile TEXT NOT NULL,
      version INTEGER NOT NULL,
      document TEXT NOT NULL,         -- canonical JSON
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      forced INTEGER NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (profile, version)
    );
    CREATE TRIGGER contracts_immutable BEFORE UPDATE ON contracts
      BEGIN SELECT RAISE(ABORT, 'contract versions are immutable'); END;
    CREATE TRIGGER contracts_kept BEFORE DELETE ON contracts
      BEGIN SELECT RAISE(ABORT, 'contract versions are immutable'); END;
    CREATE TABLE audit_log (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ns INTEGER NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      subject TEXT NOT NULL,
      detail TEXT NOT NULL
    );
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    )sql",
    // 5: QoS 1 messages queued for persistent MQTT sessions, until acknowledged.
    R"sql(
    CREATE TABLE mqtt_queued (
      client_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      topic TEXT NOT NULL,
      payload BLOB NOT NULL,
      PRIMARY KEY (client_id, seq)
    );
    )sql",
    // 6: calibration records (immutable) and events for other capabilities to act on.
    R"sql(
    CREATE TABLE calibrations (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      device TEXT NOT NULL,
      metric TEXT NOT NULL,
      document TEXT NOT NULL,
      valid_from_ns INTEGER NOT NULL,
      due_ns INTEGER NOT NULL,
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL
    );
    CREATE INDEX calibrations_device ON calibrations(device, metric, valid_from_ns);
    CREATE TRIGGER calibrations_immutable BEFORE UPDATE ON calibrations
      BEGIN SELECT RAISE(ABORT, 'calibration records are immutable'); END;
    CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ns INTEGER NOT NULL,
      kind TEXT NOT NULL,
      device TEXT NOT NULL,
      subject TEXT NOT NULL,
      detail TEXT NOT NULL,
      UNIQUE (kind, subject)
    );
    )sql",
    // 7: detector documents (analytics/detector_document.h) in immutable versions, like contracts.
    R"sql(
    CREATE TABLE detector_documents (
      profile TEXT NOT NULL,
      version INTEGER NOT NULL,
      document TEXT NOT NULL,         -- the TOML as applied
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      forced INTEGER NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (profile, version)
    );
    CREATE TRIGGER detector_documents_immutable BEFORE UPDATE ON detector_documents
      BEGIN SELECT RAISE(ABORT, 'detector document versions are immutable'); END;
    CREATE TRIGGER detector_documents_kept BEFORE DELETE ON detector_documents
      BEGIN SELECT RAISE(ABORT, 'detector document versions are immutable'); END;
    )sql",
    // 8: feature views (ml/feature_view.h) in immutable versions, like detector documents.
    R"sql(
    CREATE TABLE feature_views (
      profile TEXT NOT NULL,
      version INTEGER NOT NULL,
      document TEXT NOT NULL,         -- the TOML as applied
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      forced INTEGER NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (profile, version)
    );
    CREATE TRIGGER feature_views_immutable BEFORE UPDATE ON feature_views
      BEGIN SELECT RAISE(ABORT, 'feature view versions are immutable'); END;
    CREATE TRIGGER feature_views_kept BEFORE DELETE ON feature_views
      BEGIN SELECT RAISE(ABORT, 'feature view versions are immutable'); END;
    )sql",
    // 9: the model registry: versions with their artifacts, immutable but for the stage, and
    // every stage change.
    R"sql(
    CREATE TABLE models (
      name TEXT NOT NULL,
      version INTEGER NOT NULL,
      profile TEXT NOT NULL,
      view_version INTEGER NOT NULL,
      runtime TEXT NOT NULL,
      artifact BLOB NOT NULL,
      artifact_sha256 TEXT NOT NULL,
      training_set_sha256 TEXT NOT NULL,
      label TEXT NOT NULL,
      metrics TEXT NOT NULL,          -- JSON
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      stage TEXT NOT NULL,
      stage_changed_ns INTEGER NOT NULL,
      PRIMARY KEY (name, version)
    );
    CREATE TRIGGER models_immutable BEFORE UPDATE OF name, version, profile, view_version, runtime, artifact, artifact_sha256,
      training_set_sha256, label, metrics, created_ns, created_by ON models
      BEGIN SELECT RAISE(ABORT, 'model versions are immutable but for their stage'); END;
    CREATE TRIGGER models_kept BEFORE DELETE ON models
      BEGIN SELECT RAISE(ABORT, 'model versions are kept'); END;
    CREATE TABLE model_stage_changes (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL,
      version INTEGER NOT NULL,
      from_stage TEXT NOT NULL,
      to_stage TEXT NOT NULL,
      at_ns INTEGER NOT NULL,
      by TEXT NOT NULL,
      reason TEXT NOT NULL
    );
    )sql",
    // 10: KPI definitions (ops/kpi.h) in immutable versions, like feature views.
    R"sql(
    CREATE TABLE kpi_definitions (
      profile TEXT NOT NULL,
      version INTEGER NOT NULL,
      document TEXT NOT NULL,         -- the TOML as applied
      created_ns INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      forced INTEGER NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (profile, version)
    );
    CREATE TRIGGER kpi_definitions_immutable BEFORE UPDATE ON kpi_definitions
      BEGIN SELECT RAISE(ABORT, 'KPI definition versions are immutable'); END;
    CREATE TRIGGER kpi_definitions_kept BEFORE DELETE ON kpi_definitions
      BEGIN SELECT RAISE(ABORT, 'KPI definition versions are immutable'); END;
    )sql",
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string tags_json(const Tags& tags) {
  boost::json::object o;
  for (const auto& [k, v] : tags) o[k] = v;
  return boost::json::serialize(o);
}

Tags tags_from_json(const std::string& s) {
  Tags t;
  boost::system::error_code ec;
  auto v = boost::json::parse(s, ec);
  if (ec || !v.is_object()) return t;
  for (const auto& [k, val] : v.as_object()) {
    if (val.is_string()) t.emplace_back(std::string(k), std::string(val.as_string()));
  }
  std::sort(t.begin(), t.end());
  return t;
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

struct CachedDevice {
  security::TokenHash token;
  std::string token_lookup;  // empty: a token from before the lookup key existed
  DeviceIdentity identity;
  bool enabled = true;
  int64_t last_seen_ns = 0;  // guarded by the cache mutex; written rarely (per connection)
  bool last_seen_dirty = false;
};

class SqliteRegistry final : public Registry {
 public:
  explicit SqliteRegistry(sqlite3* db) : db_(db) {}
  ~SqliteRegistry() override {
    (void)flush_last_seen();
    sqlite3_close(db_);
  }

  Status init() {
    FL_TRY_STATUS(exec("PRAGMA journal_mode=WAL"));
    FL_TRY_STATUS(exec("PRAGMA synchronous=FULL"));
    FL_TRY_STATUS(exec("PRAGMA foreign_keys=ON"));
    FL_TRY_STATUS(exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ns INTEGER NOT NULL)"));
    int version = 0;
    {
      Stmt st;
      sqlite3_prepare_v2(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st.s, nullptr);
      if (sqlite3_step(st.s) == SQLITE_ROW) version = sqlite3_column_int(st.s, 0);
    }
    const int target = static_cast<int>(std::size(kMigrations));
    if (version > target) {
      return make_error(Errc::storage, "registry schema version " + std::to_string(version) +
                                           " is newer than this binary supports (" + std::to_string(target) + ")");
    }
    for (int v = version; v < target; ++v) {
      FL_TRY_STATUS(exec("BEGIN IMMEDIATE"));
      auto st = exec(kMigrations[v]);
      if (st) st = exec("INSERT INTO schema_migrations(version, applied_ns) VALUES (" + std::to_string(v + 1) + ", " +
                        std::to_string(now_ns()) + ")");
      if (!st) {
        (void)exec("ROLLBACK");
        return st;
      }
      FL_TRY_STATUS(exec("COMMIT"));
    }
    return load_cache();
  }

  Result<std::string> add_device(const NewDevice& d) override {
    if (auto st = core::validate_device_id(d.id); !st) return make_error(Errc::invalid_argument, st.error().context());
    if (auto st = validate_tags(d.tags); !st) return st.error();
    FL_TRY(token, security::generate_token("fld_"));
    FL_TRY(hash, security::hash_token(token));
    Device dev{d.id, d.name.empty() ? d.id : d.name, d.profile.empty() ? "generic" : d.profile, d.tags, true, now_ns(), 0};
    std::sort(dev.tags.begin(), dev.tags.end());
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO devices(id,name,profile,tags,enabled,created_ns,token_salt,token_hash,token_lookup) "
                       "VALUES (?,?,?,?,1,?,?,?,?)",
                       -1, &st.s, nullptr);
    bind_text(st, 1, dev.id);
    bind_text(st, 2, dev.name);
    bind_text(st, 3, dev.profile);
    bind_text(st, 4, tags_json(dev.tags));
    sqlite3_bind_int64(st.s, 5, dev.created_ns);
    sqlite3_bind_blob(st.s, 6, hash.salt.data(), static_cast<int>(hash.salt.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(st.s, 7, hash.hash.data(), static_cast<int>(hash.hash.size()), SQLITE_TRANSIENT);
    std::string lookup = security::token_lookup_key(token);
    bind_text(st, 8, lookup);
    int rc = sqlite3_step(st.s);
    if (rc == SQLITE_CONSTRAINT) return make_error(Errc::already_exists, "device '" + d.id + "' already exists");
    if (rc != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    std::unique_lock cl(cache_mu_);
    cache_[dev.id] = CachedDevice{hash, lookup, {dev.id, dev.profile, dev.tags}, true, 0, false};
    by_lookup_[lookup] = dev.id;
    return token;
  }

  Result<Device> get_device(const std::string& id) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT id,name,profile,tags,enabled,created_ns,last_seen_ns FROM devices WHERE id=?", -1,
                       &st.s, nullptr);
    bind_text(st, 1, id);
    if (sqlite3_step(st.s) != SQLITE_ROW) return make_error(Errc::not_found, "no device '" + id + "'");
    Device d = row(st);
    overlay_last_seen(d);
    return d;
  }

  Result<std::vector<Device>> list_devices() override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT id,name,profile,tags,enabled,created_ns,last_seen_ns FROM devices ORDER BY id", -1,
                       &st.s, nullptr);
    std::vector<Device> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back(row(st));
      overlay_last_seen(out.back());
    }
    return out;
  }

  Status set_enabled(const std::string& id, bool enabled) override {
    {
      std::lock_guard lock(db_mu_);
      Stmt st;
      sqlite3_prepare_v2(db_, "UPDATE devices SET enabled=? WHERE id=?", -1, &st.s, nullptr);
      sqlite3_bind_int(st.s, 1, enabled ? 1 : 0);
      bind_text(st, 2, id);
      if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      if (sqlite3_changes(db_) == 0) return make_error(Errc::not_found, "no device '" + id + "'");
      std::unique_lock cl(cache_mu_);
      auto it = cache_.find(id);
      if (it != cache_.end()) it->second.enabled = enabled;
    }
    if (!enabled) revoked(id);
    return ok();
  }

  Status delete_device(const std::string& id) override {
    {
      std::lock_guard lock(db_mu_);
      Stmt st;
      sqlite3_prepare_v2(db_, "DELETE FROM devices WHERE id=?", -1, &st.s, nullptr);
      bind_text(st, 1, id);
      if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      if (sqlite3_changes(db_) == 0) return make_error(Errc::not_found, "no device '" + id + "'");
      std::unique_lock cl(cache_mu_);
      forget_lookup(id);
      cache_.erase(id);
    }
    revoked(id);
    return ok();
  }

  Result<std::string> rotate_token(const std::string& id) override {
    FL_TRY(token, security::generate_token("fld_"));
    FL_TRY(hash, security::hash_token(token));
    {
      std::lock_guard lock(db_mu_);
      Stmt st;
      std::string lookup = security::token_lookup_key(token);
      sqlite3_prepare_v2(db_, "UPDATE devices SET token_salt=?, token_hash=?, token_lookup=? WHERE id=?", -1, &st.s, nullptr);
      sqlite3_bind_blob(st.s, 1, hash.salt.data(), static_cast<int>(hash.salt.size()), SQLITE_TRANSIENT);
      sqlite3_bind_blob(st.s, 2, hash.hash.data(), static_cast<int>(hash.hash.size()), SQLITE_TRANSIENT);
      bind_text(st, 3, lookup);
      bind_text(st, 4, id);
      if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      if (sqlite3_changes(db_) == 0) return make_error(Errc::not_found, "no device '" + id + "'");
      std::unique_lock cl(cache_mu_);
      forget_lookup(id);
      auto it = cache_.find(id);
      if (it != cache_.end()) {
        it->second.token = hash;
        it->second.token_lookup = lookup;
        by_lookup_[lookup] = id;
      }
    }
    revoked(id);  // sessions opened with the old token must go
    return token;
  }

  Result<DeviceIdentity> authenticate_device(const std::string& id, const std::string& token) override {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(id);
    if (it == cache_.end() || !security::verify_token(token, it->second.token)) {
      return make_error(Errc::unauthorized, "unknown device or wrong token");
    }
    if (!it->second.enabled) return make_error(Errc::unauthorized, "device '" + id + "' is disabled");
    return it->second.identity;
  }

  Result<DeviceIdentity> identity(const std::string& id) override {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(id);
    if (it == cache_.end()) return make_error(Errc::not_found, "no device '" + id + "'");
    if (!it->second.enabled) return make_error(Errc::unauthorized, "device '" + id + "' is disabled");
    return it->second.identity;
  }

  AuthResult authenticate_bearer(const std::string& token) override {
    std::shared_lock lock(cache_mu_);
    for (const auto& h : admin_) {
      if (security::verify_token(token, h)) return {Principal::admin, {}};
    }
    // Device tokens don't name their device: the lookup key finds the candidate, the salted
    // hash decides. Only tokens issued before lookup keys existed need a scan.
    if (token.starts_with("fld_")) {
      auto found = by_lookup_.find(security::token_lookup_key(token));
      if (found != by_lookup_.end()) {
        auto it = cache_.find(found->second);
        if (it != cache_.end() && it->second.enabled && security::verify_token(token, it->second.token)) {
          return {Principal::device, it->first};
        }
      }
      if (legacy_tokens_ > 0) {
        for (const auto& [id, dev] : cache_) {
          if (dev.token_lookup.empty() && dev.enabled && security::verify_token(token, dev.token)) return {Principal::device, id};
        }
      }
    }
    return {};
  }

  Result<std::optional<std::string>> ensure_admin_token(const std::optional<std::string>& preset) override {
    {
      std::shared_lock lock(cache_mu_);
      if (!admin_.empty()) return std::optional<std::string>();
    }
    std::string token;
    if (preset && !preset->empty()) {
      if (preset->size() < 16) return make_error(Errc::invalid_argument, "FIELDLINE_ADMIN_TOKEN must be at least 16 characters");
      token = *preset;
    } else {
      FL_TRY(t, security::generate_token("fla_"));
      token = std::move(t);
    }
    FL_TRY(hash, security::hash_token(token));
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "INSERT INTO admin_tokens(name,token_salt,token_hash,created_ns) VALUES ('admin',?,?,?)", -1,
                       &st.s, nullptr);
    sqlite3_bind_blob(st.s, 1, hash.salt.data(), static_cast<int>(hash.salt.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(st.s, 2, hash.hash.data(), static_cast<int>(hash.hash.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.s, 3, now_ns());
    if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    std::unique_lock cl(cache_mu_);
    admin_.push_back(hash);
    if (preset && !preset->empty()) return std::optional<std::string>();
    return std::optional<std::string>(token);
  }

  Status save_session(const StoredSession& session) override {
    boost::json::array subs;
    for (const auto& [filter, qos] : session.subscriptions) subs.push_back(boost::json::array{filter.c_str(), qos});
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO mqtt_sessions(client_id,device,expiry_ns,subscriptions) VALUES (?,?,?,?)", -1,
                       &st.s, nullptr);
    bind_text(st, 1, session.client_id);
    bind_text(st, 2, session.device);
    sqlite3_bind_int64(st.s, 3, session.expiry_ns);
    bind_text(st, 4, boost::json::serialize(subs));
    if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    return ok();
  }

  Status delete_session(const std::string& client_id) override {
    std::lock_guard lock(db_mu_);
    for (const char* sql : {"DELETE FROM mqtt_sessions WHERE client_id=?", "DELETE FROM mqtt_queued WHERE client_id=?"}) {
      Stmt st;
      sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr);
      bind_text(st, 1, client_id);
      if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    }
    return ok();
  }

  Status save_queued(const std::string& client_id, const StoredMessage& m) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO mqtt_queued(client_id,seq,topic,payload) VALUES (?,?,?,?)", -1, &st.s, nullptr);
    bind_text(st, 1, client_id);
    sqlite3_bind_int64(st.s, 2, m.seq);
    bind_text(st, 3, m.topic);
    sqlite3_bind_blob(st.s, 4, m.payload.data(), static_cast<int>(m.payload.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    return ok();
  }

  Status delete_queued(const std::string& client_id, int64_t seq) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "DELETE FROM mqtt_queued WHERE client_id=? AND seq=?", -1, &st.s, nullptr);
    bind_text(st, 1, client_id);
    sqlite3_bind_int64(st.s, 2, seq);
    if (sqlite3_step(st.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    return ok();
  }

  Result<std::vector<StoredSession>> load_sessions() override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT client_id,device,expiry_ns,subscriptions FROM mqtt_sessions", -1, &st.s, nullptr);
    std::vector<StoredSession> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      StoredSession s{col(st, 0), col(st, 1), sqlite3_column_int64(st.s, 2), {}, {}};
      boost::system::error_code ec;
      auto subs = boost::json::parse(col(st, 3), ec);
      if (!ec && subs.is_array()) {
        for (const auto& e : subs.as_array()) {
          if (e.is_array() && e.as_array().size() == 2 && e.as_array()[0].is_string() && e.as_array()[1].is_int64()) {
            s.subscriptions.emplace_back(std::string(e.as_array()[0].as_string()),
                                         static_cast<uint8_t>(e.as_array()[1].as_int64()));
          }
        }
      }
      out.push_back(std::move(s));
    }
    for (auto& s : out) {
      Stmt q;
      sqlite3_prepare_v2(db_, "SELECT seq,topic,payload FROM mqtt_queued WHERE client_id=? ORDER BY seq", -1, &q.s, nullptr);
      bind_text(q, 1, s.client_id);
      while (sqlite3_step(q.s) == SQLITE_ROW) {
        const auto* blob = static_cast<const char*>(sqlite3_column_blob(q.s, 2));
        s.queued.push_back({sqlite3_column_int64(q.s, 0), col(q, 1),
                            std::string(blob ? blob : "", static_cast<size_t>(sqlite3_column_bytes(q.s, 2)))});
      }
    }
    return out;
  }

  Status insert_audit(const AuditEntry& audit) {
    Stmt log;
    sqlite3_prepare_v2(db_, "INSERT INTO audit_log(at_ns,actor,action,subject,detail) VALUES (?,?,?,?,?)", -1, &log.s, nullptr);
    sqlite3_bind_int64(log.s, 1, audit.at_ns);
    bind_text(log, 2, audit.actor);
    bind_text(log, 3, audit.action);
    bind_text(log, 4, audit.subject);
    bind_text(log, 5, audit.detail);
    if (sqlite3_step(log.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    return ok();
  }

  Status append_audit(const AuditEntry& audit) override {
    std::lock_guard lock(db_mu_);
    return insert_audit(audit);
  }

  // Runs `body` in one write transaction: committed if it succeeds, rolled back otherwise.
  // REQUIRES: db_mu_ held.
  template <typename Body>
  Status in_transaction(Body body) {
    FL_TRY_STATUS(exec("BEGIN IMMEDIATE"));
    Status st = body();
    if (!st) {
      (void)exec("ROLLBACK");
      return st;
    }
    return exec("COMMIT");
  }

  Status add_contract_version(const ContractVersion& v, const AuditEntry& audit) override {
    return add_version("contracts", "contract", v, audit);
  }
  Result<std::vector<ContractVersion>> contract_history(const std::string& profile) override {
    return history("contracts", profile);
  }
  Result<std::vector<std::string>> contract_profiles() override { return profiles("contracts"); }
  Status add_detector_version(const ContractVersion& v, const AuditEntry& audit) override {
    return add_version("detector_documents", "detector document", v, audit);
  }
  Result<std::vector<ContractVersion>> detector_history(const std::string& profile) override {
    return history("detector_documents", profile);
  }
  Result<std::vector<std::string>> detector_profiles() override { return profiles("detector_documents"); }
  Status add_feature_view_version(const ContractVersion& v, const AuditEntry& audit) override {
    return add_version("feature_views", "feature view", v, audit);
  }
  Result<std::vector<ContractVersion>> feature_view_history(const std::string& profile) override {
    return history("feature_views", profile);
  }
  Result<std::vector<std::string>> feature_view_profiles() override { return profiles("feature_views"); }
  Status add_kpi_version(const ContractVersion& v, const AuditEntry& audit) override {
    return add_version("kpi_definitions", "KPI definition", v, audit);
  }
  Result<std::vector<ContractVersion>> kpi_history(const std::string& profile) override { return history("kpi_definitions", profile); }
  Result<std::vector<std::string>> kpi_profiles() override { return profiles("kpi_definitions"); }

  Result<int64_t> add_model_version(const ModelVersion& v, const AuditEntry& audit) override {
    std::lock_guard lock(db_mu_);
    int64_t version = 0;
    FL_TRY_STATUS(in_transaction([&]() -> Status {
      Stmt latest;
      sqlite3_prepare_v2(db_, "SELECT COALESCE(MAX(version), 0) FROM models WHERE name=?", -1, &latest.s, nullptr);
      bind_text(latest, 1, v.name);
      if (sqlite3_step(latest.s) != SQLITE_ROW) return make_error(Errc::storage, sqlite3_errmsg(db_));
      version = sqlite3_column_int64(latest.s, 0) + 1;
      Stmt ins;
      sqlite3_prepare_v2(db_,
                         "INSERT INTO models(name,version,profile,view_version,runtime,artifact,artifact_sha256,training_set_sha256,"
                         "label,metrics,created_ns,created_by,stage,stage_changed_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         -1, &ins.s, nullptr);
      bind_text(ins, 1, v.name);
      sqlite3_bind_int64(ins.s, 2, version);
      bind_text(ins, 3, v.profile);
      sqlite3_bind_int64(ins.s, 4, v.view_version);
      bind_text(ins, 5, v.runtime);
      sqlite3_bind_blob(ins.s, 6, v.artifact.data(), static_cast<int>(v.artifact.size()), SQLITE_TRANSIENT);
      bind_text(ins, 7, v.artifact_sha256);
      bind_text(ins, 8, v.training_set_sha256);
      bind_text(ins, 9, v.label);
      bind_text(ins, 10, v.metrics);
      sqlite3_bind_int64(ins.s, 11, v.created_ns);
      bind_text(ins, 12, v.created_by);
      bind_text(ins, 13, v.stage);
      sqlite3_bind_int64(ins.s, 14, v.created_ns);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      AuditEntry a = audit;
      a.subject += "@" + std::to_string(version);
      return insert_audit(a);
    }));
    return version;
  }

  Result<std::vector<ModelVersion>> model_history(const std::string& name, bool artifacts) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_,
                       (std::string("SELECT name,version,profile,view_version,runtime,") + (artifacts ? "artifact" : "''") +
                        ",artifact_sha256,training_set_sha256,label,metrics,created_ns,created_by,stage,stage_changed_ns FROM models "
                        "WHERE name=? ORDER BY version")
                           .c_str(),
                       -1, &st.s, nullptr);
    bind_text(st, 1, name);
    std::vector<ModelVersion> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      ModelVersion v;
      v.name = col(st, 0);
      v.version = sqlite3_column_int64(st.s, 1);
      v.profile = col(st, 2);
      v.view_version = sqlite3_column_int64(st.s, 3);
      v.runtime = col(st, 4);
      if (artifacts) {
        const auto* blob = static_cast<const char*>(sqlite3_column_blob(st.s, 5));
        v.artifact.assign(blob ? blob : "", static_cast<size_t>(sqlite3_column_bytes(st.s, 5)));
      }
      v.artifact_sha256 = col(st, 6);
      v.training_set_sha256 = col(st, 7);
      v.label = col(st, 8);
      v.metrics = col(st, 9);
      v.created_ns = sqlite3_column_int64(st.s, 10);
      v.created_by = col(st, 11);
      v.stage = col(st, 12);
      v.stage_changed_ns = sqlite3_column_int64(st.s, 13);
      out.push_back(std::move(v));
    }
    return out;
  }

  Result<std::vector<std::string>> model_names() override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT DISTINCT name FROM models ORDER BY name", -1, &st.s, nullptr);
    std::vector<std::string> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) out.push_back(col(st, 0));
    return out;
  }

  Status set_model_stages(const std::string& name, const std::vector<std::pair<int64_t, std::string>>& moves, const std::string& by,
                          const std::string& reason, const AuditEntry& audit) override {
    std::lock_guard lock(db_mu_);
    return in_transaction([&]() -> Status {
      for (const auto& [version, stage] : moves) {
        Stmt cur;
        sqlite3_prepare_v2(db_, "SELECT stage FROM models WHERE name=? AND version=?", -1, &cur.s, nullptr);
        bind_text(cur, 1, name);
        sqlite3_bind_int64(cur.s, 2, version);
        if (sqlite3_step(cur.s) != SQLITE_ROW) {
          return make_error(Errc::not_found, "model " + name + " has no version " + std::to_string(version));
        }
        const std::string from = col(cur, 0);
        if (from == stage) continue;
        Stmt up;
        sqlite3_prepare_v2(db_, "UPDATE models SET stage=?, stage_changed_ns=? WHERE name=? AND version=?", -1, &up.s, nullptr);
        bind_text(up, 1, stage);
        sqlite3_bind_int64(up.s, 2, audit.at_ns);
        bind_text(up, 3, name);
        sqlite3_bind_int64(up.s, 4, version);
        if (sqlite3_step(up.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
        Stmt log;
        sqlite3_prepare_v2(db_, "INSERT INTO model_stage_changes(name,version,from_stage,to_stage,at_ns,by,reason) VALUES (?,?,?,?,?,?,?)",
                           -1, &log.s, nullptr);
        bind_text(log, 1, name);
        sqlite3_bind_int64(log.s, 2, version);
        bind_text(log, 3, from);
        bind_text(log, 4, stage);
        sqlite3_bind_int64(log.s, 5, audit.at_ns);
        bind_text(log, 6, by);
        bind_text(log, 7, reason);
        if (sqlite3_step(log.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      }
      return insert_audit(audit);
    });
  }

  Result<std::vector<ModelStageChange>> model_stage_changes(const std::string& name) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT id,name,version,from_stage,to_stage,at_ns,by,reason FROM model_stage_changes WHERE name=? ORDER BY id",
                       -1, &st.s, nullptr);
    bind_text(st, 1, name);
    std::vector<ModelStageChange> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back({sqlite3_column_int64(st.s, 0), col(st, 1), sqlite3_column_int64(st.s, 2), col(st, 3), col(st, 4),
                     sqlite3_column_int64(st.s, 5), col(st, 6), col(st, 7)});
    }
    return out;
  }

  // Versioned profile documents (contracts, detector documents): `table` is one of ours.
  Status add_version(const std::string& table, const std::string& what, const ContractVersion& v, const AuditEntry& audit) {
    std::lock_guard lock(db_mu_);
    return in_transaction([&]() -> Status {
      Stmt latest;
      sqlite3_prepare_v2(db_, ("SELECT COALESCE(MAX(version), 0) FROM " + table + " WHERE profile=?").c_str(), -1, &latest.s,
                         nullptr);
      bind_text(latest, 1, v.profile);
      if (sqlite3_step(latest.s) != SQLITE_ROW) return make_error(Errc::storage, sqlite3_errmsg(db_));
      int64_t current = sqlite3_column_int64(latest.s, 0);
      if (v.version != current + 1) {
        return make_error(Errc::already_exists, what + " '" + v.profile + "' is at version " + std::to_string(current) +
                                                    ", not " + std::to_string(v.version - 1) + " (applied concurrently?); retry");
      }
      Stmt ins;
      sqlite3_prepare_v2(db_,
                         ("INSERT INTO " + table +
                          "(profile,version,document,created_ns,created_by,forced,reason) VALUES (?,?,?,?,?,?,?)")
                             .c_str(),
                         -1, &ins.s, nullptr);
      bind_text(ins, 1, v.profile);
      sqlite3_bind_int64(ins.s, 2, v.version);
      bind_text(ins, 3, v.document);
      sqlite3_bind_int64(ins.s, 4, v.created_ns);
      bind_text(ins, 5, v.created_by);
      sqlite3_bind_int(ins.s, 6, v.forced ? 1 : 0);
      bind_text(ins, 7, v.reason);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      return insert_audit(audit);
    });
  }

  Result<std::vector<ContractVersion>> history(const std::string& table, const std::string& profile) {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_,
                       ("SELECT profile,version,document,created_ns,created_by,forced,reason FROM " + table +
                        " WHERE profile=? ORDER BY version")
                           .c_str(),
                       -1, &st.s, nullptr);
    bind_text(st, 1, profile);
    std::vector<ContractVersion> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back({col(st, 0), sqlite3_column_int64(st.s, 1), col(st, 2), sqlite3_column_int64(st.s, 3), col(st, 4),
                     sqlite3_column_int(st.s, 5) != 0, col(st, 6)});
    }
    return out;
  }

  Result<std::vector<std::string>> profiles(const std::string& table) {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, ("SELECT DISTINCT profile FROM " + table + " ORDER BY profile").c_str(), -1, &st.s, nullptr);
    std::vector<std::string> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) out.push_back(col(st, 0));
    return out;
  }

  Result<int64_t> add_calibration(const CalibrationRecord& c, const AuditEntry& audit) override {
    std::lock_guard lock(db_mu_);
    int64_t id = 0;
    FL_TRY_STATUS(in_transaction([&]() -> Status {
      Stmt ins;
      sqlite3_prepare_v2(db_, "INSERT INTO calibrations(device,metric,document,valid_from_ns,due_ns,created_ns,created_by) VALUES (?,?,?,?,?,?,?)",
                         -1, &ins.s, nullptr);
      bind_text(ins, 1, c.device);
      bind_text(ins, 2, c.metric);
      bind_text(ins, 3, c.document);
      sqlite3_bind_int64(ins.s, 4, c.valid_from_ns);
      sqlite3_bind_int64(ins.s, 5, c.due_ns);
      sqlite3_bind_int64(ins.s, 6, c.created_ns);
      bind_text(ins, 7, c.created_by);
      if (sqlite3_step(ins.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
      id = sqlite3_last_insert_rowid(db_);
      AuditEntry a = audit;
      a.subject += "#" + std::to_string(id);
      return insert_audit(a);
    }));
    return id;
  }

  Result<std::vector<CalibrationRecord>> calibrations(const std::string& device) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_,
                       device.empty() ? "SELECT id,device,metric,document,valid_from_ns,due_ns,created_ns,created_by FROM calibrations ORDER BY id"
                                      : "SELECT id,device,metric,document,valid_from_ns,due_ns,created_ns,created_by FROM calibrations WHERE device=? ORDER BY id",
                       -1, &st.s, nullptr);
    if (!device.empty()) bind_text(st, 1, device);
    std::vector<CalibrationRecord> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back({sqlite3_column_int64(st.s, 0), col(st, 1), col(st, 2), col(st, 3), sqlite3_column_int64(st.s, 4),
                     sqlite3_column_int64(st.s, 5), sqlite3_column_int64(st.s, 6), col(st, 7)});
    }
    return out;
  }

  Result<bool> add_event(const Event& e) override {
    std::lock_guard lock(db_mu_);
    Stmt ins;
    sqlite3_prepare_v2(db_, "INSERT OR IGNORE INTO events(at_ns,kind,device,subject,detail) VALUES (?,?,?,?,?)", -1, &ins.s, nullptr);
    sqlite3_bind_int64(ins.s, 1, e.at_ns);
    bind_text(ins, 2, e.kind);
    bind_text(ins, 3, e.device);
    bind_text(ins, 4, e.subject);
    bind_text(ins, 5, e.detail);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return make_error(Errc::storage, sqlite3_errmsg(db_));
    return sqlite3_changes(db_) > 0;
  }

  Result<std::vector<Event>> events(const std::string& kind, size_t limit) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_,
                       kind.empty() ? "SELECT id,at_ns,kind,device,subject,detail FROM events ORDER BY id DESC LIMIT ?2"
                                    : "SELECT id,at_ns,kind,device,subject,detail FROM events WHERE kind=?1 ORDER BY id DESC LIMIT ?2",
                       -1, &st.s, nullptr);
    if (!kind.empty()) bind_text(st, 1, kind);
    sqlite3_bind_int64(st.s, 2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    std::vector<Event> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back({sqlite3_column_int64(st.s, 0), sqlite3_column_int64(st.s, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 5)});
    }
    return out;
  }

  Result<std::vector<AuditEntry>> audit_log(size_t limit) override {
    std::lock_guard lock(db_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT id,at_ns,actor,action,subject,detail FROM audit_log ORDER BY id DESC LIMIT ?", -1, &st.s, nullptr);
    sqlite3_bind_int64(st.s, 1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    std::vector<AuditEntry> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      out.push_back({sqlite3_column_int64(st.s, 0), sqlite3_column_int64(st.s, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 5)});
    }
    return out;
  }

  void touch(const std::string& id, int64_t now) override {
    std::unique_lock lock(cache_mu_);
    auto it = cache_.find(id);
    if (it == cache_.end()) return;
    it->second.last_seen_ns = now;
    it->second.last_seen_dirty = true;
  }

  Status flush_last_seen() override {
    std::vector<std::pair<std::string, int64_t>> dirty;
    {
      std::unique_lock lock(cache_mu_);
      for (auto& [id, d] : cache_) {
        if (d.last_seen_dirty) {
          dirty.emplace_back(id, d.last_seen_ns);
          d.last_seen_dirty = false;
        }
      }
    }
    if (dirty.empty()) return ok();
    std::lock_guard lock(db_mu_);
    FL_TRY_STATUS(exec("BEGIN"));
    for (const auto& [id, ts] : dirty) {
      Stmt st;
      sqlite3_prepare_v2(db_, "UPDATE devices SET last_seen_ns=? WHERE id=?", -1, &st.s, nullptr);
      sqlite3_bind_int64(st.s, 1, ts);
      bind_text(st, 2, id);
      sqlite3_step(st.s);
    }
    return exec("COMMIT");
  }

  void on_device_revoked(std::function<void(const std::string&)> cb) override {
    std::lock_guard lock(db_mu_);
    revoke_callbacks_.push_back(std::move(cb));
  }

 private:
  Status exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown";
      sqlite3_free(err);
      return make_error(Errc::storage, msg);
    }
    return ok();
  }
  static void bind_text(Stmt& st, int i, const std::string& s) {
    sqlite3_bind_text(st.s, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  static std::string col(Stmt& st, int i) {
    const auto* p = sqlite3_column_text(st.s, i);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  Device row(Stmt& st) {
    return Device{col(st, 0), col(st, 1), col(st, 2), tags_from_json(col(st, 3)), sqlite3_column_int(st.s, 4) != 0,
                  sqlite3_column_int64(st.s, 5), sqlite3_column_int64(st.s, 6)};
  }
  void overlay_last_seen(Device& d) {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(d.id);
    if (it != cache_.end()) d.last_seen_ns = std::max(d.last_seen_ns, it->second.last_seen_ns);
  }
  Status load_cache() {
    std::unique_lock cl(cache_mu_);
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT id,profile,tags,enabled,token_salt,token_hash,last_seen_ns,token_lookup FROM devices", -1,
                       &st.s, nullptr);
    while (sqlite3_step(st.s) == SQLITE_ROW) {
      CachedDevice d;
      d.identity = {col(st, 0), col(st, 1), tags_from_json(col(st, 2))};
      d.enabled = sqlite3_column_int(st.s, 3) != 0;
      d.token.salt.assign(static_cast<const char*>(sqlite3_column_blob(st.s, 4)), static_cast<size_t>(sqlite3_column_bytes(st.s, 4)));
      d.token.hash.assign(static_cast<const char*>(sqlite3_column_blob(st.s, 5)), static_cast<size_t>(sqlite3_column_bytes(st.s, 5)));
      d.last_seen_ns = sqlite3_column_int64(st.s, 6);
      if (sqlite3_column_type(st.s, 7) != SQLITE_NULL) d.token_lookup = col(st, 7);
      if (d.token_lookup.empty()) ++legacy_tokens_;
      else by_lookup_[d.token_lookup] = d.identity.id;
      cache_[d.identity.id] = std::move(d);
    }
    Stmt at;
    sqlite3_prepare_v2(db_, "SELECT token_salt, token_hash FROM admin_tokens", -1, &at.s, nullptr);
    while (sqlite3_step(at.s) == SQLITE_ROW) {
      security::TokenHash h;
      h.salt.assign(static_cast<const char*>(sqlite3_column_blob(at.s, 0)), static_cast<size_t>(sqlite3_column_bytes(at.s, 0)));
      h.hash.assign(static_cast<const char*>(sqlite3_column_blob(at.s, 1)), static_cast<size_t>(sqlite3_column_bytes(at.s, 1)));
      admin_.push_back(std::move(h));
    }
    return ok();
  }
  void revoked(const std::string& id) {
    std::vector<std::function<void(const std::string&)>> cbs;
    {
      std::lock_guard lock(db_mu_);
      cbs = revoke_callbacks_;
    }
    for (auto& cb : cbs) cb(id);
  }

  sqlite3* db_;
  std::mutex db_mu_;
  std::shared_mutex cache_mu_;
  std::unordered_map<std::string, CachedDevice> cache_;
  std::unordered_map<std::string, std::string> by_lookup_;  // token lookup key -> device id
  size_t legacy_tokens_ = 0;                                 // devices whose token has no lookup key
  // REQUIRES: cache_mu_ held exclusively.
  void forget_lookup(const std::string& id) {
    auto it = cache_.find(id);
    if (it == cache_.end()) return;
    if (it->second.token_lookup.empty()) {
      if (legacy_tokens_ > 0) --legacy_tokens_;
    } else {
      by_lookup_.erase(it->second.token_lookup);
    }
  }
  std::vector<security::TokenHash> admin_;
  std::vector<std::function<void(const std::string&)>> revoke_callbacks_;
};

}  // namespace

const NamedCategory& registry_category() {
  static const RegistryCategory c;
  return c;
}

int sqlite_schema_version() { return static_cast<int>(std::size(kMigrations)); }

Result<std::unique_ptr<Registry>> open_sqlite_registry(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return make_error(Errc::storage, "cannot open registry " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto reg = std::make_unique<SqliteRegistry>(db);
  FL_TRY_STATUS(reg->init());
  return std::unique_ptr<Registry>(std::move(reg));
}

Status validate_tags(const Tags& tags) {
  for (const auto& [k, v] : tags) {
    if (k == "device" || k == "metric") {
      return make_error(Errc::invalid_argument, "tag name '" + k + "' is reserved");
    }
    if (auto st = core::validate_metric_name(k); !st) {
      return make_error(Errc::invalid_argument, "tag name: " + st.error().context());
    }
    if (v.size() > 256) return make_error(Errc::invalid_argument, "tag '" + k + "' value is longer than 256 bytes");
  }
  return ok();
}

Result<Tags> parse_tags(const std::vector<std::string>& items) {
  std::map<std::string, std::string> m;
  for (const auto& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      std::string part = item.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) {
        auto eq = part.find('=');
        if (eq == std::string::npos || eq == 0) {
          return make_error(Errc::invalid_argument, "tag '" + part + "' is not key=value");
        }
        m[part.substr(0, eq)] = part.substr(eq + 1);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  Tags t(m.begin(), m.end());
  FL_TRY_STATUS(validate_tags(t));
  return t;
}

}  // namespace fieldline::registry
