// The model registry's routes: training from stored data, versions, stages (promotion,
// rollback), evaluation. Training sets come from the feature store (features.cc's export
// route uses the same function).
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cmath>

#include "fieldline/api/api.h"
#include "fieldline/core/async.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/time.h"
#include "fieldline/ml/training_set.h"
#include "responses.h"

namespace fieldline::api {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using transport::http::error_response;
using transport::http::Response;

asio::awaitable<Result<ml::TrainingSet>> stored_training_set(registry::Registry& registry, ingest::Pipeline& pipeline,
                                                             std::shared_ptr<const ml::ProfileFeatures> view, std::string profile,
                                                             std::string label, ml::LabelKind kind, int64_t from, int64_t to) {
  auto devices = registry.list_devices();
  if (!devices) co_return devices.error();
  std::vector<ml::DeviceData> data;
  std::vector<std::vector<ml::Label>> labels;
  const auto inputs = view->view->inputs();
  auto numeric = [](const std::vector<ingest::ReadSample>& samples, auto make) {
    for (const auto& s : samples) {
      double x = 0;
      if (tsdb::numeric_value(s.value, x)) make(s.ts, x);
    }
  };
  auto event = ml::parse_event_label(label);
  if (!event) co_return event.error();
  for (const auto& d : *devices) {
    if (d.profile != profile) continue;
    ml::DeviceData dd{d.id, {}};
    for (const auto& metric : inputs) {
      auto job = pipeline.read(d.id, metric, from, to);
      auto samples = co_await std::move(job);
      if (!samples) co_return samples.error();
      auto& out = dd.metrics.emplace_back(metric, std::vector<ml::Sample>{}).second;
      numeric(*samples, [&out](int64_t ts, double x) { out.push_back({ts, x}); });
    }
    std::vector<ml::Label> rows;
    if (*event) {
      // Rows at the samples of the view's first metric (the device was reporting), labelled
      // from the event metric's samples; the data's end bounds what is known.
      auto job = pipeline.read(d.id, (*event)->metric, from, to);
      auto happened = co_await std::move(job);
      if (!happened) co_return happened.error();
      std::vector<int64_t> times, events;
      int64_t observed_until = INT64_MIN;
      for (const auto& [metric, samples] : dd.metrics) {
        if (!samples.empty()) observed_until = std::max(observed_until, samples.back().ts_ns);
      }
      if (!dd.metrics.empty()) {
        for (const auto& s : dd.metrics.front().second) times.push_back(s.ts_ns);
      }
      for (const auto& s : *happened) events.push_back(s.ts);
      rows = ml::event_labels(times, events, **event, observed_until, kind);
    } else {
      auto job = pipeline.read(d.id, label, from, to);
      auto targets = co_await std::move(job);
      if (!targets) co_return targets.error();
      numeric(*targets, [&rows](int64_t ts, double x) { rows.push_back({ts, x}); });
    }
    data.push_back(std::move(dd));
    labels.push_back(std::move(rows));
  }
  co_return ml::build_training_set(*view->view, view->version, data, labels, kind);
}

namespace {

json::object model_json(const registry::ModelVersion& v) {
  boost::system::error_code ec;
  auto metrics = json::parse(v.metrics, ec);
  return json::object{{"name", v.name},
                      {"version", v.version},
                      {"profile", v.profile},
                      {"view_version", v.view_version},
                      {"runtime", v.runtime},
                      {"label", v.label},
                      {"training_set_sha256", v.training_set_sha256},
                      {"artifact_sha256", v.artifact_sha256},
                      {"metrics", ec ? json::value(json::object{}) : metrics},
                      {"created", core::format_rfc3339(v.created_ns)},
                      {"created_by", v.created_by},
                      {"stage", v.stage},
                      {"stage_changed", core::format_rfc3339(v.stage_changed_ns)}};
}

// A version's artifact, checked against the checksum it was saved with, loaded, and checked
// against the profile's current feature view: what promotion refuses, serving never meets.
Result<std::shared_ptr<const ml::Model>> load_checked(const registry::ModelVersion& v, const ml::FeatureBook& views) {
  if (ml::sha256_hex(v.artifact) != v.artifact_sha256) {
    return core::make_error(core::Errc::corrupt, "model " + v.name + " version " + std::to_string(v.version) +
                                                     ": the artifact does not match its checksum (the registry entry is damaged)");
  }
  auto view = views.find(v.profile);
  if (!view) return core::make_error(core::Errc::failed_precondition, "profile '" + v.profile + "' has no feature view any more");
  if (view->version != v.view_version) {
    return core::make_error(core::Errc::failed_precondition,
                            "model " + v.name + " version " + std::to_string(v.version) + " was trained on feature view version " +
                                std::to_string(v.view_version) + " of '" + v.profile + "', which is at version " +
                                std::to_string(view->version) + " now: train it again");
  }
  const size_t width = view->view->feature_names().size();
  if (v.runtime != "xgboost" && v.runtime != "linear") return core::make_error(core::Errc::invalid_argument, "unknown runtime '" + v.runtime + "'");
  auto model = v.runtime == "linear" ? ml::load_linear(v.artifact, width) : ml::load_xgboost(v.artifact, width);
  if (!model) return model.error();
  return std::shared_ptr<const ml::Model>(std::move(*model));
}

void serve(ml::ModelBook& book, const registry::ModelVersion& v, std::shared_ptr<const ml::Model> model) {
  auto entry = std::make_shared<ml::ServingModel>();
  entry->name = v.name;
  entry->profile = v.profile;
  entry->version = v.version;
  entry->view_version = v.view_version;
  entry->model = std::move(model);
  book.publish(v.name, std::move(entry), [](const ml::ServingModel&) { return false; });
}

struct Scores {
  double rmse = 0, mae = 0;
  size_t rows = 0;
};
Scores score(const std::vector<float>& predicted, const ml::TrainingSet& set, const std::vector<size_t>& rows) {
  Scores s;
  for (size_t i = 0; i < rows.size(); ++i) {
    const double d = predicted[i] - set.rows[rows[i]].label;
    s.rmse += d * d;
    s.mae += std::fabs(d);
  }
  s.rows = rows.size();
  if (s.rows) {
    s.rmse = std::sqrt(s.rmse / static_cast<double>(s.rows));
    s.mae /= static_cast<double>(s.rows);
  }
  return s;
}

std::vector<float> matrix(const ml::TrainingSet& set, const std::vector<size_t>& rows) {
  std::vector<float> x;
  x.reserve(rows.size() * set.features.size());
  for (size_t r : rows) {
    for (double f : set.rows[r].features) x.push_back(static_cast<float>(f));
  }
  return x;
}

Result<std::pair<int64_t, int64_t>> range_of(const json::object& o) {
  int64_t from = 0, to = INT64_MAX;
  const int64_t now = detail::now_ns();
  for (const char* key : {"from", "to"}) {
    if (!o.contains(key)) continue;
    const auto* text = o.at(key).if_string();
    if (!text) return core::make_error(core::Errc::invalid_argument, std::string(key) + ": expected a time string");
    auto t = core::parse_time(std::string(*text), now, core::EpochUnit::milliseconds);
    if (!t) return core::make_error(core::Errc::invalid_argument, std::string(key) + ": " + t.error().message());
    (std::string(key) == "from" ? from : to) = *t;
  }
  return std::make_pair(from, to);
}

}  // namespace

Result<std::vector<std::string>> load_models(registry::Registry& registry, const ml::FeatureBook& views, ml::ModelBook& book) {
  std::vector<std::string> problems;
  FL_TRY(names, registry.model_names());
  for (const auto& name : names) {
    FL_TRY(history, registry.model_history(name, true));
    for (const auto& v : history) {
      if (v.stage != "production") continue;
      // A production model that no longer passes its checks is not served, and the server
      // starts anyway: an operator rolls back or promotes another version.
      auto model = load_checked(v, views);
      if (!model) problems.push_back(model.error().message());
      else serve(book, v, std::move(*model));
    }
  }
  return problems;
}

asio::awaitable<Response> models_route(registry::Registry& registry, ingest::Pipeline& pipeline, const ml::FeatureBook& views,
                                       ml::ModelBook& book, asio::thread_pool& training, bhttp::verb method, std::vector<std::string> parts,
                                       std::string body, std::string actor, unsigned ver) {
  json::object args;
  if (method == bhttp::verb::post && !body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) co_return error_response(400, "bad_request", "the body must be a JSON object", ver);
    args = std::move(v.as_object());
  }
  auto text = [&args](const char* key, const std::string& fallback = "") {
    const auto* v = args.contains(key) ? args.at(key).if_string() : nullptr;
    return v ? std::string(*v) : fallback;
  };
  // GET /api/v1/models: each model's versions in production and its latest.
  if (parts.size() == 3) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto names = registry.model_names();
    if (!names) co_return to_http_error(names.error(), ver);
    json::array out;
    for (const auto& n : *names) {
      auto h = registry.model_history(n, false);
      if (!h) co_return to_http_error(h.error(), ver);
      json::object o{{"name", n}, {"latest", h->back().version}, {"profile", h->back().profile}, {"production", nullptr}};
      for (const auto& v : *h) {
        if (v.stage == "production") o["production"] = v.version;
      }
      out.push_back(std::move(o));
    }
    co_return detail::json_response(200, json::object{{"models", std::move(out)}}, ver);
  }
  const std::string name = parts[3];
  // POST /api/v1/models/{name}/train {"profile", "label", "kind", "from", "to", "rounds", "max_depth", "eta", "hold_out"}
  if (parts.size() == 5 && parts[4] == "train") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    const std::string profile = text("profile"), label = text("label"), kind_text = text("kind", "regression"),
                      runtime = text("runtime", "xgboost");
    if (runtime != "xgboost" && runtime != "linear") co_return error_response(400, "bad_request", "runtime: xgboost or linear", ver);
    if (profile.empty() || label.empty()) co_return error_response(400, "bad_request", "profile and label are required", ver);
    if (kind_text != "regression" && kind_text != "classification") co_return error_response(400, "bad_request", "kind: regression or classification", ver);
    auto range = range_of(args);
    if (!range) co_return to_http_error(range.error(), ver);
    auto view = views.find(profile);
    if (!view) co_return error_response(404, "not_found", "profile '" + profile + "' has no feature view", ver);
    const auto kind = kind_text == "classification" ? ml::LabelKind::classification : ml::LabelKind::regression;
    auto job = stored_training_set(registry, pipeline, view, profile, label, kind, range->first, range->second);
    auto set = co_await std::move(job);
    if (!set) co_return to_http_error(set.error(), ver);
    ml::XgboostOptions options;
    if (kind == ml::LabelKind::classification) options.objective = "binary:logistic";
    if (args.contains("rounds") && args.at("rounds").is_int64()) options.rounds = static_cast<int>(std::clamp<int64_t>(args.at("rounds").as_int64(), 1, 5000));
    if (args.contains("max_depth") && args.at("max_depth").is_int64()) options.max_depth = static_cast<int>(std::clamp<int64_t>(args.at("max_depth").as_int64(), 1, 16));
    if (args.contains("eta") && args.at("eta").is_number()) options.eta = std::clamp(args.at("eta").to_number<double>(), 1e-4, 1.0);
    // Held out: every fifth device (in name order), when there are five or more, so the
    // metrics say how the model does on machines it has not seen; "hold_out": false trains
    // on every device (when the test is elsewhere, as in fieldline eval cmapss).
    const bool hold_out = !args.contains("hold_out") || !args.at("hold_out").is_bool() || args.at("hold_out").as_bool();
    std::vector<size_t> fit, held;
    const auto& devices = set->lineage.devices;
    for (size_t r = 0; r < set->rows.size(); ++r) {
      const size_t d = static_cast<size_t>(std::find(devices.begin(), devices.end(), set->rows[r].device) - devices.begin());
      (hold_out && devices.size() >= 5 && d % 5 == 4 ? held : fit).push_back(r);
    }
    std::vector<float> y;
    for (size_t r : fit) y.push_back(static_cast<float>(set->rows[r].label));
    auto x = matrix(*set, fit);
    const size_t width = set->features.size();
    // Off the HTTP threads: training takes seconds.
    const ml::LinearOptions linear{.logistic = kind == ml::LabelKind::classification, .l2 = 1.0};
    auto train = core::on_executor(training.get_executor(), [&x, width, &y, &options, &linear, &runtime] {
      return runtime == "linear" ? ml::train_linear(x, width, y, linear) : ml::train_xgboost(x, width, y, options);
    });
    const auto started = std::chrono::steady_clock::now();
    auto model = co_await std::move(train);
    if (!model) co_return to_http_error(model.error(), ver);
    json::object metrics{{"rows", fit.size()}, {"held_out_rows", held.size()}, {"features", width},
                         {"training_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    if (runtime == "xgboost") metrics["rounds"] = options.rounds;
    for (const auto& [which, rows] : {std::pair<const char*, const std::vector<size_t>*>{"training", &fit}, {"held_out", &held}}) {
      if (rows->empty()) continue;
      std::vector<float> predicted;
      auto xs = matrix(*set, *rows);
      if (auto st = (*model)->predict(xs.data(), rows->size(), predicted); !st) co_return to_http_error(st.error(), ver);
      const Scores s = score(predicted, *set, *rows);
      metrics[std::string(which) + "_rmse"] = s.rmse;
      metrics[std::string(which) + "_mae"] = s.mae;
    }
    auto artifact = (*model)->save();
    if (!artifact) co_return to_http_error(artifact.error(), ver);
    registry::ModelVersion v;
    v.name = name;
    v.profile = profile;
    v.view_version = view->version;
    v.runtime = runtime;
    v.artifact = std::move(*artifact);
    v.artifact_sha256 = ml::sha256_hex(v.artifact);
    v.training_set_sha256 = set->sha256;
    v.label = label;
    v.metrics = core::to_json(metrics);
    v.created_ns = detail::now_ns();
    v.created_by = actor;
    registry::AuditEntry audit{0, v.created_ns, actor, "models.train", "model:" + name,
                               "profile " + profile + ", view version " + std::to_string(view->version) + ", training set " + set->sha256};
    auto version = registry.add_model_version(v, audit);
    if (!version) co_return to_http_error(version.error(), ver);
    v.version = *version;
    v.stage_changed_ns = v.created_ns;
    co_return detail::json_response(201, model_json(v), ver);
  }
  auto history = registry.model_history(name, true);
  if (!history) co_return to_http_error(history.error(), ver);
  if (history->empty()) co_return error_response(404, "not_found", "no model named '" + name + "'", ver);
  auto find = [&](const std::string& version) -> const registry::ModelVersion* {
    for (const auto& v : *history) {
      if (version == "latest" ? &v == &history->back() : std::to_string(v.version) == version) return &v;
    }
    return nullptr;
  };
  // GET /api/v1/models/{name}: its versions and stage changes.
  if (parts.size() == 4) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    json::array versions, changes;
    for (const auto& v : *history) versions.push_back(model_json(v));
    auto log = registry.model_stage_changes(name);
    if (!log) co_return to_http_error(log.error(), ver);
    for (const auto& c : *log) {
      changes.push_back(json::object{{"version", c.version}, {"from", c.from_stage}, {"to", c.to_stage}, {"at", core::format_rfc3339(c.at_ns)},
                                     {"by", c.by}, {"reason", c.reason}});
    }
    co_return detail::json_response(200, json::object{{"name", name}, {"versions", std::move(versions)}, {"stage_changes", std::move(changes)}}, ver);
  }
  // POST /api/v1/models/{name}/rollback {"reason"}: the version in production before the
  // current one is in production again; the current one is archived.
  if (parts.size() == 5 && parts[4] == "rollback") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    const registry::ModelVersion* current = nullptr;
    for (const auto& v : *history) {
      if (v.stage == "production") current = &v;
    }
    if (!current) co_return error_response(409, "conflict", "model " + name + " has no version in production to roll back", ver);
    auto log = registry.model_stage_changes(name);
    if (!log) co_return to_http_error(log.error(), ver);
    const registry::ModelVersion* previous = nullptr;
    for (auto it = log->rbegin(); it != log->rend() && !previous; ++it) {
      if (it->from_stage == "production" && it->version != current->version) previous = find(std::to_string(it->version));
    }
    if (!previous) co_return error_response(409, "conflict", "model " + name + " has had no other version in production", ver);
    auto model = load_checked(*previous, views);
    if (!model) co_return to_http_error(model.error(), ver);
    const int64_t now = detail::now_ns();
    const std::string reason = text("reason");
    registry::AuditEntry audit{0, now, actor, "models.rollback", "model:" + name,
                               "version " + std::to_string(current->version) + " -> " + std::to_string(previous->version) +
                                   (reason.empty() ? "" : ": " + reason)};
    if (auto st = registry.set_model_stages(name, {{current->version, "archived"}, {previous->version, "production"}}, actor, reason, audit); !st) {
      co_return to_http_error(st.error(), ver);
    }
    serve(book, *previous, std::move(*model));
    co_return detail::json_response(200, json::object{{"name", name}, {"production", previous->version}, {"archived", current->version}}, ver);
  }
  if (parts.size() < 6 || parts[4] != "versions") co_return error_response(404, "not_found", "no such models route", ver);
  const registry::ModelVersion* v = find(parts[5]);
  if (!v) co_return error_response(404, "not_found", "model " + name + " has no version " + parts[5], ver);
  // GET /api/v1/models/{name}/versions/{v|latest}[?artifact]
  if (parts.size() == 6) {
    if (method != bhttp::verb::get) co_return error_response(405, "method_not_allowed", "use GET", ver);
    auto out = model_json(*v);
    out["artifact_intact"] = ml::sha256_hex(v->artifact) == v->artifact_sha256;
    co_return detail::json_response(200, out, ver);
  }
  // POST .../promote {"stage": "production"|"shadow"|"candidate"|"archived", "reason"}: one
  // version per name in production and one in shadow; the one it replaces is archived.
  if (parts.size() == 7 && parts[6] == "promote") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    const std::string stage = text("stage", "production"), reason = text("reason");
    if (stage != "production" && stage != "shadow" && stage != "candidate" && stage != "archived") {
      co_return error_response(400, "bad_request", "stage: production, shadow, candidate or archived", ver);
    }
    std::shared_ptr<const ml::Model> model;
    if (stage == "production" || stage == "shadow") {
      auto loaded = load_checked(*v, views);
      if (!loaded) co_return to_http_error(loaded.error(), ver);
      model = std::move(*loaded);
    }
    std::vector<std::pair<int64_t, std::string>> moves;
    for (const auto& other : *history) {
      if (other.version != v->version && other.stage == stage && (stage == "production" || stage == "shadow")) moves.emplace_back(other.version, "archived");
    }
    moves.emplace_back(v->version, stage);
    const int64_t now = detail::now_ns();
    registry::AuditEntry audit{0, now, actor, "models.promote", "model:" + name + "@" + std::to_string(v->version),
                               v->stage + " -> " + stage + (reason.empty() ? "" : ": " + reason)};
    if (auto st = registry.set_model_stages(name, moves, actor, reason, audit); !st) co_return to_http_error(st.error(), ver);
    if (stage == "production") serve(book, *v, std::move(model));
    else if (v->stage == "production") book.publish(name, nullptr, [](const ml::ServingModel&) { return false; });
    co_return detail::json_response(200, json::object{{"name", name}, {"version", v->version}, {"stage", stage}}, ver);
  }
  // POST .../evaluate {"from", "to"}: the version's metrics on a training set built now.
  if (parts.size() == 7 && parts[6] == "evaluate") {
    if (method != bhttp::verb::post) co_return error_response(405, "method_not_allowed", "use POST", ver);
    auto range = range_of(args);
    if (!range) co_return to_http_error(range.error(), ver);
    auto model = load_checked(*v, views);
    if (!model) co_return to_http_error(model.error(), ver);
    auto view = views.find(v->profile);
    auto job = stored_training_set(registry, pipeline, view, v->profile, v->label, ml::LabelKind::regression, range->first, range->second);
    auto set = co_await std::move(job);
    if (!set) co_return to_http_error(set.error(), ver);
    std::vector<size_t> all(set->rows.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    auto x = matrix(*set, all);
    std::vector<float> predicted;
    if (auto st = (*model)->predict(x.data(), all.size(), predicted); !st) co_return to_http_error(st.error(), ver);
    const Scores s = score(predicted, *set, all);
    co_return detail::json_response(200, json::object{{"name", name}, {"version", v->version}, {"rows", s.rows}, {"rmse", s.rmse},
                                                      {"mae", s.mae}, {"training_set_sha256", set->sha256}}, ver);
  }
  co_return error_response(404, "not_found", "no such models route", ver);
}

}  // namespace fieldline::api
