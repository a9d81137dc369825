// /api/v1/quarantine: list, show, export and replay the messages ingestion refused.
#include <boost/asio/async_result.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>

#include "fieldline/api/api.h"
#include "fieldline/core/time.h"
#include "fieldline/security/token.h"
#include "responses.h"

namespace fieldline::api {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using transport::http::error_response;
using transport::http::Response;

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

json::object record_json(const ingest::QuarantineRecord& r, bool with_payload) {
  json::object o{{"id", r.id},
                 {"received", core::format_rfc3339(r.received_ns)},
                 {"received_ns", r.received_ns},
                 {"device", r.device},
                 {"profile", r.profile},
                 {"transport", r.transport},
                 {"format", r.format},
                 {"reason", r.reason},
                 {"detail", r.detail},
                 {"contract_version", r.contract_version},
                 {"sha256", r.sha256},
                 {"replayed", r.replayed_ns ? json::value(core::format_rfc3339(r.replayed_ns)) : json::value(nullptr)},
                 {"replay_attempts", r.attempts}};
  if (!r.last_attempt.empty()) o["last_attempt"] = r.last_attempt;
  if (with_payload) {
    // Text payloads (JSON, line protocol) are shown as they came; anything else only as base64.
    if (valid_utf8(r.payload)) o["payload"] = r.payload;
    o["payload_base64"] = security::to_base64(r.payload);
  }
  return o;
}

Result<ingest::QuarantineFilter> filter_of(const std::map<std::string, std::string>& params, size_t default_limit) {
  ingest::QuarantineFilter f;
  f.limit = default_limit;
  auto bad = [](const std::string& m) { return core::make_error(core::Errc::invalid_argument, m); };
  const int64_t now = detail::now_ns();
  for (const auto& [k, v] : params) {
    if (k == "device") {
      f.device = v;
    } else if (k == "reason") {
      f.reason = v;
    } else if (k == "from" || k == "to") {
      auto t = core::parse_time(v, now, core::EpochUnit::milliseconds);
      if (!t) return bad(k + ": " + t.error().context());
      (k == "from" ? f.from_ns : f.to_ns) = *t;
    } else if (k == "replayed") {
      if (v != "true" && v != "false") return bad("replayed must be true or false");
      f.replayed = v == "true";
    } else if (k == "after" || k == "limit") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || p != v.data() + v.size()) return bad(k + " must be a number");
      if (k == "after") f.after_id = n;
      else f.limit = n;
    } else {
      return bad("unknown parameter '" + k + "' (device, reason, from, to, replayed, after, limit)");
    }
  }
  return f;
}

// Replays `ids` in order, a device's consecutive records as one submission.
asio::awaitable<json::object> replay(registry::Registry& registry, ingest::Pipeline& pipeline, const core::Config& config,
                                     const std::vector<uint64_t>& ids) {
  auto& quarantine = pipeline.quarantine();
  json::array results;
  size_t stored = 0, rejected = 0, skipped = 0;
  auto note = [&](uint64_t id, const char* result, const std::string& detail) {
    json::object o{{"id", id}, {"result", result}};
    if (!detail.empty()) o["detail"] = detail;
    results.push_back(std::move(o));
  };
  ingest::DecodeLimits limits;
  limits.max_values = std::max<uint32_t>(config.ingest.max_values_per_message, 5'000'000);
  auto exec = co_await asio::this_coro::executor;
  size_t i = 0;
  while (i < ids.size()) {
    // Gather one device's next run of records (claimed, so no concurrent replay takes them).
    std::vector<ingest::QuarantineRecord> group;
    std::string device;
    while (i < ids.size() && group.size() < 256) {
      auto rec = quarantine.get(ids[i]);
      if (!rec) {
        note(ids[i++], "not_found", rec.error().context());
        ++skipped;
        continue;
      }
      if (!group.empty() && (rec->device != device || rec->transport != group.front().transport)) break;
      ++i;
      if (auto st = quarantine.claim(rec->id); !st) {
        note(rec->id, st.error().name() == "ingest.already_replayed" ? "already_replayed" : "busy", st.error().context());
        ++skipped;
        continue;
      }
      device = rec->device;
      group.push_back(std::move(*rec));
    }
    if (group.empty()) continue;
    auto release_all = [&](const std::string& why) {
      for (const auto& r : group) {
        (void)quarantine.finish(r.id, false, why);
        note(r.id, "rejected", why);
        ++rejected;
      }
    };
    auto dev = registry.identity(device);
    if (!dev) {
      release_all("device '" + device + "': " + dev.error().message());
      continue;
    }
    auto ctx = ingest::make_device_context(device, dev->profile, dev->tags);
    std::vector<ingest::Message> msgs;
    for (auto& r : group) {
      auto m = ingest::decode_message(r.format, r.payload, r.received_ns, limits, device);
      msgs.push_back(std::move(m));
    }
    const auto transport = ingest::parse_transport(group.front().transport);
    auto outcomes = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<ingest::MessageOutcome>)>(
        [&](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          pipeline.submit(ctx, std::move(msgs), transport, exec, [h](std::vector<ingest::MessageOutcome> o) { (*h)(std::move(o)); },
                          ingest::SubmitMode::replay);
        },
        asio::use_awaitable);
    for (size_t k = 0; k < group.size(); ++k) {
      const auto& o = outcomes[k];
      if (o.status) {
        (void)quarantine.finish(group[k].id, true, "");
        note(group[k].id, "stored",
             std::to_string(o.stored) + " stored, " + std::to_string(o.duplicates) + " already present" +
                 (o.flagged ? ", " + std::to_string(o.flagged) + " flagged" : ""));
        ++stored;
      } else {
        const std::string why = o.status.error().name() + ": " + o.status.error().message();
        (void)quarantine.finish(group[k].id, false, why);
        note(group[k].id, "rejected", why);
        ++rejected;
      }
    }
  }
  co_return json::object{{"stored", stored}, {"rejected", rejected}, {"skipped", skipped}, {"results", std::move(results)}};
}

}  // namespace

asio::awaitable<Response> quarantine_route(registry::Registry& registry, ingest::Pipeline& pipeline, const core::Config& config,
                                           bhttp::verb method, const std::vector<std::string>& parts,
                                           const std::map<std::string, std::string>& params, const std::string& body,
                                           const std::string& actor, unsigned ver) {
  auto& quarantine = pipeline.quarantine();
  // GET /api/v1/quarantine
  if (parts.size() == 3) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto f = filter_of(params, 100);
    if (!f) co_return to_http_error(f.error(), ver);
    auto list = quarantine.list(*f);
    if (!list) co_return to_http_error(list.error(), ver);
    json::array out;
    for (const auto& r : *list) out.push_back(record_json(r, false));
    json::value next = list->size() == f->limit && !list->empty() ? json::value(list->back().id) : json::value(nullptr);
    co_return detail::json_response(200, json::object{{"messages", std::move(out)}, {"next_after", next}}, ver);
  }
  const std::string& what = parts[3];
  // GET /api/v1/quarantine/export: NDJSON, payloads included.
  if (parts.size() == 4 && what == "export") {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto f = filter_of(params, 100'000);
    if (!f) co_return to_http_error(f.error(), ver);
    auto list = quarantine.list(*f, true);
    if (!list) co_return to_http_error(list.error(), ver);
    Response res{bhttp::status::ok, ver};
    res.set(bhttp::field::content_type, "application/x-ndjson");
    std::string out;
    for (const auto& r : *list) {
      core::append_json(out, record_json(r, true));
      out.push_back('\n');
    }
    res.body() = std::move(out);
    res.prepare_payload();
    co_return res;
  }
  // POST /api/v1/quarantine/replay {"ids": [...]} | {"reason": ..., "device": ..., "from": ..., "to": ...}
  if (parts.size() == 4 && what == "replay") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    boost::system::error_code ec;
    auto doc = json::parse(body, ec);
    if (ec || !doc.is_object()) {
      co_return error_response(400, "bad_request", "body must be a JSON object: {\"ids\": [1, 2]} or {\"reason\": \"unknown_metric\"}", ver);
    }
    const auto& o = doc.as_object();
    std::vector<uint64_t> ids;
    if (const auto* given = o.if_contains("ids")) {
      if (!given->is_array()) co_return error_response(400, "bad_request", "ids must be an array of numbers", ver);
      for (const auto& v : given->as_array()) {
        if (!v.is_int64() || v.as_int64() <= 0) co_return error_response(400, "bad_request", "ids must be positive numbers", ver);
        ids.push_back(static_cast<uint64_t>(v.as_int64()));
      }
      if (o.size() != 1) co_return error_response(400, "bad_request", "give either ids or a filter (reason, device, from, to)", ver);
    } else {
      std::map<std::string, std::string> fp;
      for (const auto& [k, v] : o) {
        if (k != "reason" && k != "device" && k != "from" && k != "to") {
          co_return error_response(400, "bad_request", "unknown key '" + std::string(k) + "' (ids, reason, device, from, to)", ver);
        }
        if (!v.is_string()) co_return error_response(400, "bad_request", std::string(k) + " must be a string", ver);
        fp[std::string(k)] = std::string(v.as_string());
      }
      if (fp.empty()) co_return error_response(400, "bad_request", "give ids or at least one of reason, device, from, to", ver);
      auto f = filter_of(fp, 100'000);
      if (!f) co_return to_http_error(f.error(), ver);
      f->replayed = false;
      auto list = quarantine.list(*f);
      if (!list) co_return to_http_error(list.error(), ver);
      for (const auto& r : *list) ids.push_back(r.id);
    }
    auto result = co_await replay(registry, pipeline, config, ids);
    registry::AuditEntry audit;
    audit.at_ns = detail::now_ns();
    audit.actor = actor;
    audit.action = "quarantine.replay";
    audit.subject = "quarantine";
    audit.detail = core::to_json(json::object{{"requested", ids.size()}, {"stored", result.at("stored")},
                                              {"rejected", result.at("rejected")}, {"skipped", result.at("skipped")}});
    (void)registry.append_audit(audit);
    co_return detail::json_response(200, result, ver);
  }
  // GET /api/v1/quarantine/{id}
  if (parts.size() == 4) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    uint64_t id = 0;
    auto [p, ec] = std::from_chars(what.data(), what.data() + what.size(), id);
    if (ec != std::errc() || p != what.data() + what.size()) {
      co_return error_response(400, "bad_request", "'" + what + "' is not a quarantine id", ver);
    }
    auto r = quarantine.get(id);
    if (!r) co_return to_http_error(r.error(), ver);
    co_return detail::json_response(200, record_json(*r, true), ver);
  }
  co_return error_response(404, "not_found", "no such route", ver);
}

}  // namespace fieldline::api
