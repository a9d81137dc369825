// Documents versioned per profile (detector documents, feature views): applying one, listing
// the profiles' latest versions, a profile's history, one version's text. Contracts have
// their own routes (they are checked for compatibility).
#include <boost/json.hpp>

#include "fieldline/api/api.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using transport::http::error_response;
using transport::http::Response;

namespace {

json::object version_json(const registry::ContractVersion& v) {
  return json::object{{"profile", v.profile}, {"version", v.version}, {"created", core::format_rfc3339(v.created_ns)}, {"created_by", v.created_by}};
}

}  // namespace

Response profile_documents_route(const ProfileDocuments& d, bhttp::verb method, const std::vector<std::string>& parts, size_t base,
                                 const std::string& body, const std::string& actor, unsigned ver) {
  if (parts.size() == base) {
    if (method == bhttp::verb::post) {
      auto checked = d.check(body);
      if (!checked) return to_http_error(checked.error(), ver);
      const auto& [profile, summary] = *checked;
      if (profile.empty()) return error_response(400, "invalid_argument", "profile: missing (the profile the " + d.noun + " is for)", ver);
      auto history = d.history(profile);
      if (!history) return to_http_error(history.error(), ver);
      if (!history->empty() && history->back().document == body) {
        auto out = version_json(history->back());
        out["new_version"] = false;
        return detail::json_response(200, out, ver);
      }
      registry::ContractVersion v;
      v.profile = profile;
      v.version = history->empty() ? 1 : history->back().version + 1;
      v.document = body;
      v.created_ns = detail::now_ns();
      v.created_by = actor;
      registry::AuditEntry audit{0, v.created_ns, actor, d.audit_action, d.subject + ":" + v.profile + "@" + std::to_string(v.version), summary};
      if (auto st = d.add(v, audit); !st) return to_http_error(st.error(), ver);
      d.publish(v);
      auto out = version_json(v);
      out["new_version"] = true;
      return detail::json_response(201, out, ver);
    }
    if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET or POST", ver);
    auto profiles = d.profiles();
    if (!profiles) return to_http_error(profiles.error(), ver);
    json::array out;
    for (const auto& p : *profiles) {
      auto h = d.history(p);
      if (!h) return to_http_error(h.error(), ver);
      if (!h->empty()) out.push_back(version_json(h->back()));
    }
    return detail::json_response(200, json::object{{d.list_key, std::move(out)}}, ver);
  }
  if (method != bhttp::verb::get) return error_response(405, "method_not_allowed", "use GET", ver);
  const std::string& profile = parts[base];
  auto history = d.history(profile);
  if (!history) return to_http_error(history.error(), ver);
  if (history->empty()) return error_response(404, "not_found", "no " + d.noun + " for profile '" + profile + "' (" + d.absent + ")", ver);
  if (parts.size() == base + 1) {
    json::array versions;
    for (const auto& v : *history) versions.push_back(version_json(v));
    return detail::json_response(200, json::object{{"profile", profile}, {"versions", std::move(versions)}}, ver);
  }
  if (parts.size() == base + 3 && parts[base + 1] == "versions") {
    const registry::ContractVersion* found = nullptr;
    for (const auto& v : *history) {
      if (parts[base + 2] == "latest" ? &v == &history->back() : std::to_string(v.version) == parts[base + 2]) found = &v;
    }
    if (!found) return error_response(404, "not_found", "'" + profile + "' has no " + d.noun + " version " + parts[base + 2], ver);
    auto out = version_json(*found);
    out["document"] = found->document;
    return detail::json_response(200, out, ver);
  }
  return error_response(404, "not_found", "no such " + d.noun + " route", ver);
}

}  // namespace fieldline::api
