// Outcome KPIs: definitions versioned per profile, and their values computed from the stored
// state and event series of the profile's devices and from their alarms.
#include <boost/json.hpp>

#include <cmath>

#include "fieldline/api/api.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/ops/kpi.h"
#include "responses.h"

namespace fieldline::api {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using transport::http::error_response;
using transport::http::Response;

Response kpi_definitions_route(registry::Registry& registry, bhttp::verb method, const std::vector<std::string>& parts,
                               const std::string& body, const std::string& actor, unsigned ver) {
  ProfileDocuments d;
  d.noun = "KPI definition";
  d.list_key = "definitions";
  d.audit_action = "kpis.apply";
  d.subject = "kpis";
  d.absent = "its devices have no KPIs";
  d.history = [&registry](const std::string& p) { return registry.kpi_history(p); };
  d.profiles = [&registry] { return registry.kpi_profiles(); };
  d.add = [&registry](const registry::ContractVersion& v, const registry::AuditEntry& a) { return registry.add_kpi_version(v, a); };
  d.check = [](const std::string& text) -> Result<std::pair<std::string, std::string>> {
    auto kpi = ops::kpi::parse_definition(text);
    if (!kpi) return kpi.error();
    return std::pair{kpi->profile, "KPI definition " + kpi->name};
  };
  d.publish = [](const registry::ContractVersion&) {};  // read from the registry per request
  return profile_documents_route(d, method, parts, 4, body, actor, ver);
}

namespace {

json::value number(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }

json::object values_json(const ops::kpi::Values& v) {
  return json::object{{"from", core::format_rfc3339(v.from_ns)},
                      {"to", core::format_rfc3339(v.to_ns)},
                      {"devices", v.devices},
                      {"observed_hours", number(v.observed_hours)},
                      {"uptime_hours", number(v.uptime_hours)},
                      {"unplanned_downtime_hours", number(v.unplanned_downtime_hours)},
                      {"planned_downtime_hours", number(v.planned_downtime_hours)},
                      {"failures", v.failures},
                      {"maintenance", v.maintenance},
                      {"mtbf_hours", number(v.mtbf_hours)},
                      {"mttr_hours", number(v.mttr_hours)},
                      {"availability", number(v.availability)},
                      {"maintenance_cost", number(v.maintenance_cost)},
                      {"energy", number(v.energy)},
                      {"output", number(v.output)},
                      {"energy_per_output", number(v.energy_per_output)},
                      {"alarms", v.alarms},
                      {"alarms_before_failure", v.alarms_before_failure},
                      {"alert_precision", number(v.alert_precision)}};
}

}  // namespace

asio::awaitable<Response> kpis_route(registry::Registry& registry, ingest::Pipeline& pipeline, analytics::AlarmService& alarms,
                                     std::map<std::string, std::string> params, unsigned ver) {
  auto get = [&params](const char* k) -> const std::string* {
    auto it = params.find(k);
    return it == params.end() ? nullptr : &it->second;
  };
  const std::string* profile = get("profile");
  if (!profile) co_return error_response(400, "bad_request", "profile is required", ver);
  auto history = registry.kpi_history(*profile);
  if (!history) co_return to_http_error(history.error(), ver);
  if (history->empty()) co_return error_response(404, "not_found", "profile '" + *profile + "' has no KPI definition", ver);
  auto definition = ops::kpi::parse_definition(history->back().document);
  if (!definition) co_return to_http_error(definition.error(), ver);
  const int64_t now = detail::now_ns();
  auto time = [&](const char* key, int64_t fallback) -> Result<int64_t> {
    const auto* text = get(key);
    if (!text) return fallback;
    auto t = core::parse_time(*text, now, core::EpochUnit::milliseconds);
    if (!t) return core::make_error(core::Errc::invalid_argument, std::string(key) + ": " + t.error().context());
    return *t;
  };
  auto from = time("from", now - 30 * core::kNsPerDay), to = time("to", now);
  auto baseline_from = time("baseline_from", 0), baseline_to = time("baseline_to", 0);
  for (const auto* r : {&from, &to, &baseline_from, &baseline_to}) {
    if (!*r) co_return to_http_error(r->error(), ver);
  }
  if (*to <= *from) co_return error_response(400, "bad_request", "'to' must be after 'from'", ver);
  int64_t step = 0;
  if (const auto* s = get("step")) {
    auto d = core::parse_duration(*s);
    if (!d || *d <= 0 || (*to - *from) / *d > 1000) {
      co_return error_response(400, "bad_request", "step: a duration giving at most 1,000 steps, such as 1d", ver);
    }
    step = *d;
  }
  const bool baseline = get("baseline_from") || get("baseline_to");
  if (baseline && *baseline_to <= *baseline_from) co_return error_response(400, "bad_request", "the baseline needs baseline_from before baseline_to", ver);
  const std::string* site = get("site");

  // The profile's devices (optionally of one site) and their series over every range asked for.
  auto devices = registry.list_devices();
  if (!devices) co_return to_http_error(devices.error(), ver);
  const int64_t read_from = baseline ? std::min(*from, *baseline_from) : *from;
  const int64_t read_to = baseline ? std::max(*to, *baseline_to) : *to;
  std::vector<ops::kpi::DeviceSeries> series;
  for (const auto& d : *devices) {
    if (d.profile != *profile) continue;
    if (site && std::none_of(d.tags.begin(), d.tags.end(), [&](const auto& t) { return t.first == "site" && t.second == *site; })) continue;
    ops::kpi::DeviceSeries s;
    s.device = d.id;
    const std::pair<const std::string*, std::vector<ops::kpi::Point>*> wanted[] = {
        {&definition->running, &s.running}, {&definition->failure, &s.failure}, {&definition->maintenance, &s.maintenance},
        {&definition->energy, &s.energy},   {&definition->output, &s.output}};
    for (const auto& [metric, out] : wanted) {
      if (metric->empty()) continue;
      auto job = pipeline.read(d.id, *metric, read_from, read_to);
      auto samples = co_await std::move(job);
      if (!samples) co_return to_http_error(samples.error(), ver);
      for (const auto& x : *samples) {
        double v = 0;
        if (tsdb::numeric_value(x.value, v)) out->push_back({x.ts, v});
      }
    }
    // Alarms at the data's time (their evidence), which is the raise time for live data and
    // the simulated time for a replayed or simulated fleet.
    analytics::alarms::AlarmBook::Filter filter;
    filter.device = d.id;
    filter.type = definition->alarm_type;
    auto list = alarms.list(filter, 100'000);
    auto raised = co_await std::move(list);
    for (const auto& a : raised) s.alarms.push_back(a.evidence.samples.empty() ? a.raised_ns : a.evidence.samples.front().first);
    std::sort(s.alarms.begin(), s.alarms.end());
    series.push_back(std::move(s));
  }
  json::object out{{"profile", *profile},
                   {"kpi", definition->name},
                   {"version", history->back().version},
                   {"current", values_json(ops::kpi::compute(*definition, series, *from, *to))}};
  if (baseline) out["baseline"] = values_json(ops::kpi::compute(*definition, series, *baseline_from, *baseline_to));
  if (step) {
    json::array steps;
    for (int64_t t = *from; t < *to; t += step) steps.push_back(values_json(ops::kpi::compute(*definition, series, t, std::min(t + step, *to))));
    out["series"] = std::move(steps);
  }
  co_return detail::json_response(200, std::move(out), ver);
}

}  // namespace fieldline::api
