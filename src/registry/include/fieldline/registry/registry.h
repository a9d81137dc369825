#pragma once
// The device registry: devices, their credentials and the admin tokens. The SQLite
// implementation keeps everything in one file (WAL mode, versioned migrations) and an
// in-memory cache of credentials so authentication never waits on the database.
//
// Thread-safety: every method may be called from any thread. Calls that write go to SQLite
// under a mutex; they are not on the telemetry hot path (authentication reads the cache).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::registry {

enum class Errc { ok = 0, not_found, already_exists, invalid_argument, unauthorized, storage };
const NamedCategory& registry_category();
inline Error make_error(Errc e, std::string context) {
  return Error(std::error_code(static_cast<int>(e), registry_category()), std::move(context));
}
inline bool is(const Error& e, Errc c) {
  return e.code().category() == registry_category() && e.code().value() == static_cast<int>(c);
}

using Tags = std::vector<std::pair<std::string, std::string>>;  // sorted by key

struct Device {
  std::string id;
  std::string name;
  std::string profile;
  Tags tags;
  bool enabled = true;
  int64_t created_ns = 0;
  int64_t last_seen_ns = 0;
};

struct NewDevice {
  std::string id, name, profile;
  Tags tags;
};

// What a transport learns when a device authenticates: enough to tag its samples.
struct DeviceIdentity {
  std::string id;
  std::string profile;
  Tags tags;
};

enum class Principal { none, device, admin };

struct AuthResult {
  Principal principal = Principal::none;
  std::string device_id;  // when principal == device
};

// An MQTT session that outlives its connection (clean start off, or an expiry interval):
// kept so that a restart of the server does not forget what the device subscribed to.
struct StoredMessage {
  int64_t seq = 0;  // order within the session
  std::string topic;
  std::string payload;
};
struct StoredSession {
  std::string client_id;
  std::string device;
  int64_t expiry_ns = 0;
  std::vector<std::pair<std::string, uint8_t>> subscriptions;  // filter, granted QoS
  std::vector<StoredMessage> queued;  // QoS 1 messages not yet acknowledged by the client
};

// One immutable version of a profile's data contract (the document in canonical JSON; see
// ingest/contract.h), with who added it and, for a change that breaks compatibility and was
// forced, why.
struct ContractVersion {
  std::string profile;
  int64_t version = 0;
  std::string document;
  int64_t created_ns = 0;
  std::string created_by;
  bool forced = false;
  std::string reason;
};

// A model version in the registry: its artifact and everything it was made from. Immutable
// but for its stage (candidate, production, shadow, archived).
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string profile;
  int64_t view_version = 0;    // the profile's feature view it was trained on
  std::string runtime;         // "xgboost"
  std::string artifact;        // empty when read without artifacts
  std::string artifact_sha256; // of the artifact, as saved: checked whenever it is read
  std::string training_set_sha256;
  std::string label;           // the metric the rows were labelled by
  std::string metrics;         // JSON object
  int64_t created_ns = 0;
  std::string created_by;
  std::string stage = "candidate";
  int64_t stage_changed_ns = 0;
};

// One stage change of a model version, in the order they happened.
struct ModelStageChange {
  int64_t id = 0;
  std::string name;
  int64_t version = 0;
  std::string from_stage, to_stage;
  int64_t at_ns = 0;
  std::string by, reason;
};

// An entry of the append-only audit log (the database refuses updates and deletes).
struct AuditEntry {
  int64_t id = 0;
  int64_t at_ns = 0;
  std::string actor;    // who: "admin" or "device:<id>" until RBAC names users
  std::string action;   // "contract.apply", "contract.apply.forced", ...
  std::string subject;  // what: "contract:pump@3"
  std::string detail;   // why, and what changed
};

// One calibration record of a device's metric (the document is ingest/calibration.h's
// canonical JSON). Records are immutable; a newer valid_from supersedes.
struct CalibrationRecord {
  int64_t id = 0;
  std::string device, metric;
  std::string document;
  int64_t valid_from_ns = 0, due_ns = 0;
  int64_t created_ns = 0;
  std::string created_by;
};

// Something that happened that other capabilities act on (alarms turn events into alarms):
// "calibration.overdue", ... Recorded once per (kind, subject).
struct Event {
  int64_t id = 0;
  int64_t at_ns = 0;
  std::string kind, device, subject, detail;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // Adds a device and returns its token (shown once; only the hash is stored).
  virtual Result<std::string> add_device(const NewDevice& d) = 0;
  virtual Result<Device> get_device(const std::string& id) = 0;
  virtual Result<std::vector<Device>> list_devices() = 0;
  virtual Status set_enabled(const std::string& id, bool enabled) = 0;
  virtual Status delete_device(const std::string& id) = 0;
  // Replaces the device's token; the old one stops working at once.
  virtual Result<std::string> rotate_token(const std::string& id) = 0;

  // Checks a device's credentials; fails for unknown, disabled or wrong.
  virtual Result<DeviceIdentity> authenticate_device(const std::string& id, const std::string& token) = 0;
  // A device's identity from the in-memory cache, for the telemetry paths (no database read,
  // no lock shared with writers): not_found for an unknown device, unauthorized for a
  // disabled one.
  virtual Result<DeviceIdentity> identity(const std::string& id) = 0;
  // Finds who a bearer token belongs to (admin or a device).
  virtual AuthResult authenticate_bearer(const std::string& token) = 0;

  // Creates the first admin token if none exists: `preset` when given, else a generated one,
  // which is returned so it can be printed once. nullopt when one existed already.
  virtual Result<std::optional<std::string>> ensure_admin_token(const std::optional<std::string>& preset) = 0;

  // Marks a device as seen (kept in memory, written to the database by flush_last_seen()).
  virtual void touch(const std::string& id, int64_t now_ns) = 0;
  virtual Status flush_last_seen() = 0;

  // Persistent MQTT sessions: their subscriptions (save_session leaves `queued` alone) and
  // the QoS 1 messages queued for them, kept until the client acknowledges each, so a
  // command accepted for an offline device survives a restart. delete_session drops both.
  virtual Status save_session(const StoredSession& session) = 0;
  virtual Status delete_session(const std::string& client_id) = 0;
  virtual Status save_queued(const std::string& client_id, const StoredMessage& message) = 0;
  virtual Status delete_queued(const std::string& client_id, int64_t seq) = 0;
  virtual Result<std::vector<StoredSession>> load_sessions() = 0;

  // Data contracts. Adds `v` as version v.version, which must be one past the profile's
  // latest (0 when it has none): a concurrent apply makes this fail with already_exists, so
  // no version is ever decided against a stale predecessor. `audit` is written in the same
  // transaction. Versions can be neither changed nor deleted.
  virtual Status add_contract_version(const ContractVersion& v, const AuditEntry& audit) = 0;
  // Oldest first; empty when the profile has no contract.
  virtual Result<std::vector<ContractVersion>> contract_history(const std::string& profile) = 0;
  virtual Result<std::vector<std::string>> contract_profiles() = 0;
  virtual Status append_audit(const AuditEntry& entry) = 0;
  // Detector documents (analytics/detector_document.h), versioned per profile exactly like
  // contracts (the document is the TOML as applied).
  virtual Status add_detector_version(const ContractVersion& v, const AuditEntry& audit) = 0;
  virtual Result<std::vector<ContractVersion>> detector_history(const std::string& profile) = 0;
  virtual Result<std::vector<std::string>> detector_profiles() = 0;
  // Feature views (ml/feature_view.h), versioned per profile in the same way.
  virtual Status add_feature_view_version(const ContractVersion& v, const AuditEntry& audit) = 0;
  virtual Result<std::vector<ContractVersion>> feature_view_history(const std::string& profile) = 0;
  virtual Result<std::vector<std::string>> feature_view_profiles() = 0;
  // KPI definitions (ops/kpi.h), versioned per profile in the same way.
  virtual Status add_kpi_version(const ContractVersion& v, const AuditEntry& audit) = 0;
  virtual Result<std::vector<ContractVersion>> kpi_history(const std::string& profile) = 0;
  virtual Result<std::vector<std::string>> kpi_profiles() = 0;

  // Models: versions numbered per name from 1 (the registry assigns it, returned); `audit` in
  // the same transaction.
  virtual Result<int64_t> add_model_version(const ModelVersion& v, const AuditEntry& audit) = 0;
  // Oldest first; artifacts only when asked for.
  virtual Result<std::vector<ModelVersion>> model_history(const std::string& name, bool artifacts) = 0;
  virtual Result<std::vector<std::string>> model_names() = 0;
  // Moves versions between stages in one transaction: each (version, stage) in order, each
  // recorded as a stage change, with `audit`. Refused (changing nothing) for a version that
  // does not exist.
  virtual Status set_model_stages(const std::string& name, const std::vector<std::pair<int64_t, std::string>>& moves,
                                  const std::string& by, const std::string& reason, const AuditEntry& audit) = 0;
  virtual Result<std::vector<ModelStageChange>> model_stage_changes(const std::string& name) = 0;

  // Calibrations. Returns the new record's id; `audit` goes in the same transaction (its
  // subject gets the id appended).
  virtual Result<int64_t> add_calibration(const CalibrationRecord& c, const AuditEntry& audit) = 0;
  // A device's records ("" for every device's), oldest first.
  virtual Result<std::vector<CalibrationRecord>> calibrations(const std::string& device) = 0;
  // Records `e` unless an event of its kind and subject exists; true when it was new.
  virtual Result<bool> add_event(const Event& e) = 0;
  // Newest first; `kind` "" for all.
  virtual Result<std::vector<Event>> events(const std::string& kind, size_t limit) = 0;
  // The newest `limit` entries, newest first.
  virtual Result<std::vector<AuditEntry>> audit_log(size_t limit) = 0;

  // Called after a device is disabled or deleted, so transports can close its connections.
  virtual void on_device_revoked(std::function<void(const std::string& id)> callback) = 0;
};

// Opens (creating and migrating) the SQLite registry at `path`.
Result<std::unique_ptr<Registry>> open_sqlite_registry(const std::string& path);
int sqlite_schema_version();

// Parses "k=v,k2=v2" or repeated "k=v" into sorted tags; keys must be valid tag names.
Result<Tags> parse_tags(const std::vector<std::string>& items);
Status validate_tags(const Tags& tags);

}  // namespace fieldline::registry
