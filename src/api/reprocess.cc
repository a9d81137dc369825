// POST /api/v1/reprocess: a device's samples in a time range derived again from its raw
// messages; audited, and resumed after a stop that interrupted it.
#include <boost/json.hpp>

#include <set>

#include "fieldline/api/api.h"
#include "fieldline/core/log.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using transport::http::error_response;
using transport::http::Response;

// What a job was asked to do, as its reprocess.started audit entry keeps it.
struct JobSpec {
  std::string job, device, reason;
  int64_t from = 0, to = 0;
  bool quarantine_rejected = false, force = false;
};

json::object spec_json(const JobSpec& s) {
  return json::object{{"job", s.job},
                      {"from", core::format_rfc3339(s.from)},
                      {"to", core::format_rfc3339(s.to)},
                      {"from_ns", s.from},
                      {"to_ns", s.to},
                      {"quarantine_rejected", s.quarantine_rejected},
                      {"force", s.force},
                      {"reason", s.reason}};
}

json::object report_json(const ingest::ReprocessReport& r, bool dry_run) {
  json::object by_metric;
  for (const auto& [metric, n] : r.by_metric) by_metric[metric] = json::object{{"before", n.first}, {"after", n.second}};
  json::object rejected;
  for (const auto& [reason, n] : r.rejected_by_reason) rejected[reason] = n;
  json::object o{{"applied", r.applied},
                 {"dry_run", dry_run},
                 {"contract_version", r.contract_version},
                 {"messages", r.messages},
                 {"late_messages", r.late_messages},
                 {"rejected", r.rejected},
                 {"rejected_by_reason", std::move(rejected)},
                 {"flagged", r.flagged},
                 {"samples_before", r.samples_before},
                 {"samples_after", r.samples_after},
                 {"by_metric", std::move(by_metric)},
                 {"unexplained", r.unexplained},
                 {"quarantined", r.quarantined},
                 {"blocks_rewritten", r.blocks_rewritten},
                 {"duration_ms", static_cast<double>(r.duration_ns) / 1e6}};
  if (!r.first_rejection.empty()) o["first_rejection"] = r.first_rejection;
  if (!r.first_unexplained.empty()) o["first_unexplained"] = r.first_unexplained;
  if (!r.refused.empty()) o["refused"] = r.refused;
  return o;
}

void audit(registry::Registry& registry, const std::string& actor, const std::string& action, const JobSpec& spec,
           json::object detail) {
  registry::AuditEntry e;
  e.at_ns = detail::now_ns();
  e.actor = actor;
  e.action = action;
  e.subject = "device:" + spec.device;
  detail["job"] = spec.job;
  e.detail = core::to_json(detail);
  if (auto st = registry.append_audit(e); !st) {
    core::logger("api")->warn("cannot audit {} of {}: {}", action, spec.device, st.error().message());
  }
}

// Runs one job: audited as started, then as done, refused or failed. A stop in between leaves
// only the start, which resume_reprocessing finds.
asio::awaitable<Result<ingest::ReprocessReport>> run_job(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                         const JobSpec& spec, bool dry_run, const std::string& actor) {
  auto dev = registry.identity(spec.device);
  if (!dev) co_return dev.error();
  ingest::ReprocessRequest request;
  request.device = ingest::make_device_context(dev->id, dev->profile, dev->tags);
  request.from = spec.from;
  request.to = spec.to;
  request.dry_run = dry_run;
  request.quarantine_rejected = spec.quarantine_rejected;
  request.force = spec.force;
  if (!dry_run) audit(registry, actor, "reprocess.started", spec, spec_json(spec));
  auto report = co_await pipeline.reprocess(request);
  if (dry_run) co_return report;
  if (!report) {
    audit(registry, actor, "reprocess.failed", spec, json::object{{"error", report.error().message()}});
  } else {
    json::object detail = report_json(*report, false);
    for (auto& [k, v] : spec_json(spec)) detail[k] = v;
    audit(registry, actor, report->applied ? "reprocess.done" : "reprocess.refused", spec, std::move(detail));
  }
  co_return report;
}

Result<JobSpec> spec_of(const json::object& o, int64_t now) {
  auto bad = [](const std::string& what) { return core::make_error(core::Errc::invalid_argument, what); };
  JobSpec s;
  for (const auto& [k, v] : o) {
    if (k == "device" || k == "from" || k == "to" || k == "reason") {
      if (!v.is_string()) return bad(std::string(k) + " must be a string");
    } else if (k == "dry_run" || k == "quarantine_rejected" || k == "force") {
      if (!v.is_bool()) return bad(std::string(k) + " must be true or false");
    } else {
      return bad("unknown key '" + std::string(k) + "' (device, from, to, dry_run, quarantine_rejected, force, reason)");
    }
  }
  auto text = [&](const char* k) -> std::string { return o.contains(k) ? std::string(o.at(k).as_string()) : ""; };
  s.device = text("device");
  if (s.device.empty()) return bad("give the device");
  for (auto [key, out] : {std::pair{"from", &s.from}, std::pair{"to", &s.to}}) {
    if (text(key).empty()) return bad(std::string("give ") + key + " (RFC 3339, epoch milliseconds or a duration ago such as 2h)");
    auto t = core::parse_time(text(key), now, core::EpochUnit::milliseconds);
    if (!t) return bad(std::string(key) + ": " + t.error().context());
    *out = *t;
  }
  if (s.from >= s.to) return bad("from must come before to");
  s.quarantine_rejected = o.contains("quarantine_rejected") && o.at("quarantine_rejected").as_bool();
  s.force = o.contains("force") && o.at("force").as_bool();
  s.reason = text("reason");
  s.job = "rp-" + std::to_string(now);
  return s;
}

}  // namespace

asio::awaitable<Response> reprocess_route(registry::Registry& registry, ingest::Pipeline& pipeline, bhttp::verb method,
                                          const std::string& body, const std::string& actor, unsigned ver) {
  if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
  boost::system::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object()) co_return error_response(400, "bad_request", "expected a JSON object", ver);
  auto spec = spec_of(doc.as_object(), detail::now_ns());
  if (!spec) co_return to_http_error(spec.error(), ver);
  const bool dry_run = doc.as_object().contains("dry_run") && doc.as_object().at("dry_run").as_bool();
  auto report = co_await run_job(registry, pipeline, *spec, dry_run, actor);
  if (!report) co_return to_http_error(report.error(), ver);
  json::object out = report_json(*report, dry_run);
  out["device"] = spec->device;
  out["from"] = core::format_rfc3339(spec->from);
  out["to"] = core::format_rfc3339(spec->to);
  if (!dry_run) out["job"] = spec->job;
  // Refused: nothing changed, and the report says why (409, like any conflict with the data).
  co_return detail::json_response(report->refused.empty() ? 200 : 409, out, ver);
}

asio::awaitable<void> resume_reprocessing(registry::Registry& registry, ingest::Pipeline& pipeline) {
  auto log = registry.audit_log(10'000);
  if (!log) {
    core::logger("api")->warn("cannot look for interrupted reprocessing jobs: {}", log.error().message());
    co_return;
  }
  // Newest first: a job's end comes before its start.
  std::set<std::string> ended;
  std::vector<JobSpec> interrupted;
  for (const auto& e : *log) {
    if (!e.action.starts_with("reprocess.")) continue;
    boost::system::error_code ec;
    auto doc = json::parse(e.detail, ec);
    if (ec || !doc.is_object() || !doc.as_object().contains("job") || !doc.as_object().at("job").is_string()) continue;
    const auto& o = doc.as_object();
    std::string job(o.at("job").as_string());
    if (e.action != "reprocess.started") {
      ended.insert(job);
      continue;
    }
    if (ended.count(job) || !o.contains("from_ns") || !o.contains("to_ns")) continue;
    JobSpec s;
    s.job = job;
    s.device = e.subject.substr(e.subject.find(':') + 1);
    s.from = o.at("from_ns").to_number<int64_t>();
    s.to = o.at("to_ns").to_number<int64_t>();
    s.quarantine_rejected = o.contains("quarantine_rejected") && o.at("quarantine_rejected").is_bool() && o.at("quarantine_rejected").as_bool();
    s.force = o.contains("force") && o.at("force").is_bool() && o.at("force").as_bool();
    s.reason = "resumed after a stop";
    interrupted.push_back(std::move(s));
  }
  // Oldest first, as they were asked for; each under its own job id, so it is recorded once.
  for (auto it = interrupted.rbegin(); it != interrupted.rend(); ++it) {
    core::logger("api")->warn("resuming reprocessing job {} of device {}, interrupted by a stop", it->job, it->device);
    const std::string actor = "fieldline";  // named: no temporary inside co_await (GCC 12)
    auto report = co_await run_job(registry, pipeline, *it, false, actor);
    if (!report) core::logger("api")->error("reprocessing job {} failed again: {}", it->job, report.error().message());
  }
}

std::vector<ReprocessedRange> reprocessed_ranges(registry::Registry& registry, const std::string& device) {
  std::vector<ReprocessedRange> out;
  auto log = registry.audit_log(10'000);
  if (!log) return out;
  for (const auto& e : *log) {
    if (e.action != "reprocess.done" || e.subject != "device:" + device) continue;
    boost::system::error_code ec;
    auto doc = json::parse(e.detail, ec);
    if (ec || !doc.is_object()) continue;
    const auto& o = doc.as_object();
    if (!o.contains("from_ns") || !o.contains("to_ns") || !o.contains("job")) continue;
    ReprocessedRange r;
    r.job = std::string(o.at("job").as_string());
    r.at_ns = e.at_ns;
    r.from_ns = o.at("from_ns").to_number<int64_t>();
    r.to_ns = o.at("to_ns").to_number<int64_t>();
    r.contract_version = o.contains("contract_version") ? o.at("contract_version").to_number<int64_t>() : 0;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace fieldline::api
