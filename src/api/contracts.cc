// Data contract routes: apply (with the compatibility check), history, versions, diff; and
// the audit log that forced changes are written to.
#include <boost/json.hpp>

#include <algorithm>

#include "fieldline/api/api.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/contract.h"
#include "responses.h"

namespace fieldline::api {
namespace {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using transport::http::error_response;
using transport::http::Response;

json::array changes_json(const std::vector<ingest::ContractChange>& changes) {
  json::array out;
  for (const auto& c : changes) out.push_back(json::object{{"field", c.field}, {"detail", c.detail}, {"breaking", c.breaking}});
  return out;
}

json::object version_json(const registry::ContractVersion& v) {
  json::object o{{"profile", v.profile},
                 {"version", v.version},
                 {"created", core::format_rfc3339(v.created_ns)},
                 {"created_by", v.created_by},
                 {"forced", v.forced}};
  if (!v.reason.empty()) o["reason"] = v.reason;
  return o;
}

// The stored document of a version: canonical JSON, so it parses.
Result<ingest::Contract> contract_of(const registry::ContractVersion& v) { return ingest::parse_contract(v.document); }

Response apply(registry::Registry& registry, ingest::ContractBook& book, const std::map<std::string, std::string>& params,
               const std::string& body,
               const std::string& actor, unsigned ver) {
  auto parsed = ingest::parse_contract(body);
  if (!parsed) return to_http_error(parsed.error(), ver);
  const bool force = params.count("force") && (params.at("force") == "true" || params.at("force") == "1");
  const std::string reason = params.count("reason") ? params.at("reason") : "";
  if (force && reason.empty()) {
    return error_response(400, "contract.reason_required", "a forced change needs a reason (?reason=...), for the audit log", ver);
  }
  auto history = registry.contract_history(parsed->profile);
  if (!history) return to_http_error(history.error(), ver);
  std::vector<ingest::ContractChange> changes;
  bool breaking = false;
  if (!history->empty()) {
    const auto& latest = history->back();
    auto previous = contract_of(latest);
    if (!previous) return to_http_error(previous.error(), ver);
    if (*previous == *parsed) {
      // Nothing changed: no new version.
      auto out = version_json(latest);
      out["created"] = false;
      return detail::json_response(200, out, ver);
    }
    changes = ingest::diff_contracts(*previous, *parsed);
    std::string what;
    for (const auto& c : changes) {
      if (c.breaking) what += (what.empty() ? "" : "; ") + c.field + " " + c.detail;
    }
    breaking = !what.empty();
    if (breaking && !force) {
      return error_response(409, "contract.incompatible",
                            "version " + std::to_string(latest.version + 1) + " of '" + parsed->profile +
                                "' would break compatibility: " + what + " (apply with force and a reason to override)",
                            ver);
    }
  }
  registry::ContractVersion v;
  v.profile = parsed->profile;
  v.version = history->empty() ? 1 : history->back().version + 1;
  v.document = ingest::canonical_json(*parsed);
  v.created_ns = detail::now_ns();
  v.created_by = actor;
  v.forced = force && breaking;
  v.reason = reason;
  registry::AuditEntry audit;
  audit.at_ns = v.created_ns;
  audit.actor = actor;
  audit.action = v.forced ? "contract.apply.forced" : "contract.apply";
  audit.subject = "contract:" + v.profile + "@" + std::to_string(v.version);
  audit.detail = core::to_json(json::object{{"reason", reason}, {"changes", changes_json(changes)}});
  if (auto st = registry.add_contract_version(v, audit); !st) return to_http_error(st.error(), ver);
  // Ingestion validates against it from the next message on: published as one object.
  book.publish(v.version, *parsed);
  auto out = version_json(v);
  out["created"] = true;
  out["changes"] = changes_json(changes);
  return detail::json_response(201, out, ver);
}

}  // namespace

Status check_required_tags(registry::Registry& registry, const std::string& profile, const registry::Tags& tags) {
  FL_TRY(history, registry.contract_history(profile));
  if (history.empty()) return {};
  FL_TRY(contract, contract_of(history.back()));
  std::string missing;
  for (const auto& t : contract.required_tags) {
    bool has = std::any_of(tags.begin(), tags.end(), [&](const auto& kv) { return kv.first == t; });
    if (!has) missing += (missing.empty() ? "" : ", ") + t;
  }
  if (missing.empty()) return {};
  return registry::make_error(registry::Errc::invalid_argument, "profile '" + profile + "' (contract version " +
                                                                     std::to_string(history.back().version) +
                                                                     ") requires the tags: " + missing);
}

Status load_contracts(registry::Registry& registry, ingest::ContractBook& book) {
  FL_TRY(profiles, registry.contract_profiles());
  for (const auto& profile : profiles) {
    FL_TRY(history, registry.contract_history(profile));
    if (history.empty()) continue;
    FL_TRY(contract, contract_of(history.back()));
    book.publish(history.back().version, std::move(contract));
  }
  return {};
}

Response contracts_route(registry::Registry& registry, ingest::ContractBook& book, bhttp::verb method, const std::vector<std::string>& parts,
                         const std::map<std::string, std::string>& params, const std::string& body, const std::string& actor,
                         unsigned ver) {
  auto param = [&](const char* k) -> const std::string* {
    auto it = params.find(k);
    return it == params.end() ? nullptr : &it->second;
  };
  if (parts[2] == "audit") {
    if (parts.size() != 3 || method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET /api/v1/audit", ver);
    size_t limit = 100;
    if (const auto* l = param("limit")) {
      try {
        limit = std::stoul(*l);
      } catch (...) {
        return error_response(400, "bad_request", "limit must be a number", ver);
      }
    }
    auto log = registry.audit_log(limit);
    if (!log) return to_http_error(log.error(), ver);
    json::array entries;
    for (const auto& e : *log) {
      entries.push_back(json::object{{"id", e.id}, {"at", core::format_rfc3339(e.at_ns)}, {"actor", e.actor},
                                     {"action", e.action}, {"subject", e.subject}, {"detail", e.detail}});
    }
    return detail::json_response(200, json::object{{"entries", std::move(entries)}}, ver);
  }
  if (parts.size() == 3) {
    if (method == bhttp::verb::post) return apply(registry, book, params, body, actor, ver);
    if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET or POST", ver);
    auto profiles = registry.contract_profiles();
    if (!profiles) return to_http_error(profiles.error(), ver);
    json::array out;
    for (const auto& p : *profiles) {
      auto h = registry.contract_history(p);
      if (!h) return to_http_error(h.error(), ver);
      if (!h->empty()) out.push_back(version_json(h->back()));
    }
    return detail::json_response(200, json::object{{"contracts", std::move(out)}}, ver);
  }
  if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET", ver);
  const std::string& profile = parts[3];
  auto history = registry.contract_history(profile);
  if (!history) return to_http_error(history.error(), ver);
  if (history->empty()) return error_response(404, "not_found", "no contract for profile '" + profile + "'", ver);
  auto find = [&](const std::string& which) -> const registry::ContractVersion* {
    if (which == "latest") return &history->back();
    for (const auto& v : *history) {
      if (std::to_string(v.version) == which) return &v;
    }
    return nullptr;
  };
  if (parts.size() == 4) {
    json::array versions;
    for (const auto& v : *history) versions.push_back(version_json(v));
    return detail::json_response(200, json::object{{"profile", profile}, {"versions", std::move(versions)}}, ver);
  }
  if (parts.size() == 6 && parts[4] == "versions") {
    const auto* v = find(parts[5]);
    if (!v) return error_response(404, "not_found", "'" + profile + "' has no version " + parts[5], ver);
    auto out = version_json(*v);
    out["contract"] = json::parse(v->document);
    return detail::json_response(200, out, ver);
  }
  if (parts.size() == 5 && parts[4] == "diff") {
    const auto* from = param("from");
    const auto* to = param("to");
    if (!from || !to) return error_response(400, "bad_request", "diff needs ?from=V1&to=V2", ver);
    const auto* a = find(*from);
    const auto* b = find(*to);
    if (!a || !b) return error_response(404, "not_found", "'" + profile + "' has no version " + (a ? *to : *from), ver);
    auto ca = contract_of(*a);
    auto cb = contract_of(*b);
    if (!ca || !cb) return to_http_error(ca ? cb.error() : ca.error(), ver);
    auto changes = ingest::diff_contracts(*ca, *cb);
    const bool compatible = !ingest::any_breaking(changes);
    return detail::json_response(200,
                                 json::object{{"profile", profile}, {"from", a->version}, {"to", b->version},
                                              {"compatible", compatible}, {"changes", changes_json(changes)}},
                                 ver);
  }
  return error_response(404, "not_found", "no such contract route", ver);
}

}  // namespace fieldline::api
