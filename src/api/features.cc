// Feature views (versioned per profile) and a device's online features.
#include <boost/json.hpp>

#include <cmath>

#include "fieldline/api/api.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "responses.h"

namespace fieldline::api {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using transport::http::Response;

namespace {

void publish_view(ml::FeatureBook& book, const std::string& profile, int64_t version, ml::FeatureView view) {
  auto entry = std::make_shared<ml::ProfileFeatures>();
  entry->version = version;
  entry->view = std::make_shared<const ml::FeatureView>(std::move(view));
  book.publish(profile, std::move(entry), [version](const ml::ProfileFeatures& current) { return current.version >= version; });
}

}  // namespace

Status load_feature_views(registry::Registry& registry, ml::FeatureBook& book) {
  FL_TRY(profiles, registry.feature_view_profiles());
  for (const auto& p : profiles) {
    FL_TRY(history, registry.feature_view_history(p));
    if (history.empty()) continue;
    auto view = ml::parse_feature_view(history.back().document);
    if (!view) return core::make_error(core::Errc::corrupt, "feature view of '" + p + "': " + view.error().message());
    publish_view(book, p, history.back().version, std::move(*view));
  }
  return {};
}

Response feature_views_route(registry::Registry& registry, ml::FeatureBook& book, bhttp::verb method, const std::vector<std::string>& parts,
                             const std::string& body, const std::string& actor, unsigned ver) {
  ProfileDocuments d;
  d.noun = "feature view";
  d.list_key = "views";
  d.audit_action = "features.apply";
  d.subject = "features";
  d.absent = "its devices have no features";
  d.history = [&registry](const std::string& p) { return registry.feature_view_history(p); };
  d.profiles = [&registry] { return registry.feature_view_profiles(); };
  d.add = [&registry](const registry::ContractVersion& v, const registry::AuditEntry& a) { return registry.add_feature_view_version(v, a); };
  std::optional<ml::FeatureView> parsed;
  d.check = [&parsed](const std::string& text) -> Result<std::pair<std::string, std::string>> {
    auto view = ml::parse_feature_view(text);
    if (!view) return view.error();
    parsed = std::move(*view);
    return std::pair{parsed->profile, "view " + parsed->name + ", " + std::to_string(parsed->feature_names().size()) + " features"};
  };
  d.publish = [&book, &parsed](const registry::ContractVersion& v) { publish_view(book, v.profile, v.version, std::move(*parsed)); };
  return profile_documents_route(d, method, parts, 4, body, actor, ver);
}

json::object features_json(const std::string& device, const ml::OnlineFeatures::Reading& r) {
  json::object values;
  for (size_t i = 0; i < r.names.size(); ++i) {
    // JSON has no NaN: a feature without data is null.
    if (std::isnan(r.values[i])) values[r.names[i]] = nullptr;
    else values[r.names[i]] = r.values[i];
  }
  return json::object{{"device", device},     {"profile", r.profile}, {"view", r.view}, {"view_version", r.version},
                      {"as_of", core::format_rfc3339(r.as_of_ns)}, {"warm", r.warm}, {"features", std::move(values)}};
}

json::object prediction_json(const ml::Prediction& p) {
  json::array top;
  for (const auto& [feature, contribution] : p.top) top.push_back(json::object{{"feature", feature}, {"contribution", contribution}});
  return json::object{{"device", p.device}, {"model", p.model},   {"version", p.version},
                      {"as_of", core::format_rfc3339(p.as_of_ns)}, {"value", p.value}, {"top_contributions", std::move(top)}};
}

}  // namespace fieldline::api
