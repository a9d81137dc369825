// The `fieldline` command line: serve, config, device, query, export, import and tsdb tools.

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <iostream>
#include <sstream>

#include "client.h"
#include "eval_cmapss.h"
#include "simulate.h"
#include "demo.h"
#include "fieldline/analytics/nab.h"
#include "fieldline/analytics/skab.h"
#include "fieldline/ml/training_set.h"
#include "fieldline/core/config.h"
#include "fieldline/core/json.h"
#include "fieldline/core/log.h"
#include "fieldline/core/time.h"
#include "fieldline/ingest/contract.h"
#include "serve.h"
#include "tsdb_tools.h"

extern char** environ;

namespace fieldline::app {
namespace {

namespace json = boost::json;

struct ClientOptions {
  std::string server;
  std::string token;
  std::string format = "table";
};

void add_client_options(CLI::App* cmd, ClientOptions& o) {
  cmd->add_option("--server", o.server, "Server URL (env FIELDLINE_URL, default http://127.0.0.1:8080)");
  cmd->add_option("--token", o.token, "Admin or device token (env FIELDLINE_TOKEN)");
  cmd->add_option("--format", o.format, "Output: table, json or csv")->check(CLI::IsMember({"table", "json", "csv"}));
}

void resolve(ClientOptions& o) {
  if (o.server.empty()) o.server = std::getenv("FIELDLINE_URL") ? std::getenv("FIELDLINE_URL") : "http://127.0.0.1:8080";
  if (o.token.empty() && std::getenv("FIELDLINE_TOKEN")) o.token = std::getenv("FIELDLINE_TOKEN");
}

std::string enc(const std::string& s) { return boost::urls::encode(s, boost::urls::unreserved_chars); }

// Runs a request; on an HTTP error prints the server's message and returns a non-zero status.
int call(ClientOptions& o, const std::string& method, const std::string& target, const std::string& body,
         json::value* out, const std::string& content_type = "application/json") {
  resolve(o);
  auto r = http_request(o.server, o.token, method, target, body, content_type);
  if (!r) {
    std::fprintf(stderr, "error: %s\n", r.error().message().c_str());
    return 3;
  }
  if (r->status >= 300) {
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    std::string msg = r->body;
    if (!ec && v.is_object() && v.as_object().contains("error")) {
      const auto& e = v.as_object().at("error").as_object();
      msg = std::string(e.at("message").as_string()) + " (" + std::string(e.at("code").as_string()) + ")";
    }
    std::fprintf(stderr, "error: HTTP %u: %s\n", r->status, msg.c_str());
    return r->status == 401 || r->status == 403 ? 4 : r->status == 404 ? 5 : 6;
  }
  if (out) {
    boost::system::error_code ec;
    *out = r->body.empty() ? json::value() : json::parse(r->body, ec);
  }
  return 0;
}

std::string str(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return fieldline::core::to_json(v);
}

void print_devices(const json::array& devices, const std::string& format) {
  if (format == "json") {
    std::printf("%s\n", fieldline::core::to_json(devices).c_str());
    return;
  }
  if (format == "csv") std::printf("id,name,profile,state,tags,created,last_seen\n");
  else std::printf("%-24s %-16s %-12s %-9s %-30s %s\n", "ID", "PROFILE", "STATE", "", "TAGS", "LAST SEEN");
  for (const auto& d : devices) {
    const auto& o = d.as_object();
    std::string tags;
    for (const auto& [k, v] : o.at("tags").as_object()) tags += (tags.empty() ? "" : ",") + std::string(k) + "=" + str(v);
    if (format == "csv") {
      std::printf("%s,%s,%s,%s,\"%s\",%s,%s\n", str(o.at("id")).c_str(), str(o.at("name")).c_str(), str(o.at("profile")).c_str(),
                  str(o.at("state")).c_str(), tags.c_str(), str(o.at("created")).c_str(), str(o.at("last_seen")).c_str());
    } else {
      std::printf("%-24s %-16s %-12s %-9s %-30s %s\n", str(o.at("id")).c_str(), str(o.at("profile")).c_str(),
                  str(o.at("state")).c_str(), "", tags.c_str(), str(o.at("last_seen")).c_str());
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// fieldline contract validate FILE [--against OLD]: what a CI pipeline runs before applying.
// Exit 0: valid (and compatible with OLD when given); 1: invalid; 7: breaking against OLD.
int validate_contract(const std::string& file, const std::string& against) {
  auto contract = ingest::parse_contract(read_file(file));
  if (!contract) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), contract.error().context().c_str());
    return 1;
  }
  if (against.empty()) {
    std::printf("%s\n", ingest::canonical_json(*contract).c_str());
    return 0;
  }
  auto previous = ingest::parse_contract(read_file(against));
  if (!previous) {
    std::fprintf(stderr, "%s: %s\n", against.c_str(), previous.error().context().c_str());
    return 1;
  }
  const auto changes = ingest::diff_contracts(*previous, *contract);
  for (const auto& c : changes) std::printf("  %s %s: %s\n", c.breaking ? "BREAKING" : "ok      ", c.field.c_str(), c.detail.c_str());
  const bool breaking = ingest::any_breaking(changes);
  std::printf("%s\n", breaking ? "breaking: apply would need --force --reason" : "compatible");
  return breaking ? 7 : 0;
}

// fieldline contract apply|list|history|show|diff: one request, then JSON or a table.
int contract_command(ClientOptions& client, const std::string& action, const std::string& file, const std::string& profile,
                     const std::string& version, const std::string& v1, const std::string& v2, bool force,
                     const std::string& reason) {
  std::string method = "GET", target = "/api/v1/contracts", body;
  if (action == "apply") {
    method = "POST";
    if (force) target += "?force=true&reason=" + enc(reason);
    body = read_file(file);
  } else if (action == "history") {
    target += "/" + enc(profile);
  } else if (action == "show") {
    target += "/" + enc(profile) + "/versions/" + enc(version);
  } else if (action == "diff") {
    target += "/" + enc(profile) + "/diff?from=" + enc(v1) + "&to=" + enc(v2);
  }
  json::value out;
  if (int rc = call(client, method, target, body, &out, "text/plain")) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  auto print_changes = [](const json::value& changes) {
    for (const auto& c : changes.as_array()) {
      std::printf("  %s %s: %s\n", c.at("breaking").as_bool() ? "BREAKING" : "ok      ", str(c.at("field")).c_str(),
                  str(c.at("detail")).c_str());
    }
  };
  const auto& o = out.as_object();
  if (action == "apply") {
    if (!o.at("created").as_bool()) {
      std::printf("contract %s unchanged at version %s\n", str(o.at("profile")).c_str(), str(o.at("version")).c_str());
    } else {
      std::printf("contract %s version %s applied%s\n", str(o.at("profile")).c_str(), str(o.at("version")).c_str(),
                  o.at("forced").as_bool() ? " (forced)" : "");
      print_changes(o.at("changes"));
    }
  } else if (action == "list") {
    std::printf("%-24s %-8s %-30s %s\n", "PROFILE", "VERSION", "CREATED", "BY");
    for (const auto& c : o.at("contracts").as_array()) {
      std::printf("%-24s %-8s %-30s %s\n", str(c.at("profile")).c_str(), str(c.at("version")).c_str(), str(c.at("created")).c_str(),
                  str(c.at("created_by")).c_str());
    }
  } else if (action == "history") {
    std::printf("%-8s %-30s %-10s %-7s %s\n", "VERSION", "CREATED", "BY", "FORCED", "REASON");
    for (const auto& v : o.at("versions").as_array()) {
      const auto& e = v.as_object();
      std::printf("%-8s %-30s %-10s %-7s %s\n", str(e.at("version")).c_str(), str(e.at("created")).c_str(),
                  str(e.at("created_by")).c_str(), e.at("forced").as_bool() ? "yes" : "no",
                  e.contains("reason") ? str(e.at("reason")).c_str() : "");
    }
  } else if (action == "show") {
    std::printf("%s\n", fieldline::core::to_json(o.at("contract")).c_str());
  } else {
    std::printf("%s %s -> %s: %s\n", profile.c_str(), str(o.at("from")).c_str(), str(o.at("to")).c_str(),
                o.at("compatible").as_bool() ? "compatible" : "BREAKING");
    print_changes(o.at("changes"));
  }
  return 0;
}

// fieldline detectors|features apply|list|history|show: a profile's versioned document
// (detector document, feature view) under `collection`.
int documents_command(ClientOptions& client, const std::string& collection, const std::string& noun, const std::string& list_key,
                      const std::string& action, const std::string& file, const std::string& profile, const std::string& version) {
  std::string method = "GET", target = collection, body;
  if (action == "apply") {
    method = "POST";
    body = read_file(file);
  } else if (action == "history") {
    target += "/" + enc(profile);
  } else if (action == "show") {
    target += "/" + enc(profile) + "/versions/" + enc(version);
  }
  json::value out;
  if (int rc = call(client, method, target, body, &out, "text/plain")) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  const auto& o = out.as_object();
  if (action == "apply") {
    std::printf("%s of %s %s version %s\n", noun.c_str(), str(o.at("profile")).c_str(),
                o.at("new_version").as_bool() ? "applied as" : "unchanged at", str(o.at("version")).c_str());
  } else if (action == "show") {
    std::printf("%s", str(o.at("document")).c_str());
  } else {
    std::printf("%-24s %-8s %-30s %s\n", "PROFILE", "VERSION", "CREATED", "BY");
    for (const auto& v : o.at(action == "list" ? list_key : "versions").as_array()) {
      std::printf("%-24s %-8s %-30s %s\n", str(v.at("profile")).c_str(), str(v.at("version")).c_str(),
                  str(v.at("created")).c_str(), str(v.at("created_by")).c_str());
    }
  }
  return 0;
}

// fieldline kpi get: the values as a table (a column per range) or JSON.
struct KpiArgs {
  std::string profile, from, to, step, baseline_from, baseline_to, site;
};

int kpi_get(ClientOptions& client, const KpiArgs& a) {
  std::string target = "/api/v1/kpis?profile=" + enc(a.profile);
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"from", &a.from}, {"to", &a.to}, {"step", &a.step},
                                   {"baseline_from", &a.baseline_from}, {"baseline_to", &a.baseline_to}, {"site", &a.site}}) {
    if (!value->empty()) target += std::string("&") + key + "=" + enc(*value);
  }
  json::value out;
  if (int rc = call(client, "GET", target, "", &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  std::vector<std::pair<std::string, const json::object*>> columns;
  if (out.as_object().contains("baseline")) columns.emplace_back("baseline", &out.at("baseline").as_object());
  columns.emplace_back("current", &out.at("current").as_object());
  if (out.as_object().contains("series")) {
    for (const auto& s : out.at("series").as_array()) columns.emplace_back(str(s.at("from")).substr(0, 10), &s.as_object());
  }
  std::printf("KPI %s (version %s) of profile %s, %s .. %s\n", str(out.at("kpi")).c_str(), str(out.at("version")).c_str(),
              a.profile.c_str(), str(out.at("current").at("from")).c_str(), str(out.at("current").at("to")).c_str());
  std::printf("%-26s", "");
  for (const auto& [name, values] : columns) std::printf(" %14s", name.c_str());
  std::printf("\n");
  for (const char* key : {"devices", "failures", "maintenance", "unplanned_downtime_hours", "planned_downtime_hours", "mtbf_hours",
                          "mttr_hours", "availability", "maintenance_cost", "energy_per_output", "alert_precision"}) {
    std::printf("%-26s", key);
    for (const auto& [name, values] : columns) {
      const auto& v = values->at(key);
      if (v.is_null()) std::printf(" %14s", "-");
      else std::printf(" %14.4g", v.to_number<double>());
    }
    std::printf("\n");
  }
  return 0;
}

// GETs `target` (not JSON) and writes its body to `output` (stdout when empty or "-"); the
// body is kept in `body`. Returns the CLI's exit code.
int download(ClientOptions& client, const std::string& target, const std::string& output, std::string& body) {
  resolve(client);
  auto r = http_request(client.server, client.token, "GET", target);
  if (!r) {
    std::fprintf(stderr, "error: %s\n", r.error().message().c_str());
    return 3;
  }
  if (r->status >= 300) {
    std::fprintf(stderr, "error: HTTP %u: %s\n", r->status, r->body.c_str());
    return r->status == 401 || r->status == 403 ? 4 : 6;
  }
  if (output.empty() || output == "-") std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  else std::ofstream(output, std::ios::binary) << r->body;
  body = std::move(r->body);
  return 0;
}

// fieldline features export: a training set (CSV) to stdout or a file; its SHA-256 and size
// on stderr.
int features_export(ClientOptions& client, const std::string& profile, const std::string& label, const std::string& kind,
                    const std::string& from, const std::string& to, const std::string& output) {
  resolve(client);
  std::string target = "/api/v1/features/training-set?profile=" + enc(profile) + "&label=" + enc(label) + "&kind=" + enc(kind);
  if (!from.empty()) target += "&from=" + enc(from);
  if (!to.empty()) target += "&to=" + enc(to);
  std::string body;
  if (int rc = download(client, target, output, body)) return rc;
  const auto rows = static_cast<size_t>(std::count(body.begin(), body.end(), '\n'));
  std::fprintf(stderr, "%zu rows, sha256 %s\n", rows ? rows - 1 : 0, fieldline::ml::sha256_hex(body).c_str());
  return 0;
}

// fieldline model train|evaluate|promote|rollback|list|show: the model registry.
struct ModelArgs {
  std::string name, profile, label, kind = "regression", runtime = "xgboost", from, to, stage = "production", reason, version = "latest";
  int rounds = 0, max_depth = 0;
  double eta = 0;
};

void print_model(const json::object& v) {
  std::printf("%s version %s  %-10s profile %s (feature view v%s), label %s, by %s at %s\n", str(v.at("name")).c_str(),
              str(v.at("version")).c_str(), str(v.at("stage")).c_str(), str(v.at("profile")).c_str(), str(v.at("view_version")).c_str(),
              str(v.at("label")).c_str(), str(v.at("created_by")).c_str(), str(v.at("created")).c_str());
  std::printf("  training set %s, artifact %s\n  metrics %s\n", str(v.at("training_set_sha256")).c_str(), str(v.at("artifact_sha256")).c_str(),
              fieldline::core::to_json(v.at("metrics")).c_str());
}

int model_command(ClientOptions& client, const std::string& action, const ModelArgs& a) {
  std::string method = "POST", target = "/api/v1/models";
  json::object body;
  if (!a.from.empty()) body["from"] = a.from;
  if (!a.to.empty()) body["to"] = a.to;
  if (!a.reason.empty()) body["reason"] = a.reason;
  if (action == "list") {
    method = "GET";
  } else if (action == "show") {
    method = "GET";
    target += "/" + enc(a.name) + (a.version == "all" ? "" : "/versions/" + enc(a.version));
  } else if (action == "train") {
    target += "/" + enc(a.name) + "/train";
    body["profile"] = a.profile;
    body["label"] = a.label;
    body["kind"] = a.kind;
    body["runtime"] = a.runtime;
    if (a.rounds) body["rounds"] = a.rounds;
    if (a.max_depth) body["max_depth"] = a.max_depth;
    if (a.eta) body["eta"] = a.eta;
  } else if (action == "rollback") {
    target += "/" + enc(a.name) + "/rollback";
  } else {  // promote, evaluate
    target += "/" + enc(a.name) + "/versions/" + enc(a.version) + "/" + action;
    if (action == "promote") body["stage"] = a.stage;
  }
  json::value out;
  if (int rc = call(client, method, target, method == "GET" ? "" : fieldline::core::to_json(body), &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  const auto& o = out.as_object();
  if (action == "list") {
    std::printf("%-24s %-8s %-10s %s\n", "NAME", "LATEST", "PRODUCTION", "PROFILE");
    for (const auto& m : o.at("models").as_array()) {
      std::printf("%-24s %-8s %-10s %s\n", str(m.at("name")).c_str(), str(m.at("latest")).c_str(),
                  m.at("production").is_null() ? "-" : str(m.at("production")).c_str(), str(m.at("profile")).c_str());
    }
  } else if (action == "show" && a.version == "all") {
    for (const auto& v : o.at("versions").as_array()) print_model(v.as_object());
    for (const auto& c : o.at("stage_changes").as_array()) {
      std::printf("%s  version %s %s -> %s by %s %s\n", str(c.at("at")).c_str(), str(c.at("version")).c_str(), str(c.at("from")).c_str(),
                  str(c.at("to")).c_str(), str(c.at("by")).c_str(), str(c.at("reason")).c_str());
    }
  } else if (action == "show" || action == "train") {
    print_model(o);
  } else if (action == "rollback") {
    std::printf("%s: version %s in production again, version %s archived\n", a.name.c_str(), str(o.at("production")).c_str(),
                str(o.at("archived")).c_str());
  } else if (action == "promote") {
    std::printf("%s version %s is %s\n", a.name.c_str(), str(o.at("version")).c_str(), str(o.at("stage")).c_str());
  } else {
    std::printf("%s version %s on %s rows: RMSE %s, MAE %s (training set %s)\n", a.name.c_str(), str(o.at("version")).c_str(),
                str(o.at("rows")).c_str(), str(o.at("rmse")).c_str(), str(o.at("mae")).c_str(), str(o.at("training_set_sha256")).c_str());
  }
  return 0;
}

// fieldline features get DEVICE: its online features, one per line.
int features_get(ClientOptions& client, const std::string& device) {
  json::value out;
  if (int rc = call(client, "GET", "/api/v1/devices/" + enc(device) + "/features", "", &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  const auto& o = out.as_object();
  std::printf("%s: view %s version %s, as of %s\n", device.c_str(), str(o.at("view")).c_str(), str(o.at("view_version")).c_str(),
              str(o.at("as_of")).c_str());
  for (const auto& [name, value] : o.at("features").as_object()) {
    std::printf("  %-40s %s\n", std::string(name).c_str(), value.is_null() ? "-" : str(value).c_str());
  }
  return 0;
}

struct AlarmArgs {
  std::string id, text, state, device, type, severity, acknowledged, from, to, reason;
  size_t limit = 100;
};

void print_alarm_row(const json::object& a) {
  std::printf("%-6s %-8s %-9s %-5s %-20s %-14s %-30s %s\n", str(a.at("id")).c_str(), str(a.at("severity")).c_str(),
              str(a.at("state")).c_str(), a.at("acknowledged").as_bool() ? "ack" : "-", str(a.at("device")).c_str(),
              str(a.at("type")).c_str(), str(a.at("raised")).c_str(),
              str(a.at("evidence").at("explanation")).c_str());
}

// fieldline alarm list|show|ack|clear|comment, and maintenance windows.
int alarm_command(ClientOptions& client, const std::string& action, const AlarmArgs& a) {
  std::string method = "GET", target = "/api/v1/alarms", body;
  if (action == "list") {
    std::string q = "?limit=" + std::to_string(a.limit);
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"state", a.state}, {"device", a.device}, {"type", a.type}, {"severity", a.severity}, {"acknowledged", a.acknowledged}}) {
      if (!v.empty()) q += "&" + k + "=" + enc(v);
    }
    target += q;
  } else if (action == "show") {
    target += "/" + enc(a.id);
  } else if (action == "ack" || action == "clear" || action == "comment") {
    method = "POST";
    target += "/" + enc(a.id) + "/" + (action == "ack" ? std::string("acknowledge") : action);
    if (action == "comment") body = fieldline::core::to_json(json::object{{"text", a.text}});
  } else if (action == "maintenance") {
    method = "POST";
    target = "/api/v1/maintenance";
    body = fieldline::core::to_json(json::object{{"device", a.device}, {"from", a.from}, {"to", a.to}, {"reason", a.reason}});
  }
  json::value out;
  if (int rc = call(client, method, target, body, &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  const auto& o = out.as_object();
  if (action == "maintenance") {
    std::printf("maintenance window for %s from %s to %s\n", a.device.empty() ? "every device" : a.device.c_str(),
                str(o.at("from")).c_str(), str(o.at("to")).c_str());
    return 0;
  }
  std::printf("%-6s %-8s %-9s %-5s %-20s %-14s %-30s %s\n", "ID", "SEVERITY", "STATE", "ACK", "DEVICE", "TYPE", "RAISED",
              "EXPLANATION");
  if (action == "list") {
    for (const auto& x : o.at("alarms").as_array()) print_alarm_row(x.as_object());
    return 0;
  }
  print_alarm_row(o);
  if (action == "show") {
    std::printf("\noccurrences %s, last seen %s, score %s\n", str(o.at("occurrences")).c_str(), str(o.at("last_seen")).c_str(),
                str(o.at("evidence").at("score")).c_str());
    if (!o.at("runbook").as_string().empty()) std::printf("runbook: %s\n", str(o.at("runbook")).c_str());
    std::printf("evidence:\n");
    for (const auto& s : o.at("evidence").at("samples").as_array()) {
      std::printf("  %s  %s\n", str(s.as_array()[0]).c_str(), str(s.as_array()[1]).c_str());
    }
    for (const auto& c : o.at("comments").as_array()) {
      std::printf("comment by %s at %s: %s\n", str(c.at("by")).c_str(), str(c.at("at")).c_str(), str(c.at("text")).c_str());
    }
  }
  return 0;
}

// fieldline eval nab: the default detector set scored on a NAB-layout folder, with the
// published detectors' scores on the same files beside it when the folder has them.
int eval_nab(const std::string& dir, const std::string& format) {
  auto ev = fieldline::analytics::nab::evaluate(dir, [] { return std::make_unique<fieldline::analytics::Ensemble>(); });
  if (!ev) {
    std::fprintf(stderr, "error: %s\n", ev.error().message().c_str());
    return 2;
  }
  if (format == "json") {
    json::object o{{"files", ev->files.size()}, {"windows", ev->windows}, {"rows", ev->rows},
                   {"samples_per_second", ev->detect_seconds > 0 ? static_cast<double>(ev->rows) / ev->detect_seconds : 0.0}};
    json::object thresholds;
    for (const auto& p : ev->profiles) {
      o[p.name] = p.normalized;
      thresholds[p.name] = p.threshold;
    }
    o["thresholds"] = std::move(thresholds);
    std::printf("%s\n", fieldline::core::to_json(o).c_str());
    return 0;
  }
  std::printf("NAB on %zu files, %zu windows, %zu rows (%.1f M samples/s through the detectors)\n\n", ev->files.size(),
              ev->windows, ev->rows, ev->detect_seconds > 0 ? static_cast<double>(ev->rows) / ev->detect_seconds / 1e6 : 0.0);
  std::printf("%-28s %10s %10s %10s\n", "detector", "standard", "low FP", "low FN");
  std::printf("%-28s %10.2f %10.2f %10.2f\n", "fieldline (this run)", ev->profiles[0].normalized, ev->profiles[1].normalized,
              ev->profiles[2].normalized);
  std::ifstream published(dir + "/results/subset_normalized_scores.csv");
  std::string line;
  if (published && std::getline(published, line)) {
    while (std::getline(published, line)) {
      std::stringstream cells(line);
      std::string name, standard, low_fp, low_fn;
      std::getline(cells, name, ',');
      std::getline(cells, standard, ',');
      std::getline(cells, low_fp, ',');
      std::getline(cells, low_fn, ',');
      std::printf("%-28s %10s %10s %10s\n", (name + " (published)").c_str(), standard.c_str(), low_fp.c_str(), low_fn.c_str());
    }
  }
  std::printf("\nthresholds: standard %.4f, low FP %.4f, low FN %.4f\n", ev->profiles[0].threshold, ev->profiles[1].threshold,
              ev->profiles[2].threshold);
  return 0;
}

// fieldline eval skab: the PCA monitor (T² and Q) under SKAB's outlier-detection protocol.
int eval_skab(const std::string& dir, const std::string& format) {
  auto ev = fieldline::analytics::skab::evaluate(dir);
  if (!ev) {
    std::fprintf(stderr, "error: %s\n", ev.error().message().c_str());
    return 2;
  }
  if (format == "json") {
    json::object o{{"files", ev->files}, {"rows", ev->rows}, {"f1", ev->f1}, {"far", ev->far}, {"mar", ev->mar},
                   {"tp", ev->tp}, {"fp", ev->fp}, {"tn", ev->tn}, {"fn", ev->fn},
                   {"changepoint_nab", json::object{{"standard", ev->nab_standard}, {"reward_low_FP_rate", ev->nab_low_fp},
                                                    {"reward_low_FN_rate", ev->nab_low_fn}, {"windows", ev->changepoint_windows},
                                                    {"missed", ev->missed_changepoints}, {"false_positives", ev->changepoint_false_positives}}}};
    std::printf("%s\n", fieldline::core::to_json(o).c_str());
    return 0;
  }
  std::printf("SKAB outlier detection on %zu files, %zu scored rows (first 400 of each file fit the model)\n\n", ev->files, ev->rows);
  std::printf("%-34s %6s %8s %8s\n", "detector", "F1", "FAR %", "MAR %");
  std::printf("%-34s %6.2f %8.2f %8.2f\n", "fieldline PCA T²+Q (this run)", ev->f1, ev->far, ev->mar);
  std::printf("\nchangepoints (NAB, 60 s windows to the right): standard %.2f, low FP %.2f, low FN %.2f; %zu windows, %zu missed, %zu false positives\n",
              ev->nab_standard, ev->nab_low_fp, ev->nab_low_fn, ev->changepoint_windows, ev->missed_changepoints,
              ev->changepoint_false_positives);
  std::printf("\nmetric contributing most to Q at detected anomalies:");
  for (const auto& [metric, n] : ev->top_contributors) std::printf(" %s %llu", metric.c_str(), static_cast<unsigned long long>(n));
  std::printf("\n");
  return 0;
}

// fieldline reprocess: prints the job's report; exit 0 applied (or a dry run), 1 refused.
struct ReprocessArgs {
  std::string device, from, to, reason;
  bool dry_run = false, quarantine_rejected = false, force = false;
};

int reprocess_command(ClientOptions& client, const ReprocessArgs& a) {
  json::object body{{"device", a.device}, {"from", a.from}, {"to", a.to}, {"dry_run", a.dry_run},
                    {"quarantine_rejected", a.quarantine_rejected}, {"force", a.force}};
  if (!a.reason.empty()) body["reason"] = a.reason;
  resolve(client);
  auto r = http_request(client.server, client.token, "POST", "/api/v1/reprocess", fieldline::core::to_json(body), "application/json");
  if (!r) {
    std::fprintf(stderr, "error: %s\n", r.error().message().c_str());
    return 3;
  }
  boost::system::error_code ec;
  auto out = json::parse(r->body, ec);
  const bool report = !ec && out.is_object() && out.as_object().contains("applied");
  if (!report) return call(client, "POST", "/api/v1/reprocess", fieldline::core::to_json(body), nullptr);
  const auto& o = out.as_object();
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(o).c_str());
  } else {
    std::printf("%s %s from %s to %s (contract version %s)\n",
                a.dry_run ? "dry run:" : o.at("applied").as_bool() ? "reprocessed" : "REFUSED:", a.device.c_str(),
                str(o.at("from")).c_str(), str(o.at("to")).c_str(), str(o.at("contract_version")).c_str());
    std::printf("  messages %s (%s arrived while it ran), rejected %s, flagged %s\n", str(o.at("messages")).c_str(),
                str(o.at("late_messages")).c_str(), str(o.at("rejected")).c_str(), str(o.at("flagged")).c_str());
    std::printf("  samples  %s before, %s after\n", str(o.at("samples_before")).c_str(), str(o.at("samples_after")).c_str());
    std::printf("  %-24s %10s %10s\n", "METRIC", "BEFORE", "AFTER");
    for (const auto& [metric, n] : o.at("by_metric").as_object()) {
      std::printf("  %-24s %10s %10s\n", std::string(metric).c_str(), str(n.at("before")).c_str(), str(n.at("after")).c_str());
    }
    if (o.contains("first_rejection")) std::printf("  first rejection: %s\n", str(o.at("first_rejection")).c_str());
    if (o.at("unexplained").as_int64() > 0) {
      std::printf("  %s stored sample(s) without a raw message (first at %s)\n", str(o.at("unexplained")).c_str(),
                  str(o.at("first_unexplained")).c_str());
    }
    if (o.at("applied").as_bool()) {
      std::printf("  %s block(s) rewritten, %s message(s) quarantined, job %s\n", str(o.at("blocks_rewritten")).c_str(),
                  str(o.at("quarantined")).c_str(), str(o.at("job")).c_str());
    }
    if (o.contains("refused")) std::printf("  refused: %s\n", str(o.at("refused")).c_str());
  }
  return o.contains("refused") ? 1 : 0;
}

// fieldline quarantine list|show|export|replay.
struct QuarantineArgs {
  std::string device, reason, from, to, replayed, output;
  std::vector<uint64_t> ids;
  size_t limit = 100;
};

int quarantine_command(ClientOptions& client, const std::string& action, const QuarantineArgs& a) {
  std::string query;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) query += (query.empty() ? "?" : "&") + std::string(k) + "=" + enc(v);
  };
  add("device", a.device);
  add("reason", a.reason);
  add("from", a.from);
  add("to", a.to);
  add("replayed", a.replayed);
  if (action == "list") {
    add("limit", std::to_string(a.limit));
    json::value out;
    if (int rc = call(client, "GET", "/api/v1/quarantine" + query, "", &out)) return rc;
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
      return 0;
    }
    if (client.format == "csv") std::printf("id,received,device,transport,reason,contract_version,replayed,detail\n");
    else std::printf("%-8s %-30s %-20s %-10s %-18s %-8s %-8s %s\n", "ID", "RECEIVED", "DEVICE", "TRANSPORT", "REASON", "CONTRACT", "REPLAYED", "DETAIL");
    for (const auto& m : out.at("messages").as_array()) {
      const auto& o = m.as_object();
      std::string replayed = o.at("replayed").is_null() ? "no" : "yes";
      if (client.format == "csv") {
        std::string detail = str(o.at("detail"));
        for (size_t i = 0; (i = detail.find('"', i)) != std::string::npos; i += 2) detail.insert(i, "\"");
        std::printf("%s,%s,%s,%s,%s,%s,%s,\"%s\"\n", str(o.at("id")).c_str(), str(o.at("received")).c_str(), str(o.at("device")).c_str(),
                    str(o.at("transport")).c_str(), str(o.at("reason")).c_str(), str(o.at("contract_version")).c_str(),
                    replayed.c_str(), detail.c_str());
      } else {
        std::printf("%-8s %-30s %-20s %-10s %-18s %-8s %-8s %s\n", str(o.at("id")).c_str(), str(o.at("received")).c_str(),
                    str(o.at("device")).c_str(), str(o.at("transport")).c_str(), str(o.at("reason")).c_str(),
                    str(o.at("contract_version")).c_str(), replayed.c_str(), str(o.at("detail")).c_str());
      }
    }
    if (!out.at("next_after").is_null() && client.format == "table") {
      std::fprintf(stderr, "(more: the API pages with ?after=%s)\n", str(out.at("next_after")).c_str());
    }
    return 0;
  }
  if (action == "show") {
    json::value out;
    if (int rc = call(client, "GET", "/api/v1/quarantine/" + std::to_string(a.ids.at(0)), "", &out)) return rc;
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
      return 0;
    }
    for (const auto& [k, v] : out.as_object()) {
      if (k == "payload" || k == "payload_base64") continue;
      std::printf("%-17s %s\n", std::string(k).c_str(), str(v).c_str());
    }
    const auto& o = out.as_object();
    std::printf("payload:\n%s\n", o.contains("payload") ? str(o.at("payload")).c_str()
                                                        : ("(binary, base64) " + str(o.at("payload_base64"))).c_str());
    return 0;
  }
  if (action == "export") {
    std::string body;
    if (int rc = download(client, "/api/v1/quarantine/export" + query, a.output, body)) return rc;
    if (!a.output.empty() && a.output != "-") {
      size_t n = static_cast<size_t>(std::count(body.begin(), body.end(), '\n'));
      std::fprintf(stderr, "%zu messages written to %s\n", n, a.output.c_str());
    }
    return 0;
  }
  // replay
  json::object body;
  if (!a.ids.empty()) {
    json::array ids;
    for (auto id : a.ids) ids.push_back(id);
    body["ids"] = std::move(ids);
  } else {
    if (!a.reason.empty()) body["reason"] = a.reason;
    if (!a.device.empty()) body["device"] = a.device;
    if (!a.from.empty()) body["from"] = a.from;
    if (!a.to.empty()) body["to"] = a.to;
    if (body.empty()) {
      std::fprintf(stderr, "error: replay needs --id or a filter (--reason, --device, --from, --to)\n");
      return 2;
    }
  }
  json::value out;
  if (int rc = call(client, "POST", "/api/v1/quarantine/replay", fieldline::core::to_json(body), &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
  } else {
    for (const auto& r : out.at("results").as_array()) {
      const auto& o = r.as_object();
      std::printf("%-8s %-17s %s\n", str(o.at("id")).c_str(), str(o.at("result")).c_str(),
                  o.contains("detail") ? str(o.at("detail")).c_str() : "");
    }
    std::printf("replayed: %s stored, %s still rejected, %s skipped\n", str(out.at("stored")).c_str(),
                str(out.at("rejected")).c_str(), str(out.at("skipped")).c_str());
  }
  // Still rejected: exit 1, so a script notices the fix did not cover everything.
  return out.at("rejected").as_int64() > 0 ? 1 : 0;
}

// fieldline calibration add|list, fieldline events.
struct CalibrationArgs {
  std::string device, metric, valid_from, due, reference;
  std::optional<double> gain, offset, raw_min, raw_max;
  std::vector<double> polynomial;
};

int calibration_command(ClientOptions& client, const std::string& action, const CalibrationArgs& a) {
  const std::string target = "/api/v1/devices/" + enc(a.device) + "/calibrations";
  json::value out;
  if (action == "add") {
    json::object body{{"metric", a.metric}};
    if (a.gain) body["gain"] = *a.gain;
    if (a.offset) body["offset"] = *a.offset;
    if (!a.polynomial.empty()) {
      json::array k;
      for (double c : a.polynomial) k.push_back(c);
      body["polynomial"] = std::move(k);
    }
    if (a.raw_min) body["raw_min"] = *a.raw_min;
    if (a.raw_max) body["raw_max"] = *a.raw_max;
    if (!a.valid_from.empty()) body["valid_from"] = a.valid_from;
    if (!a.due.empty()) body["due"] = a.due;
    if (!a.reference.empty()) body["reference"] = a.reference;
    if (int rc = call(client, "POST", target, fieldline::core::to_json(body), &out)) return rc;
    if (client.format == "json") std::printf("%s\n", fieldline::core::to_json(out).c_str());
    else std::printf("calibration %s of %s/%s recorded (%s)\n", str(out.at("id")).c_str(), a.device.c_str(), a.metric.c_str(),
                     str(out.at("status")).c_str());
    return 0;
  }
  if (int rc = call(client, "GET", target, "", &out)) return rc;
  if (client.format == "json") {
    std::printf("%s\n", fieldline::core::to_json(out).c_str());
    return 0;
  }
  std::printf("%-6s %-16s %-11s %-32s %-30s %-30s %s\n", "ID", "METRIC", "STATUS", "POLYNOMIAL", "VALID FROM", "DUE", "REFERENCE");
  for (const auto& c : out.at("calibrations").as_array()) {
    const auto& o = c.as_object();
    std::printf("%-6s %-16s %-11s %-32s %-30s %-30s %s\n", str(o.at("id")).c_str(), str(o.at("metric")).c_str(),
                str(o.at("status")).c_str(), str(o.at("polynomial")).c_str(), str(o.at("valid_from")).c_str(),
                o.contains("due") ? str(o.at("due")).c_str() : "-", o.contains("reference") ? str(o.at("reference")).c_str() : "");
  }
  return 0;
}

int load_config(core::Config& config, const std::string& file, const std::vector<std::string>& sets) {
  const char* env_file = std::getenv("FIELDLINE_CONFIG");
  std::string path = !file.empty() ? file : env_file ? env_file : "";
  if (!path.empty()) {
    if (auto st = config.load_toml_file(path); !st) {
      std::fprintf(stderr, "error: %s\n", st.error().message().c_str());
      return 2;
    }
  }
  if (auto st = config.load_environment(environ); !st) {
    std::fprintf(stderr, "error: %s\n", st.error().message().c_str());
    return 2;
  }
  for (const auto& kv : sets) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "error: --set expects key=value, got '%s'\n", kv.c_str());
      return 2;
    }
    if (auto st = config.set(kv.substr(0, eq), kv.substr(eq + 1)); !st) {
      std::fprintf(stderr, "error: %s\n", st.error().message().c_str());
      return 2;
    }
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"Fieldline: industrial IoT ingestion, storage and analytics in one binary"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fieldline " FIELDLINE_VERSION);

  // Server configuration flags, shared by `serve` and `config print`.
  std::string config_file;
  std::vector<std::string> sets;
  std::map<std::string, std::string> flag_values;
  auto add_server_flags = [&](CLI::App* cmd) {
    cmd->add_option("--config", config_file, "TOML configuration file (env FIELDLINE_CONFIG)");
    cmd->add_option("--set", sets, "Any setting as key=value, e.g. --set tsdb.fsync=always");
    for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
             {"--data-dir", "data_dir"}, {"--shards", "shards"}, {"--mqtt-listen", "mqtt.listen"},
             {"--mqtt-tls-listen", "mqtt.tls_listen"}, {"--http-listen", "http.listen"},
             {"--http-tls-listen", "http.tls_listen"}, {"--tls-cert", "tls.cert_file"}, {"--tls-key", "tls.key_file"},
             {"--fsync", "tsdb.fsync"}, {"--log-level", "log_level"}}) {
      cmd->add_option(flag, flag_values[key], "Sets " + key);
    }
  };
  auto effective_config = [&](core::Config& config) -> int {
    std::vector<std::string> all = sets;
    for (const auto& [key, value] : flag_values) {
      if (!value.empty()) all.push_back(key + "=" + value);
    }
    return load_config(config, config_file, all);
  };

  auto* serve_cmd = app.add_subcommand("serve", "Run the platform (MQTT, HTTP, storage)");
  add_server_flags(serve_cmd);

  auto* config_cmd = app.add_subcommand("config", "Configuration");
  config_cmd->require_subcommand(1);
  auto* config_print = config_cmd->add_subcommand("print", "Print the effective configuration as TOML");
  add_server_flags(config_print);

  // device ...
  ClientOptions client;
  auto* device_cmd = app.add_subcommand("device", "Manage devices on a running server");
  device_cmd->require_subcommand(1);
  std::string device_id, device_name, device_profile;
  std::vector<std::string> device_tags;
  auto* dev_add = device_cmd->add_subcommand("add", "Register a device and print its token (shown once)");
  dev_add->add_option("id", device_id, "Device id")->required();
  dev_add->add_option("--name", device_name, "Display name");
  dev_add->add_option("--profile", device_profile, "Device profile (default generic)");
  dev_add->add_option("--tag", device_tags, "Tag key=value (repeatable)");
  add_client_options(dev_add, client);
  auto* dev_list = device_cmd->add_subcommand("list", "List devices");
  add_client_options(dev_list, client);
  std::vector<std::pair<CLI::App*, std::string>> dev_actions;
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"show", "Show a device"}, {"disable", "Disable a device and close its connections"},
           {"enable", "Enable a device"}, {"delete", "Delete a device"}, {"rotate-token", "Issue a new token"}}) {
    auto* c = device_cmd->add_subcommand(name, help);
    c->add_option("id", device_id, "Device id")->required();
    add_client_options(c, client);
    dev_actions.emplace_back(c, name);
  }

  // contract ..., audit
  auto* contract_cmd = app.add_subcommand("contract", "Data contracts of device profiles, on a running server");
  contract_cmd->require_subcommand(1);
  std::string c_file, c_profile, c_reason, c_v1, c_v2, c_version = "latest";
  bool c_force = false;
  auto* c_apply = contract_cmd->add_subcommand("apply", "Apply a contract (TOML or JSON); a new version only if it changed");
  c_apply->add_option("file", c_file, "Contract document")->required()->check(CLI::ExistingFile);
  c_apply->add_flag("--force", c_force, "Apply a change that breaks compatibility (needs --reason)");
  c_apply->add_option("--reason", c_reason, "Why; recorded in the audit log");
  add_client_options(c_apply, client);
  auto* c_list = contract_cmd->add_subcommand("list", "Profiles with a contract and their latest versions");
  add_client_options(c_list, client);
  auto* c_history = contract_cmd->add_subcommand("history", "Versions of a profile's contract");
  c_history->add_option("profile", c_profile)->required();
  add_client_options(c_history, client);
  auto* c_show = contract_cmd->add_subcommand("show", "A version of a profile's contract (canonical JSON)");
  c_show->add_option("profile", c_profile)->required();
  c_show->add_option("--version", c_version, "Version number or latest (default)");
  add_client_options(c_show, client);
  auto* c_diff = contract_cmd->add_subcommand("diff", "What changed between two versions, and whether it breaks compatibility");
  c_diff->add_option("profile", c_profile)->required();
  c_diff->add_option("v1", c_v1)->required();
  c_diff->add_option("v2", c_v2)->required();
  add_client_options(c_diff, client);
  std::string c_against;
  auto* c_validate = contract_cmd->add_subcommand(
      "validate", "Check a contract document offline (no server): errors with line and field, or its canonical JSON");
  c_validate->add_option("file", c_file, "Contract document")->required()->check(CLI::ExistingFile);
  c_validate->add_option("--against", c_against, "A previous version's document: list the changes and whether they break")
      ->check(CLI::ExistingFile);
  // detectors ..., alarm ...
  // A versioned profile document's commands: apply FILE, list, history PROFILE, show PROFILE.
  std::string d_file, d_profile, d_version = "latest";
  auto document_commands = [&](CLI::App* parent, const std::string& noun) {
    parent->require_subcommand(1);
    auto* apply = parent->add_subcommand("apply", "Apply a " + noun + " (TOML); a new version only if it changed");
    apply->add_option("file", d_file, noun)->required()->check(CLI::ExistingFile);
    auto* list = parent->add_subcommand("list", "Profiles with a " + noun + " and their latest versions");
    auto* history = parent->add_subcommand("history", "Versions of a profile's " + noun);
    history->add_option("profile", d_profile)->required();
    auto* show = parent->add_subcommand("show", "A version of a profile's " + noun);
    show->add_option("profile", d_profile)->required();
    show->add_option("--version", d_version, "Version number or latest (default)");
    for (auto* c : {apply, list, history, show}) add_client_options(c, client);
    return std::vector<std::pair<CLI::App*, std::string>>{{apply, "apply"}, {list, "list"}, {history, "history"}, {show, "show"}};
  };
  auto* detectors_cmd = app.add_subcommand("detectors", "Detector documents of device profiles (detectors, rules, alarms), on a running server");
  const auto detector_actions = document_commands(detectors_cmd, "detector document");
  auto* features_cmd = app.add_subcommand("features", "Feature views of device profiles, and a device's online features, on a running server");
  const auto feature_actions = document_commands(features_cmd, "feature view");
  std::string f_device;
  auto* f_get = features_cmd->add_subcommand("get", "A device's online features, as of its newest sample");
  f_get->add_option("device", f_device)->required();
  add_client_options(f_get, client);
  std::string x_profile, x_label, x_kind = "regression", x_from, x_to, x_output;
  auto* f_export = features_cmd->add_subcommand("export", "A point-in-time-correct training set (CSV) from the stored samples of a profile's devices");
  f_export->add_option("--profile", x_profile, "The devices' profile (its feature view gives the columns)")->required();
  f_export->add_option("--label", x_label, "The metric whose samples label the rows")->required();
  f_export->add_option("--kind", x_kind, "regression (default) or classification (labels 0 and 1)")->check(CLI::IsMember({"regression", "classification"}));
  f_export->add_option("--from", x_from, "Start (RFC 3339, epoch ms or relative such as -30d; default: everything)");
  f_export->add_option("--to", x_to, "End (default: now)");
  f_export->add_option("-o,--output", x_output, "File to write (default: stdout)");
  add_client_options(f_export, client);
  auto* kpi_cmd = app.add_subcommand("kpi", "Outcome KPIs: definitions per profile, and their values (downtime, MTBF, MTTR, cost...)");
  const auto kpi_actions = document_commands(kpi_cmd, "KPI definition");
  KpiArgs ka;
  auto* k_get = kpi_cmd->add_subcommand("get", "A profile's KPIs over a range, per step and against a baseline");
  k_get->add_option("--profile", ka.profile, "The devices' profile")->required();
  k_get->add_option("--from", ka.from, "Start (RFC 3339, epoch ms or relative such as -30d; default -30d)");
  k_get->add_option("--to", ka.to, "End (default: now)");
  k_get->add_option("--step", ka.step, "Values per step as well, such as 1d");
  k_get->add_option("--baseline-from", ka.baseline_from, "Baseline period start");
  k_get->add_option("--baseline-to", ka.baseline_to, "Baseline period end");
  k_get->add_option("--site", ka.site, "Only the devices of this site");
  add_client_options(k_get, client);
  auto* model_cmd = app.add_subcommand("model", "The model registry: train from stored data, evaluate, promote, roll back, list, show");
  model_cmd->require_subcommand(1);
  ModelArgs ma;
  auto* m_train = model_cmd->add_subcommand("train", "Train a new version (XGBoost) on a training set built from the stored data");
  m_train->add_option("name", ma.name)->required();
  m_train->add_option("--profile", ma.profile, "The devices' profile (its feature view gives the features)")->required();
  m_train->add_option("--label", ma.label, "The metric whose samples label the rows")->required();
  m_train->add_option("--kind", ma.kind, "regression (default) or classification")->check(CLI::IsMember({"regression", "classification"}));
  m_train->add_option("--runtime", ma.runtime, "xgboost (default) or linear (the built-in ridge/logistic model, for the smallest edges)")
      ->check(CLI::IsMember({"xgboost", "linear"}));
  m_train->add_option("--rounds", ma.rounds, "Trees (default 300)");
  m_train->add_option("--max-depth", ma.max_depth, "Tree depth (default 5)");
  m_train->add_option("--eta", ma.eta, "Learning rate (default 0.05)");
  auto* m_evaluate = model_cmd->add_subcommand("evaluate", "A version's RMSE and MAE on a training set built now");
  m_evaluate->add_option("name", ma.name)->required();
  m_evaluate->add_option("--version", ma.version, "Version number or latest (default)");
  auto* m_promote = model_cmd->add_subcommand("promote", "Move a version to a stage (checked: artifact, checksum, feature view)");
  m_promote->add_option("name", ma.name)->required();
  m_promote->add_option("--version", ma.version, "Version number or latest (default)");
  m_promote->add_option("--stage", ma.stage, "production (default), shadow, candidate or archived")
      ->check(CLI::IsMember({"production", "shadow", "candidate", "archived"}));
  m_promote->add_option("--reason", ma.reason, "Why (kept in the stage history and the audit log)");
  auto* m_rollback = model_cmd->add_subcommand("rollback", "Put the previous production version back in production");
  m_rollback->add_option("name", ma.name)->required();
  m_rollback->add_option("--reason", ma.reason, "Why (kept in the stage history and the audit log)");
  auto* m_list = model_cmd->add_subcommand("list", "Models, their latest and production versions");
  auto* m_show = model_cmd->add_subcommand("show", "A model's versions and stage history, or one version (--version N)");
  m_show->add_option("name", ma.name)->required();
  ma.version = "latest";
  std::string show_version = "all";
  m_show->add_option("--version", show_version, "A version number, latest, or all (default)");
  for (auto* c : {m_train, m_evaluate}) {
    c->add_option("--from", ma.from, "Start of the data (default: everything)");
    c->add_option("--to", ma.to, "End of the data (default: now)");
  }
  for (auto* c : {m_train, m_evaluate, m_promote, m_rollback, m_list, m_show}) add_client_options(c, client);
  auto* alarm_cmd = app.add_subcommand("alarm", "Alarms: list, show, acknowledge, clear, comment; maintenance windows");
  alarm_cmd->require_subcommand(1);
  AlarmArgs aa;
  auto* a_list = alarm_cmd->add_subcommand("list", "Alarms, newest first");
  a_list->add_option("--state", aa.state, "active or cleared")->check(CLI::IsMember({"active", "cleared"}));
  a_list->add_option("--acknowledged", aa.acknowledged, "true or false")->check(CLI::IsMember({"true", "false"}));
  a_list->add_option("--device", aa.device);
  a_list->add_option("--type", aa.type, "anomaly, out_of_range, data_missing, multivariate, rule");
  a_list->add_option("--severity", aa.severity, "At least this severity (info, warning, minor, major, critical)");
  a_list->add_option("--limit", aa.limit);
  add_client_options(a_list, client);
  std::vector<std::pair<CLI::App*, std::string>> alarm_actions{{a_list, "list"}};
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"show", "An alarm with its evidence, runbook and comments"},
           {"ack", "Acknowledge an alarm"},
           {"clear", "Clear an alarm"},
           {"comment", "Comment on an alarm"}}) {
    auto* c = alarm_cmd->add_subcommand(name, help);
    c->add_option("id", aa.id, "Alarm id")->required();
    if (name == "comment") c->add_option("text", aa.text)->required();
    add_client_options(c, client);
    alarm_actions.emplace_back(c, name);
  }
  auto* a_maint = alarm_cmd->add_subcommand("maintenance", "Hold back new alarms of a device (or all) for a while");
  a_maint->add_option("--device", aa.device, "Device id (default: every device)");
  a_maint->add_option("--from", aa.from, "Start (RFC 3339, default now)");
  a_maint->add_option("--to", aa.to, "End (RFC 3339 or e.g. +2h)")->required();
  a_maint->add_option("--reason", aa.reason)->required();
  add_client_options(a_maint, client);
  alarm_actions.emplace_back(a_maint, "maintenance");
  // calibration ..., events
  auto* calibration_cmd = app.add_subcommand("calibration", "Calibration records of devices' metrics, on a running server");
  calibration_cmd->require_subcommand(1);
  CalibrationArgs ca;
  auto* cal_add = calibration_cmd->add_subcommand("add", "Record a calibration (gain/offset or a polynomial), applied at ingestion");
  cal_add->add_option("device", ca.device)->required();
  cal_add->add_option("metric", ca.metric)->required();
  cal_add->add_option("--gain", ca.gain, "value = reading x gain + offset");
  cal_add->add_option("--offset", ca.offset);
  cal_add->add_option("--polynomial", ca.polynomial, "Coefficients c0,c1,c2,...: value = c0 + c1 x + c2 x^2 ...")->delimiter(',');
  cal_add->add_option("--raw-min", ca.raw_min, "Polynomial: lowest reading it is valid (and monotonic) for");
  cal_add->add_option("--raw-max", ca.raw_max, "Polynomial: highest reading");
  cal_add->add_option("--valid-from", ca.valid_from, "From when (RFC 3339, epoch ms or -1h; default now)");
  cal_add->add_option("--due", ca.due, "When it must be calibrated again (an overdue one raises an event)");
  cal_add->add_option("--reference", ca.reference, "Certificate or reference instrument");
  add_client_options(cal_add, client);
  auto* cal_list = calibration_cmd->add_subcommand("list", "A device's calibration records and their status");
  cal_list->add_option("device", ca.device)->required();
  add_client_options(cal_list, client);
  std::string events_kind;
  size_t events_limit = 100;
  auto* events_cmd = app.add_subcommand("events", "Events other capabilities act on (calibration.overdue, ...), newest first");
  events_cmd->add_option("--kind", events_kind, "Only this kind");
  events_cmd->add_option("--limit", events_limit, "At most this many (default 100)");
  add_client_options(events_cmd, client);

  // lineage
  std::string lineage_id, lineage_device, lineage_metric, lineage_at;
  auto* lineage_cmd = app.add_subcommand("lineage", "Where a stored value came from: the raw message, decoder, contract and calibration");
  lineage_cmd->add_option("message", lineage_id, "A message id (msg-<n>, as X-Fieldline-Message-Id says)");
  lineage_cmd->add_option("--device", lineage_device, "Or: the sample's device ...");
  lineage_cmd->add_option("--metric", lineage_metric, "... metric ...");
  lineage_cmd->add_option("--at", lineage_at, "... and time (RFC 3339 or epoch ms)");
  add_client_options(lineage_cmd, client);

  // quarantine ...
  auto* quarantine_cmd = app.add_subcommand("quarantine", "Messages refused at ingestion, kept for inspection and replay");
  quarantine_cmd->require_subcommand(1);
  QuarantineArgs qa;
  auto filters = [&](CLI::App* c) {
    c->add_option("--device", qa.device, "Only this device's messages");
    c->add_option("--reason", qa.reason, "Only this reason (unknown_metric, wrong_type, unit_mismatch, bad_payload, ...)");
    c->add_option("--from", qa.from, "Received at or after (RFC 3339, epoch ms, or -24h)");
    c->add_option("--to", qa.to, "Received at or before");
    add_client_options(c, client);
  };
  auto* q_list = quarantine_cmd->add_subcommand("list", "Quarantined messages, oldest first");
  filters(q_list);
  q_list->add_option("--replayed", qa.replayed, "true or false: only replayed or only pending ones")
      ->check(CLI::IsMember({"true", "false"}));
  q_list->add_option("--limit", qa.limit, "At most this many (default 100)");
  auto* q_show = quarantine_cmd->add_subcommand("show", "One message with its raw payload");
  q_show->add_option("id", qa.ids, "Quarantine id")->required()->expected(1);
  add_client_options(q_show, client);
  auto* q_export = quarantine_cmd->add_subcommand("export", "Messages with payloads as NDJSON (payload_base64)");
  filters(q_export);
  q_export->add_option("--replayed", qa.replayed, "true or false")->check(CLI::IsMember({"true", "false"}));
  q_export->add_option("-o,--output", qa.output, "File to write (default stdout)");
  auto* q_replay = quarantine_cmd->add_subcommand(
      "replay", "Decode and validate messages again (after a contract or decoder fix); stored ones are never replayed twice");
  q_replay->add_option("--id", qa.ids, "Quarantine ids (repeat or comma-separate)")->delimiter(',');
  filters(q_replay);
  ReprocessArgs ra;
  auto* reprocess_cmd = app.add_subcommand(
      "reprocess", "Derive a device's samples in a time range again from its raw messages (after a contract, decoder or calibration fix), replacing the stored ones");
  reprocess_cmd->add_option("--device", ra.device, "The device")->required();
  reprocess_cmd->add_option("--from", ra.from, "Start of the samples' time range: RFC 3339, epoch ms or -DURATION")->required();
  reprocess_cmd->add_option("--to", ra.to, "End (exclusive)")->required();
  reprocess_cmd->add_flag("--dry-run", ra.dry_run, "Report what would change; change nothing");
  reprocess_cmd->add_flag("--quarantine-rejected", ra.quarantine_rejected,
                          "Move messages the contract now refuses to quarantine (else the job is refused)");
  reprocess_cmd->add_flag("--force", ra.force, "Also delete stored samples no raw message accounts for (else refused)");
  reprocess_cmd->add_option("--reason", ra.reason, "Why (kept in the audit log)");
  add_client_options(reprocess_cmd, client);
  DemoOptions demo_options;
  bool demo_no_serve = false;
  auto* demo_cmd = app.add_subcommand("demo", "A simulated fleet through the whole platform: predictive maintenance against two baselines");
  demo_cmd->add_option("--pumps", demo_options.pumps, "Pumps in the fleet, beside HVAC units and energy meters (default 200)");
  demo_cmd->add_option("--days", demo_options.days, "Simulated days: the model trains on the first half (default 60)");
  demo_cmd->add_option("--minutes", demo_options.minutes, "Wall-clock minutes the simulated days take at most (default 2.5)");
  demo_cmd->add_option("--preventive-days", demo_options.preventive_days, "The preventive baseline's interval (default 15)");
  demo_cmd->add_option("--seed", demo_options.seed, "Random seed (default 1)");
  demo_cmd->add_option("--bad-share", demo_options.bad_share, "Share of readings sent malformed or non-conforming (default 0.005)")
      ->check(CLI::Range(0.0, 1.0));
  demo_cmd->add_option("--data-dir", demo_options.data_dir, "The demo's data directory, replaced each run (default fieldline-demo)");
  demo_cmd->add_flag("--no-serve", demo_no_serve, "Exit after the comparison (a temporary data directory)");
  demo_cmd->add_option("--format", demo_options.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  SimulateOptions so;
  auto* simulate_cmd = app.add_subcommand("simulate", "A simulated fleet (pumps, HVAC units, energy meters) as MQTT devices");
  simulate_cmd->add_option("--devices", so.fleet.devices, "How many devices (default 10)");
  simulate_cmd->add_option("--profile", so.fleet.profile, "pump, hvac, energy-meter or mixed (default pump)")
      ->check(CLI::IsMember({"pump", "hvac", "energy-meter", "mixed"}));
  simulate_cmd->add_option("--rate", so.fleet.rate_hz, "Readings per simulated second per device (default 1/60)");
  simulate_cmd->add_option("--seed", so.fleet.seed, "Random seed: the same seed, the same fleet and readings (default 1)");
  simulate_cmd->add_option("--target", so.target, "mqtt://HOST:PORT (each device its own connection) or http://HOST:PORT (default mqtt://127.0.0.1:1883)");
  simulate_cmd->add_option("--speedup", so.speedup, "Simulated time runs this many times faster (default 1)");
  simulate_cmd->add_option("--duration", so.duration_s, "Simulated seconds to run, ending now (default: until stopped)");
  simulate_cmd->add_option("--labels", so.labels, "Write the ground truth (failures, faults, maintenance) here as JSON lines");
  simulate_cmd->add_option("--bad-share", so.bad_share, "Share of messages sent malformed or non-conforming (default 0)");
  simulate_cmd->add_option("--sites", so.fleet.sites, "Sites the devices spread over (default 2)");
  simulate_cmd->add_option("--faults-per-day", so.fleet.faults_per_day, "Sensor faults per device per simulated day (default 1/90)");
  simulate_cmd->add_option("--server", so.server, "REST URL that registers the devices (default http://HOST:8080)");
  simulate_cmd->add_option("--token", so.token, "Admin token (env FIELDLINE_TOKEN)");
  simulate_cmd->add_option("--format", so.format, "Summary: table or json")->check(CLI::IsMember({"table", "json"}));
  std::string eval_data, eval_format = "table";
  auto* eval_cmd = app.add_subcommand("eval", "Score the default detectors on a labelled benchmark");
  eval_cmd->require_subcommand(1);
  auto* eval_nab_cmd = eval_cmd->add_subcommand("nab", "Numenta Anomaly Benchmark: normalised scores for its three profiles");
  eval_nab_cmd->add_option("--data", eval_data, "A folder in NAB's layout (data/, labels/combined_windows.json)")->required();
  eval_nab_cmd->add_option("--format", eval_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  std::string eval_subset = "FD001";
  auto* eval_cmapss_cmd = eval_cmd->add_subcommand("cmapss", "NASA C-MAPSS: remaining useful life, RMSE and PHM08 score");
  eval_cmapss_cmd->add_option("--data", eval_data, "A folder in C-MAPSS's layout (data/train_FD00N.txt, test_, RUL_)")->required();
  eval_cmapss_cmd->add_option("--subset", eval_subset, "FD001 (default) to FD004")->check(CLI::IsMember({"FD001", "FD002", "FD003", "FD004"}));
  eval_cmapss_cmd->add_option("--format", eval_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* eval_skab_cmd = eval_cmd->add_subcommand("skab", "Skoltech Anomaly Benchmark: F1, false- and missed-alarm rates");
  eval_skab_cmd->add_option("--data", eval_data, "A folder in SKAB's layout (data/<group>/<n>.csv)")->required();
  eval_skab_cmd->add_option("--format", eval_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  size_t audit_limit = 50;
  auto* audit_cmd = app.add_subcommand("audit", "The audit log, newest first, from a running server");
  audit_cmd->add_option("--limit", audit_limit, "Entries (default 50)");
  add_client_options(audit_cmd, client);

  // query DEVICE METRIC
  std::string q_device, q_metric, q_from = "-1h", q_to = "now", q_step, q_agg;
  auto* query_cmd = app.add_subcommand("query", "Query a device's metric");
  query_cmd->add_option("device", q_device)->required();
  query_cmd->add_option("metric", q_metric)->required();
  query_cmd->add_option("--from", q_from, "Start: -1h, RFC 3339 or epoch ms (default -1h)");
  query_cmd->add_option("--to", q_to, "End (default now)");
  query_cmd->add_option("--step", q_step, "Bucket width, e.g. 1m");
  query_cmd->add_option("--agg", q_agg, "avg|min|max|sum|count|first|last|stddev|p50|p90|p99");
  add_client_options(query_cmd, client);

  // export / import
  std::string e_selector, e_format = "csv";
  auto* export_cmd = app.add_subcommand("export", "Export raw samples as CSV or JSON lines");
  export_cmd->add_option("--selector", e_selector, "Series selector, e.g. temp{site=\"north\"}")->required();
  export_cmd->add_option("--from", q_from, "Start (default -1h)");
  export_cmd->add_option("--to", q_to, "End (default now)");
  export_cmd->add_option("--server", client.server, "Server URL");
  export_cmd->add_option("--token", client.token, "Admin token");
  export_cmd->add_option("--format", e_format, "csv or jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
  std::string i_file, i_format = "auto", i_precision = "ns";
  auto* import_cmd = app.add_subcommand("import", "Import CSV (device,metric,ts,value) or line protocol");
  import_cmd->add_option("file", i_file, "Input file ('-' for stdin)")->required();
  import_cmd->add_option("--format", i_format, "csv, lp or auto (by extension)")->check(CLI::IsMember({"csv", "lp", "auto"}));
  import_cmd->add_option("--precision", i_precision, "Line protocol timestamp unit: ns, us, ms, s");
  import_cmd->add_option("--server", client.server, "Server URL");
  import_cmd->add_option("--token", client.token, "Admin token");

  // tsdb inspect|verify DIR
  std::string t_dir;
  bool t_json = false;
  auto* tsdb_cmd = app.add_subcommand("tsdb", "Storage tools (offline, read-only)");
  tsdb_cmd->require_subcommand(1);
  auto* inspect = tsdb_cmd->add_subcommand("inspect", "Blocks, series, samples and bytes of a data directory");
  inspect->add_option("dir", t_dir)->required();
  inspect->add_flag("--json", t_json, "JSON output");
  std::string inspect_format;
  inspect->add_option("--format", inspect_format, "json or table")->check(CLI::IsMember({"json", "table"}));
  auto* verify = tsdb_cmd->add_subcommand("verify", "Check every checksum; non-zero exit on damage");
  verify->add_option("dir", t_dir)->required();

  CLI11_PARSE(app, argc, argv);

  if (serve_cmd->parsed() || config_print->parsed()) {
    core::Config config;
    if (int rc = effective_config(config)) return rc;
    if (config_print->parsed()) {
      std::printf("%s", config.to_toml().c_str());
      return 0;
    }
    if (!core::init_logging(config.log_level)) {
      std::fprintf(stderr, "error: unknown log level '%s'\n", config.log_level.c_str());
      return 2;
    }
    return serve(config);
  }

  if (dev_add->parsed()) {
    json::object tags;
    for (const auto& t : device_tags) {
      auto eq = t.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "error: --tag expects key=value, got '%s'\n", t.c_str());
        return 2;
      }
      tags[t.substr(0, eq)] = t.substr(eq + 1);
    }
    json::object body{{"id", device_id}, {"tags", tags}};
    if (!device_name.empty()) body["name"] = device_name;
    if (!device_profile.empty()) body["profile"] = device_profile;
    json::value out;
    if (int rc = call(client, "POST", "/api/v1/devices", fieldline::core::to_json(body), &out)) return rc;
    if (client.format == "json") std::printf("%s\n", fieldline::core::to_json(out).c_str());
    else std::printf("device %s added\ntoken (shown once): %s\n", device_id.c_str(), str(out.at("token")).c_str());
    return 0;
  }
  if (dev_list->parsed()) {
    json::value out;
    if (int rc = call(client, "GET", "/api/v1/devices", "", &out)) return rc;
    print_devices(out.at("devices").as_array(), client.format);
    return 0;
  }
  for (const auto& [cmd, action] : dev_actions) {
    if (!cmd->parsed()) continue;
    json::value out;
    std::string target = "/api/v1/devices/" + enc(device_id);
    int rc = action == "show"     ? call(client, "GET", target, "", &out)
             : action == "delete" ? call(client, "DELETE", target, "", &out)
                                  : call(client, "POST", target + "/" + action, "", &out);
    if (rc) return rc;
    if (action == "delete") {
      if (client.format == "json") std::printf("{\"deleted\":\"%s\"}\n", device_id.c_str());
      else std::printf("device %s deleted\n", device_id.c_str());
    } else if (action == "rotate-token") {
      if (client.format == "json") std::printf("%s\n", fieldline::core::to_json(out).c_str());
      else std::printf("new token for %s (shown once): %s\n", device_id.c_str(), str(out.at("token")).c_str());
    } else {
      json::array one{out};
      print_devices(one, client.format);
    }
    return 0;
  }

  if (c_validate->parsed()) return validate_contract(c_file, c_against);
  if (contract_cmd->parsed()) {
    return contract_command(client, contract_cmd->get_subcommands().front()->get_name(), c_file, c_profile, c_version, c_v1,
                            c_v2, c_force, c_reason);
  }
  if (reprocess_cmd->parsed()) return reprocess_command(client, ra);
  if (simulate_cmd->parsed()) return simulate(so);
  if (demo_cmd->parsed()) {
    demo_options.serve = !demo_no_serve;
    return demo(demo_options);
  }
  if (eval_nab_cmd->parsed()) return eval_nab(eval_data, eval_format);
  if (eval_skab_cmd->parsed()) return eval_skab(eval_data, eval_format);
  if (eval_cmapss_cmd->parsed()) return eval_cmapss(eval_data, eval_subset, eval_format);
  if (lineage_cmd->parsed()) {
    std::string target;
    if (!lineage_id.empty()) {
      target = "/api/v1/lineage/" + enc(lineage_id);
    } else if (!lineage_device.empty() && !lineage_metric.empty() && !lineage_at.empty()) {
      target = "/api/v1/lineage?device=" + enc(lineage_device) + "&metric=" + enc(lineage_metric) + "&at=" + enc(lineage_at);
    } else {
      std::fprintf(stderr, "error: give a message id, or --device, --metric and --at\n");
      return 2;
    }
    json::value out;
    if (int rc = call(client, "GET", target, "", &out)) return rc;
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
      return 0;
    }
    for (const auto& m : out.at("messages").as_array()) {
      std::printf("%s from %s, received %s over %s (%s bytes, sha256 %s)\n", str(m.at("id")).c_str(), str(m.at("device")).c_str(),
                  str(m.at("received")).c_str(), str(m.at("transport")).c_str(), str(m.at("bytes")).c_str(), str(m.at("sha256")).c_str());
      std::printf("  decoded as %s, contract version %s, calibrations %s\n", str(m.at("decoder")).c_str(),
                  str(m.at("contract_version")).c_str(), str(m.at("calibrations")).c_str());
      std::printf("  stored %s samples (%s flagged) of %s, %s .. %s\n", str(m.at("samples")).c_str(), str(m.at("flagged")).c_str(),
                  str(m.at("metrics")).c_str(), str(m.at("first_ts")).c_str(), str(m.at("last_ts")).c_str());
      if (m.as_object().contains("reprocessed")) {
        for (const auto& j : m.at("reprocessed").as_array()) {
          std::printf("  derived again by %s at %s with contract version %s (range %s .. %s)\n", str(j.at("job")).c_str(),
                      str(j.at("at")).c_str(), str(j.at("contract_version")).c_str(), str(j.at("from")).c_str(),
                      str(j.at("to")).c_str());
        }
      }
    }
    return 0;
  }
  for (const auto& [cmd, action] : detector_actions) {
    if (cmd->parsed()) return documents_command(client, "/api/v1/detectors", "detectors", "detectors", action, d_file, d_profile, d_version);
  }
  for (const auto& [cmd, action] : kpi_actions) {
    if (cmd->parsed()) return documents_command(client, "/api/v1/kpis/definitions", "KPI definition", "definitions", action, d_file, d_profile, d_version);
  }
  if (k_get->parsed()) return kpi_get(client, ka);
  for (const auto& [cmd, action] : feature_actions) {
    if (cmd->parsed()) return documents_command(client, "/api/v1/features/views", "feature view", "views", action, d_file, d_profile, d_version);
  }
  if (f_get->parsed()) return features_get(client, f_device);
  for (const auto& [cmd, action] : std::vector<std::pair<CLI::App*, std::string>>{
           {m_train, "train"}, {m_evaluate, "evaluate"}, {m_promote, "promote"}, {m_rollback, "rollback"}, {m_list, "list"}, {m_show, "show"}}) {
    if (!cmd->parsed()) continue;
    if (action == "show") ma.version = show_version;
    return model_command(client, action, ma);
  }
  if (f_export->parsed()) return features_export(client, x_profile, x_label, x_kind, x_from, x_to, x_output);
  for (const auto& [cmd, action] : alarm_actions) {
    if (cmd->parsed()) return alarm_command(client, action, aa);
  }
  if (calibration_cmd->parsed()) {
    return calibration_command(client, calibration_cmd->get_subcommands().front()->get_name(), ca);
  }
  if (events_cmd->parsed()) {
    json::value out;
    std::string target = "/api/v1/events?limit=" + std::to_string(events_limit) + (events_kind.empty() ? "" : "&kind=" + enc(events_kind));
    if (int rc = call(client, "GET", target, "", &out)) return rc;
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
      return 0;
    }
    std::printf("%-6s %-30s %-22s %-20s %-20s %s\n", "ID", "AT", "KIND", "DEVICE", "SUBJECT", "DETAIL");
    for (const auto& e : out.at("events").as_array()) {
      std::printf("%-6s %-30s %-22s %-20s %-20s %s\n", str(e.at("id")).c_str(), str(e.at("at")).c_str(), str(e.at("kind")).c_str(),
                  str(e.at("device")).c_str(), str(e.at("subject")).c_str(), str(e.at("detail")).c_str());
    }
    return 0;
  }
  if (quarantine_cmd->parsed()) {
    return quarantine_command(client, quarantine_cmd->get_subcommands().front()->get_name(), qa);
  }
  if (audit_cmd->parsed()) {
    json::value out;
    if (int rc = call(client, "GET", "/api/v1/audit?limit=" + std::to_string(audit_limit), "", &out)) return rc;
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
      return 0;
    }
    std::printf("%-6s %-30s %-10s %-24s %-24s %s\n", "ID", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAIL");
    for (const auto& e : out.at("entries").as_array()) {
      std::printf("%-6s %-30s %-10s %-24s %-24s %s\n", str(e.at("id")).c_str(), str(e.at("at")).c_str(), str(e.at("actor")).c_str(),
                  str(e.at("action")).c_str(), str(e.at("subject")).c_str(), str(e.at("detail")).c_str());
    }
    return 0;
  }

  if (query_cmd->parsed()) {
    std::string target = "/api/v1/devices/" + enc(q_device) + "/metrics/" + enc(q_metric) + "?from=" + enc(q_from) +
                         "&to=" + enc(q_to);
    if (!q_step.empty()) target += "&step=" + enc(q_step);
    if (!q_agg.empty()) target += "&agg=" + enc(q_agg);
    else if (!q_step.empty()) target += "&agg=avg";
    json::value out;
    if (int rc = call(client, "GET", target, "", &out)) return rc;
    const auto& points = out.at("points").as_array();
    if (client.format == "json") {
      std::printf("%s\n", fieldline::core::to_json(out).c_str());
    } else if (client.format == "csv") {
      std::printf("ts,value\n");
      for (const auto& p : points) std::printf("%s,%s\n", str(p.at("ts")).c_str(), str(p.at("value")).c_str());
    } else {
      std::printf("%-32s %s\n", "TIME", q_agg.empty() && q_step.empty() ? "VALUE" : ("VALUE (" + (q_agg.empty() ? std::string("avg") : q_agg) + ")").c_str());
      for (const auto& p : points) std::printf("%-32s %s\n", str(p.at("ts")).c_str(), str(p.at("value")).c_str());
    }
    return 0;
  }

  if (export_cmd->parsed()) {
    resolve(client);
    auto r = http_request(client.server, client.token, "GET",
                          "/api/v1/export?selector=" + enc(e_selector) + "&from=" + enc(q_from) + "&to=" + enc(q_to) +
                              "&format=" + e_format);
    if (!r) {
      std::fprintf(stderr, "error: %s\n", r.error().message().c_str());
      return 3;
    }
    if (r->status >= 300) {
      std::fprintf(stderr, "error: HTTP %u: %s\n", r->status, r->body.c_str());
      return 6;
    }
    std::fwrite(r->body.data(), 1, r->body.size(), stdout);
    return 0;
  }

  if (import_cmd->parsed()) {
    std::ifstream file_in;
    std::istream* in = &std::cin;
    if (i_file != "-") {
      file_in.open(i_file);
      if (!file_in) {
        std::fprintf(stderr, "error: cannot read %s\n", i_file.c_str());
        return 2;
      }
      in = &file_in;
    }
    bool csv = i_format == "csv" || (i_format == "auto" && i_file.ends_with(".csv"));
    const bool tty = isatty(STDERR_FILENO);
    std::string batch, line;
    size_t lines = 0, sent = 0, line_no = 0;
    auto flush = [&]() -> int {
      if (batch.empty()) return 0;
      json::value out;
      int rc = call(client, "POST", "/api/v2/write?precision=" + (csv ? std::string("ns") : i_precision), batch, &out, "text/plain");
      if (rc) return rc;
      sent += lines;
      lines = 0;
      batch.clear();
      if (tty) std::fprintf(stderr, "\rimported %zu rows", sent);
      return 0;
    };
    bool header = csv;
    while (std::getline(*in, line)) {
      ++line_no;
      if (line.empty()) continue;
      if (csv) {
        if (header) {
          header = false;
          if (line.rfind("device", 0) == 0) continue;
        }
        // device,metric,ts,value
        std::vector<std::string> f;
        std::stringstream ss(line);
        std::string part;
        while (std::getline(ss, part, ',')) f.push_back(part);
        if (f.size() < 4) {
          std::fprintf(stderr, "\nerror: %s line %zu: expected device,metric,ts,value\n", i_file.c_str(), line_no);
          return 2;
        }
        auto ts = core::parse_time(f[2], 0, core::EpochUnit::guess);
        if (!ts) {
          std::fprintf(stderr, "\nerror: %s line %zu: %s\n", i_file.c_str(), line_no, ts.error().message().c_str());
          return 2;
        }
        std::string value = f[3];
        if (value != "true" && value != "false") {
          char* end = nullptr;
          std::strtod(value.c_str(), &end);
          if (end == value.c_str() || *end != '\0') value = "\"" + value + "\"";
        }
        batch += f[1] + ",device=" + f[0] + " value=" + value + " " + std::to_string(*ts) + "\n";
      } else {
        batch += line + "\n";
      }
      if (++lines >= 5000) {
        if (int rc = flush()) return rc;
      }
    }
    if (int rc = flush()) return rc;
    std::fprintf(stderr, "%simported %zu rows\n", tty ? "\r" : "", sent);
    return 0;
  }

  if (inspect->parsed()) return tsdb_inspect(t_dir, t_json || inspect_format == "json");
  if (verify->parsed()) return tsdb_verify(t_dir);
  return 0;
}

}  // namespace fieldline::app

int main(int argc, char** argv) {
  try {
    return fieldline::app::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FATAL: %s\n", e.what());
    return 70;
  }
}
