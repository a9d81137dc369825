#pragma once
// REST routes (/api/v1/..., /api/v2/write, /healthz, /readyz, /metrics). Calls module
// interfaces only: the registry, the ingest pipeline, metrics, and hooks into the transports.
// Every route but /healthz and /readyz needs a token (admin, or the device's own where noted).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fieldline/analytics/alarm_service.h"
#include "fieldline/api/live_samples.h"
#include "fieldline/analytics/stream.h"
#include "fieldline/core/config.h"
#include "fieldline/ingest/pipeline.h"
#include "fieldline/ml/decision_log.h"
#include "fieldline/ml/online.h"
#include "fieldline/ml/training_set.h"
#include "fieldline/ops/metrics.h"
#include "fieldline/registry/registry.h"
#include "fieldline/transport/http/server.h"

namespace fieldline::api {

struct Hooks {
  // Delivers a command to a device's MQTT subscriptions; returns how many sessions it reached.
  std::function<size_t(const std::string& device, const std::string& name, const std::string& payload)> deliver_command;
};

class Api {
 public:
  Api(const core::Config& config, registry::Registry& registry, ingest::Pipeline& pipeline, ops::Metrics& metrics,
      analytics::AlarmService& alarms, analytics::DetectorBook& detectors, ml::FeatureBook& feature_views,
      const ml::OnlineFeatures& features, ml::ModelBook& models, const ml::Serving& serving, ml::DecisionLog& decisions,
      LiveSamples& live_samples, Hooks hooks);
  ~Api();
  boost::asio::awaitable<transport::http::Response> handle(transport::http::Request& req);
  // GET /api/v1/stream (WebSocket; admin token as `Authorization: Bearer` or, for browsers,
  // ?token=): alarm events as they happen, one JSON text message each ({"event":
  // "alarm.raised"|"alarm.updated"|"alarm.cleared"|"alarm.acknowledged"|"alarm.escalated"|
  // "alarm.commented", "alarm": {...}}; "alarm.storm" says how many the channel's rate limit
  // held back), filtered like GET /api/v1/alarms (?device=&type=&severity=).
  boost::asio::awaitable<transport::http::Upgrade> upgrade(transport::http::Request& req);

 private:
  core::Config config_;
  registry::Registry& registry_;
  ingest::Pipeline& pipeline_;
  ops::Metrics& metrics_;
  analytics::AlarmService& alarms_;
  analytics::DetectorBook& detectors_;
  ml::FeatureBook& feature_views_;
  const ml::OnlineFeatures& features_;
  ml::ModelBook& models_;
  const ml::Serving& serving_;
  ml::DecisionLog& decisions_;
  LiveSamples& live_samples_;
  std::unique_ptr<boost::asio::thread_pool> training_;  // model training, off the HTTP threads
  Hooks hooks_;
};

// Maps any module's error to an HTTP status and a JSON error body: the one place that knows
// how errors look over HTTP.
transport::http::Response to_http_error(const Error& e, unsigned version = 11);

// /api/v1/contracts... and /api/v1/audit (the caller checked for the admin token; `actor` is
// who it is, for the audit log):
//   GET  /api/v1/contracts                                 profiles and their latest versions
//   POST /api/v1/contracts[?force=true&reason=...]         apply a TOML or JSON document
//   GET  /api/v1/contracts/{profile}                       version history
//   GET  /api/v1/contracts/{profile}/versions/{v|latest}   one version's document
//   GET  /api/v1/contracts/{profile}/diff?from=V1&to=V2    what changed, and what breaks
//   GET  /api/v1/audit[?limit=N]                           the audit log, newest first
// A device of a profile with a contract must carry the tags the contract requires; fails
// (invalid_argument, naming them) when it does not.
Status check_required_tags(registry::Registry& registry, const std::string& profile, const registry::Tags& tags);

// Publishes each profile's latest contract version to ingestion (at start).
Status load_contracts(registry::Registry& registry, ingest::ContractBook& book);

// A version applied here is published to `book` once the registry holds it.
transport::http::Response contracts_route(registry::Registry& registry, ingest::ContractBook& book,
                                          boost::beast::http::verb method,
                                          const std::vector<std::string>& parts,
                                          const std::map<std::string, std::string>& params, const std::string& body,
                                          const std::string& actor, unsigned version);

// /api/v1/quarantine... (the caller checked for the admin token):
//   GET  /api/v1/quarantine[?device=&reason=&from=&to=&replayed=&after=&limit=]   oldest first, without payloads
//   GET  /api/v1/quarantine/{id}                                                   one message, with its payload
//   GET  /api/v1/quarantine/export[?filters]                                       NDJSON, payloads in base64
//   POST /api/v1/quarantine/replay  {"ids": [..]} | {"reason", "device", "from", "to"}
// A replay decodes each message again and validates it against the current contract; one
// that is stored is marked replayed and never replayed again (idempotent).
boost::asio::awaitable<transport::http::Response> quarantine_route(
    registry::Registry& registry, ingest::Pipeline& pipeline, const core::Config& config, boost::beast::http::verb method,
    const std::vector<std::string>& parts, const std::map<std::string, std::string>& params, const std::string& body,
    const std::string& actor, unsigned version);

// POST /api/v1/reprocess (admin token) {"device", "from", "to", "dry_run", "quarantine_rejected",
// "force", "reason"}: the device's samples in [from, to) derived again from its raw messages
// with the current contract, decoder and calibrations, replacing the stored ones (see
// ingest::Pipeline::reprocess). 200 with the report; 409 with it when refused (messages the
// contract now rejects, stored samples without a raw message), nothing changed. Audited as
// reprocess.started, then reprocess.done|refused|failed; a dry run is not audited.
boost::asio::awaitable<transport::http::Response> reprocess_route(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                                  boost::beast::http::verb method, const std::string& body,
                                                                  const std::string& actor, unsigned version);
// Runs again the reprocessing jobs a stop interrupted (started in the audit log, never ended);
// at start, once the pipeline runs.
boost::asio::awaitable<void> resume_reprocessing(registry::Registry& registry, ingest::Pipeline& pipeline);

// A finished reprocessing job of a device, newest first: the samples in [from, to) were derived
// again then (lineage shows it beside the raw message).
struct ReprocessedRange {
  std::string job;
  int64_t at_ns = 0, from_ns = 0, to_ns = 0;
  int64_t contract_version = 0;
};
std::vector<ReprocessedRange> reprocessed_ranges(registry::Registry& registry, const std::string& device);

// Calibrations (admin token):
//   GET  /api/v1/devices/{id}/calibrations   records with status current, superseded, scheduled or overdue
//   POST /api/v1/devices/{id}/calibrations   {"metric", "gain", "offset" | "polynomial", "raw_min", "raw_max",
//                                            "valid_from", "due", "reference"}; audited; applied from the next message
// GET /api/v1/events[?kind=&limit=]: events such as calibration.overdue, newest first.
transport::http::Response calibrations_route(registry::Registry& registry, ingest::CalibrationBook& book, ops::Metrics& metrics,
                                             boost::beast::http::verb method, const std::string& device,
                                             const std::string& body, const std::string& actor, unsigned version);
transport::http::Response events_route(registry::Registry& registry, const std::map<std::string, std::string>& params,
                                       unsigned version);
// Publishes every device's calibrations to ingestion (at start).
Status load_calibrations(registry::Registry& registry, ingest::CalibrationBook& book);
// Records a calibration.overdue event (once) for each calibration in force past its due
// date, and sets the fieldline_calibrations_overdue gauge; returns how many events are new.
Result<size_t> raise_overdue_calibrations(registry::Registry& registry, ops::Metrics& metrics, int64_t now_ns);

// Documents versioned per profile (detector documents, feature views), the routes under a
// collection of `base` path parts (POST it to apply, GET it to list the latest versions, GET
// /{profile} for the history, /{profile}/versions/{v|latest} for one version's text).
struct ProfileDocuments {
  std::string noun;          // "detector document"
  std::string list_key;      // the list's key in GET's answer
  std::string audit_action;  // "detectors.apply"
  std::string subject;       // the audit subject's prefix: "detectors"
  std::string absent;        // what a profile without one does
  std::function<Result<std::vector<registry::ContractVersion>>(const std::string& profile)> history;
  std::function<Result<std::vector<std::string>>()> profiles;
  std::function<Status(const registry::ContractVersion&, const registry::AuditEntry&)> add;
  // Checks a body: the profile it is for and a summary for the audit log.
  std::function<Result<std::pair<std::string, std::string>>(const std::string& body)> check;
  // Publishes the version just saved (after check() accepted its body).
  std::function<void(const registry::ContractVersion&)> publish;
};
transport::http::Response profile_documents_route(const ProfileDocuments& d, boost::beast::http::verb method,
                                                  const std::vector<std::string>& parts, size_t base, const std::string& body,
                                                  const std::string& actor, unsigned version);

// Feature views (admin token), versioned per profile like detector documents:
//   GET|POST /api/v1/features/views, GET /api/v1/features/views/{profile}[/versions/{v|latest}]
// A version applied here is published to `book`: the shards start its devices' features afresh.
transport::http::Response feature_views_route(registry::Registry& registry, ml::FeatureBook& book, boost::beast::http::verb method,
                                              const std::vector<std::string>& parts, const std::string& body, const std::string& actor,
                                              unsigned version);
// Publishes each profile's latest feature view (at start).
Status load_feature_views(registry::Registry& registry, ml::FeatureBook& book);
// GET /api/v1/devices/{id}/features: {"device", "profile", "view", "view_version", "as_of",
// "features": {name: number or null}}.
boost::json::object features_json(const std::string& device, const ml::OnlineFeatures::Reading& reading);
// A prediction: {"device", "model", "version", "as_of", "value", "top_contributions": [{"feature", "contribution"}]}.
boost::json::object prediction_json(const ml::Prediction& p);

// A training set from the stored samples of `profile`'s devices: a row at each sample of the
// `label` metric in [from, to), features point in time (ml/training_set.h).
boost::asio::awaitable<Result<ml::TrainingSet>> stored_training_set(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                                    std::shared_ptr<const ml::ProfileFeatures> view, std::string profile,
                                                                    std::string label, ml::LabelKind kind, int64_t from, int64_t to);

// The model registry (admin token):
//   GET  /api/v1/models                                      names, latest and production versions
//   POST /api/v1/models/{name}/train                         {"profile", "label", "kind", "runtime" (xgboost|linear), "from", "to",
//                                                            "rounds", "max_depth", "eta"}
//   GET  /api/v1/models/{name}                               versions and stage changes
//   GET  /api/v1/models/{name}/versions/{v|latest}
//   POST /api/v1/models/{name}/versions/{v}/promote          {"stage": "production"|"shadow"|"candidate"|"archived", "reason"}
//   POST /api/v1/models/{name}/versions/{v}/evaluate         {"from", "to"}
//   POST /api/v1/models/{name}/rollback                      {"reason"}
// Promotion and rollback check the artifact (checksum, load, the profile's current feature
// view) before anything changes, record the stage change and the audit entry together, and
// replace the model in `book` before answering. Training runs on `training`.
boost::asio::awaitable<transport::http::Response> models_route(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                               const ml::FeatureBook& views, ml::ModelBook& book,
                                                               boost::asio::thread_pool& training, boost::beast::http::verb method,
                                                               std::vector<std::string> parts, std::string body, std::string actor,
                                                               unsigned version);
// Outcome KPIs (admin token):
//   GET|POST /api/v1/kpis/definitions, GET /api/v1/kpis/definitions/{profile}[/versions/{v|latest}]
//   GET /api/v1/kpis?profile=P[&from&to][&step=1d][&baseline_from&baseline_to][&site=S]
// The values over [from, to) (default the last 30 days), per step, and over the baseline, from
// the stored series the profile's latest definition names and from its alarms (ops/kpi.h).
transport::http::Response kpi_definitions_route(registry::Registry& registry, boost::beast::http::verb method,
                                                const std::vector<std::string>& parts, const std::string& body, const std::string& actor,
                                                unsigned version);
// GET /api/v1/fleet (admin token): every device in one answer, for the console's fleet
// overview and for integrators: its registry entry, whether it is online (a message within two
// of its contract's expected intervals, or 5 minutes without one), its open alarms and their
// highest severity, its conformance rate since the server started, and its latest prediction
// of each production model; with the counts by site and profile.
boost::asio::awaitable<transport::http::Response> fleet_route(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                              analytics::AlarmService& alarms, const ml::Serving& serving,
                                                              unsigned version);

boost::asio::awaitable<transport::http::Response> kpis_route(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                             analytics::AlarmService& alarms, std::map<std::string, std::string> params,
                                                             unsigned version);

// Loads every production model into `book` (at start); returns why any that fail their checks
// are not served.
Result<std::vector<std::string>> load_models(registry::Registry& registry, const ml::FeatureBook& views, ml::ModelBook& book);

// Detector documents (admin token), versioned per profile like contracts:
//   GET  /api/v1/detectors                                 profiles and their latest versions
//   POST /api/v1/detectors                                 apply a TOML document (its `profile` says whose)
//   GET  /api/v1/detectors/{profile}                       version history
//   GET  /api/v1/detectors/{profile}/versions/{v|latest}   one version's document
// A version applied here is published to `book` (the shards pick it up at their next sample).
transport::http::Response detectors_route(registry::Registry& registry, analytics::DetectorBook& book,
                                          boost::beast::http::verb method, const std::vector<std::string>& parts,
                                          const std::string& body, const std::string& actor, unsigned version);
// Publishes each profile's latest detector document (at start).
Status load_detectors(registry::Registry& registry, analytics::DetectorBook& book);

// Alarms (admin token):
//   GET  /api/v1/alarms[?state=active|cleared&acknowledged=&device=&type=&severity=MIN&limit=]  newest first
//   GET  /api/v1/alarms/{id}
//   POST /api/v1/alarms/{id}/acknowledge | /clear | /comment {"text"}   409 when already done
//   GET  /api/v1/maintenance,  POST /api/v1/maintenance {"device" ("" all), "from", "to", "reason"}
boost::asio::awaitable<transport::http::Response> alarms_route(analytics::AlarmService& alarms, boost::beast::http::verb method,
                                                               const std::vector<std::string>& parts,
                                                               const std::map<std::string, std::string>& params,
                                                               const std::string& body, const std::string& actor,
                                                               unsigned version);
// The filter of GET /api/v1/alarms and of the stream, from query parameters.
Result<analytics::alarms::AlarmBook::Filter> parse_alarm_filter(const std::map<std::string, std::string>& params);

}  // namespace fieldline::api
