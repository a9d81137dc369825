// GET /api/v1/fleet: the whole fleet's health in one answer (see api.h).
#include <boost/json.hpp>

#include <algorithm>
#include <map>

#include "fieldline/api/api.h"
#include "fieldline/core/async.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {

namespace json = boost::json;
namespace asio = boost::asio;
using analytics::alarms::Severity;

namespace {

// Without a contract that says how often a device reports, five quiet minutes mean offline.
constexpr int64_t kDefaultOnlineWindowNs = 5 * 60 * core::kNsPerSecond;

struct OpenAlarms {
  uint64_t count = 0;
  Severity highest = Severity::info;
};

}  // namespace

asio::awaitable<transport::http::Response> fleet_route(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                       analytics::AlarmService& alarms, const ml::Serving& serving,
                                                       unsigned version) {
  auto devices = registry.list_devices();
  if (!devices) co_return to_http_error(devices.error(), version);

  std::map<std::string, ingest::DeviceQuality> quality;
  {
    auto job = pipeline.quality("");
    auto list = co_await std::move(job);
    for (auto& q : list) quality.emplace(q.device, std::move(q));
  }
  std::map<std::string, OpenAlarms> open;
  {
    analytics::alarms::AlarmBook::Filter active;
    active.active = true;
    auto job = alarms.list(active, SIZE_MAX);
    auto list = co_await std::move(job);
    for (const auto& a : list) {
      auto& o = open[a.device];
      if (o.count == 0 || a.severity > o.highest) o.highest = a.severity;
      ++o.count;
    }
  }
  // Each shard owns its devices' predictions: read on its thread.
  std::map<std::string, json::array> predictions;
  for (uint32_t shard = 0; shard < pipeline.shard_count(); ++shard) {
    auto job = core::on_executor(pipeline.shard_executor(shard), [&serving, shard] { return serving.predictions(shard); });
    auto list = co_await std::move(job);
    for (const auto& p : list) {
      predictions[p.device].push_back(json::object{{"model", p.model}, {"version", p.version}, {"value", p.value},
                                                   {"as_of", core::format_rfc3339(p.as_of_ns)}});
    }
  }

  const int64_t now = detail::now_ns();
  json::array rows;
  rows.reserve(devices->size());
  struct Group {
    uint64_t devices = 0, online = 0, with_open_alarms = 0;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;  // (site, profile)
  uint64_t online_count = 0, with_alarms = 0, disabled = 0;
  for (const auto& d : *devices) {
    std::string site;
    json::object tags;
    for (const auto& [k, v] : d.tags) {
      tags[k] = v;
      if (k == "site") site = v;
    }
    int64_t last = d.last_seen_ns;
    json::value conformance = nullptr;
    int64_t window = kDefaultOnlineWindowNs;
    int64_t contract_version = 0;
    if (auto q = quality.find(d.id); q != quality.end()) {
      last = std::max(last, q->second.last_receipt_ns);
      if (q->second.messages > 0) conformance = static_cast<double>(q->second.conforming) / static_cast<double>(q->second.messages);
      if (q->second.expected_interval_s > 0) window = static_cast<int64_t>(2 * q->second.expected_interval_s * 1e9);
      contract_version = q->second.contract_version;
    }
    const bool online = d.enabled && last > 0 && now - last <= window;
    json::object row{{"id", d.id},
                     {"name", d.name},
                     {"profile", d.profile},
                     {"site", site},
                     {"tags", std::move(tags)},
                     {"state", d.enabled ? "enabled" : "disabled"},
                     {"online", online},
                     {"last_seen", last > 0 ? json::value(core::format_rfc3339(last)) : json::value(nullptr)},
                     {"conformance_rate", conformance},
                     {"contract_version", contract_version}};
    uint64_t alarm_count = 0;
    if (auto a = open.find(d.id); a != open.end()) {
      alarm_count = a->second.count;
      row["open_alarms"] = a->second.count;
      row["highest_severity"] = analytics::alarms::to_string(a->second.highest);
    } else {
      row["open_alarms"] = 0;
      row["highest_severity"] = nullptr;
    }
    if (auto p = predictions.find(d.id); p != predictions.end()) row["predictions"] = std::move(p->second);
    else row["predictions"] = json::array{};
    rows.push_back(std::move(row));

    auto& g = groups[{site, d.profile}];
    ++g.devices;
    g.online += online;
    g.with_open_alarms += alarm_count > 0;
    online_count += online;
    with_alarms += alarm_count > 0;
    disabled += !d.enabled;
  }
  json::array by_group;
  for (const auto& [key, g] : groups) {
    by_group.push_back(json::object{{"site", key.first}, {"profile", key.second}, {"devices", g.devices}, {"online", g.online},
                                    {"with_open_alarms", g.with_open_alarms}});
  }
  json::object totals{{"devices", devices->size()}, {"online", online_count}, {"offline", devices->size() - online_count - disabled},
                      {"disabled", disabled}, {"with_open_alarms", with_alarms}};
  co_return detail::json_response(200, json::object{{"at", core::format_rfc3339(now)}, {"totals", std::move(totals)},
                                                    {"groups", std::move(by_group)}, {"devices", std::move(rows)}}, version);
}

}  // namespace fieldline::api
