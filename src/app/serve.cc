#include "serve.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <dlfcn.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <cmath>
#include <sstream>
#include <thread>

#include "fieldline/analytics/webhooks.h"
#include "fieldline/api/api.h"
#include "fieldline/api/live_samples.h"
#include "fieldline/core/env.h"
#include "fieldline/core/log.h"
#include "fieldline/core/runtime.h"
#include "fieldline/ingest/pipeline.h"
#include "fieldline/ops/metrics.h"
#include "fieldline/registry/registry.h"
#include "fieldline/transport/http/server.h"
#include "fieldline/transport/mqtt/server.h"

namespace fieldline::app {

namespace asio = boost::asio;

namespace {

// The allocator serving this process: jemalloc, where the build links it (FIELDLINE_JEMALLOC),
// answers to mallctl; glibc's malloc and the sanitizers' do not.
const char* allocator_name() { return dlsym(RTLD_DEFAULT, "mallctl") ? "jemalloc" : "system"; }

// Alarm events to MQTT integrators (alarms/{device}/{type}; alarms/storm for a summary).
class MqttAlarmChannel final : public analytics::AlarmChannel {
 public:
  explicit MqttAlarmChannel(transport::mqtt::Server& mqtt) : mqtt_(mqtt) {}
  void deliver(const analytics::AlarmNotice& n) override {
    const std::string topic = n.device.empty() ? std::string("alarms/storm")
                                               : "alarms/" + std::string(n.device) + "/" + std::string(n.type);
    mqtt_.publish_alarm(topic, n.json);
  }
  const char* kind() const override { return "mqtt"; }

 private:
  transport::mqtt::Server& mqtt_;
};

}  // namespace

int serve(const core::Config& cfg) {
  core::Config config = cfg;
  auto log = core::logger("app");
  // Every connection is a file descriptor: raise the soft limit to the hard one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (config.shards == 0) config.shards = std::max(1u, std::thread::hardware_concurrency());
  auto env = core::make_posix_env();
  if (auto st = env->create_dirs(config.data_dir); !st) {
    std::fprintf(stderr, "FATAL: cannot create data directory: %s\n", st.error().message().c_str());
    return 1;
  }
  auto registry = registry::open_sqlite_registry(core::join_path(config.data_dir, "registry.db"));
  if (!registry) {
    std::fprintf(stderr, "FATAL: %s\n", registry.error().message().c_str());
    return 1;
  }
  const char* preset = std::getenv("FIELDLINE_ADMIN_TOKEN");
  auto admin = (*registry)->ensure_admin_token(preset ? std::optional<std::string>(preset) : std::nullopt);
  if (!admin) {
    std::fprintf(stderr, "FATAL: %s\n", admin.error().message().c_str());
    return 1;
  }
  if (*admin) {
    std::printf("Admin token (shown once, store it safely): %s\n", (*admin)->c_str());
    std::fflush(stdout);
  }

  ops::Metrics metrics;
  metrics.gauge("fieldline_build_info", "The build serving: its version and memory allocator",
                {{"version", FIELDLINE_VERSION}, {"allocator", allocator_name()}})
      .set(1);
  core::ShardRuntime runtime(config.shards);
  auto pipeline = ingest::Pipeline::open(runtime, *env, config, metrics);
  if (!pipeline) {
    std::fprintf(stderr, "FATAL: cannot open storage: %s\n", pipeline.error().message().c_str());
    return 1;
  }
  if (auto st = api::load_contracts(**registry, (*pipeline)->contracts()); !st) {
    std::fprintf(stderr, "FATAL: cannot load data contracts: %s\n", st.error().message().c_str());
    return 1;
  }
  if (auto st = api::load_calibrations(**registry, (*pipeline)->calibrations()); !st) {
    std::fprintf(stderr, "FATAL: cannot load calibrations: %s\n", st.error().message().c_str());
    return 1;
  }

  // Alarms, and detection in the shards.
  if (config.analytics.detection != "on" && config.analytics.detection != "off") {
    std::fprintf(stderr, "FATAL: analytics.detection: '%s' is neither on nor off\n", config.analytics.detection.c_str());
    return 1;
  }
  analytics::AlarmService::Options alarm_options;
  alarm_options.path = core::join_path(config.data_dir, "alarms.db");
  alarm_options.policy.escalate_after_ns = config.analytics.escalate_after_ns;
  alarm_options.policy.max_new_per_minute = config.analytics.max_new_alarms_per_minute;
  alarm_options.retention_ns = config.analytics.alarm_retention_ns;
  alarm_options.notify_per_second = config.analytics.notify_per_second;
  auto alarms = analytics::AlarmService::open(*env, metrics, alarm_options);
  if (!alarms) {
    std::fprintf(stderr, "FATAL: cannot open alarms: %s\n", alarms.error().message().c_str());
    return 1;
  }
  analytics::DetectorBook detector_documents;
  if (auto st = api::load_detectors(**registry, detector_documents); !st) {
    std::fprintf(stderr, "FATAL: cannot load detector documents: %s\n", st.error().message().c_str());
    return 1;
  }
  // Online features in the shards, from each profile's feature view.
  ml::FeatureBook feature_views;
  if (auto st = api::load_feature_views(**registry, feature_views); !st) {
    std::fprintf(stderr, "FATAL: cannot load feature views: %s\n", st.error().message().c_str());
    return 1;
  }
  ml::OnlineFeatures features(config.shards, feature_views, metrics);
  ml::ModelBook models;
  auto unserved = api::load_models(**registry, feature_views, models);
  if (!unserved) {
    std::fprintf(stderr, "FATAL: cannot read the model registry: %s\n", unserved.error().message().c_str());
    return 1;
  }
  for (const auto& why : *unserved) core::logger("ml")->error("not serving a production model: {}", why);
  ingest::SampleObservers observers;
  std::unique_ptr<analytics::StreamDetection> detection;
  if (config.analytics.detection == "on") {
    analytics::StreamDetection::Options o;
    o.shards = config.shards;
    o.checkpoint_dir = core::join_path(config.data_dir, "detectors");
    o.checkpoint_interval_ns = config.analytics.checkpoint_interval_ns;
    detection = std::make_unique<analytics::StreamDetection>(o, detector_documents, **alarms, *env, metrics,
                                                            &(*pipeline)->contracts());
    observers.add(detection.get());
  }
  observers.add(&features);
  // Maintenance alarms from predictions: "model<threshold" or "model>threshold" policies.
  struct Policy {
    std::string model;
    bool below = true;
    double threshold = 0;
  };
  std::vector<Policy> policies;
  {
    std::istringstream in(config.ml.alarm_policies);
    for (std::string item; in >> item;) {
      const size_t at = item.find_first_of("<>");
      char* end = nullptr;
      const double threshold = at == std::string::npos ? 0 : std::strtod(item.c_str() + at + 1, &end);
      if (at == std::string::npos || at == 0 || end == item.c_str() + at + 1 || *end != '\0' || !std::isfinite(threshold)) {
        std::fprintf(stderr, "FATAL: ml.alarm_policies: '%s' is not model<threshold or model>threshold\n", item.c_str());
        return 1;
      }
      policies.push_back({item.substr(0, at), item[at] == '<', threshold});
    }
  }
  ml::Serving::Options serving_options;
  serving_options.shards = config.shards;
  serving_options.interval_ns = config.ml.serving_interval_ns;
  serving_options.decision_sample = config.ml.decision_sample;
  auto* alarm_service = alarms->get();
  auto alarming = [&policies](const ml::Prediction& p, const Policy& policy) {
    return policy.model == p.model && (policy.below ? p.value < policy.threshold : p.value > policy.threshold);
  };
  auto on_prediction = [&policies, alarm_service, &env, alarming](const ml::Prediction& p) {
    for (const auto& policy : policies) {
      if (policy.model != p.model) continue;
      const std::string key = "model:" + p.model;
      const int64_t now = env->now_ns();
      if (alarming(p, policy)) {
        std::string top;
        for (const auto& [feature, contribution] : p.top) {
          char part[160];
          std::snprintf(part, sizeof part, "%s%s %+.3g", top.empty() ? "" : ", ", feature.c_str(), contribution);
          top += part;
        }
        char why[512];
        std::snprintf(why, sizeof why, "%s v%lld predicts %.4g (%s %.4g); top contributions: %s", p.model.c_str(),
                      static_cast<long long>(p.version), p.value, policy.below ? "<" : ">", policy.threshold, top.c_str());
        alarm_service->raise({"maintenance", p.device, key, analytics::alarms::Severity::major, now,
                              analytics::alarms::Evidence{{{p.as_of_ns, p.value}}, 1.0, why}, ""});
      } else {
        alarm_service->clear_condition(p.device, key, now);
      }
    }
  };
  // Contributions only for the predictions that raise an alarm (and the decision records).
  auto explain = [&policies, alarming](const ml::Prediction& p) {
    return std::any_of(policies.begin(), policies.end(), [&](const Policy& policy) { return alarming(p, policy); });
  };
  // Predictions are stored as series beside the device's own, through the shard's WAL;
  // sampled decision records go to their own database for audit.
  auto decisions = ml::DecisionLog::open({core::join_path(config.data_dir, "decisions.db"), config.ml.decisions_kept}, metrics);
  if (!decisions) {
    std::fprintf(stderr, "FATAL: cannot open the decision records: %s\n", decisions.error().message().c_str());
    return 1;
  }
  auto* ingest_pipeline = pipeline->get();
  auto* decision_log = decisions->get();
  ml::Serving::Sinks sinks{
      on_prediction, explain,
      [ingest_pipeline](uint32_t shard, const ingest::DerivedSample& s) { ingest_pipeline->store_derived(shard, s); },
      [decision_log, &env](ml::DecisionRecord r) { decision_log->record(std::move(r), env->now_ns()); }};
  ml::Serving serving(serving_options, features, models, metrics, std::move(sinks));
  observers.add(&serving);
  api::LiveSamples live_samples((*pipeline)->shard_count());  // for the console's live charts
  observers.add(&live_samples);
  (*pipeline)->set_observer(&observers);

  std::unique_ptr<asio::ssl::context> tls;
  if (!config.tls.cert_file.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(config.tls.cert_file, ec);
    if (!ec) tls->use_private_key_file(config.tls.key_file.empty() ? config.tls.cert_file : config.tls.key_file,
                                       asio::ssl::context::pem, ec);
    if (ec) {
      std::fprintf(stderr, "FATAL: TLS certificate or key: %s\n", ec.message().c_str());
      return 1;
    }
  }

  transport::mqtt::Server mqtt(runtime, config, **registry, **pipeline, metrics);
  api::Api api(config, **registry, **pipeline, metrics, **alarms, detector_documents, feature_views, features, models, serving, **decisions, live_samples,
               api::Hooks{[&mqtt](const std::string& d, const std::string& n, const std::string& p) {
                 return mqtt.deliver_command(d, n, p);
               }});
  transport::http::Server http(
      runtime, config, metrics, [&api](transport::http::Request& req) { return api.handle(req); },
      [&api](transport::http::Request& req) { return api.upgrade(req); });
  (*registry)->on_device_revoked([&mqtt](const std::string& id) { mqtt.close_device(id); });
  std::vector<uint64_t> channels;
  channels.push_back((*alarms)->subscribe(std::make_shared<MqttAlarmChannel>(mqtt), {}));
  std::vector<std::shared_ptr<analytics::WebhookChannel>> webhooks;
  {
    std::istringstream urls(config.analytics.webhooks);
    for (std::string url; urls >> url;) {
      if (config.analytics.webhook_secret.empty()) {
        std::fprintf(stderr, "FATAL: analytics.webhooks needs analytics.webhook_secret (the events are signed with it)\n");
        return 1;
      }
      analytics::WebhookChannel::Options o;
      o.url = url;
      o.secret = config.analytics.webhook_secret;
      o.attempts = std::max<uint32_t>(1, config.analytics.webhook_attempts);
      auto hook = analytics::WebhookChannel::make(o, metrics);
      if (!hook) {
        std::fprintf(stderr, "FATAL: analytics.webhooks: %s\n", hook.error().message().c_str());
        return 1;
      }
      channels.push_back((*alarms)->subscribe(*hook, {}));
      webhooks.push_back(*hook);
      log->info("alarm events go to webhook {}", url);
    }
  }

  boost::json::object ports;
  auto bind = [&](const char* what, auto& server, const std::string& ep, asio::ssl::context* ctx) -> bool {
    auto port = server.listen(ep, ctx);
    if (!port) {
      std::fprintf(stderr, "FATAL: %s\n", port.error().message().c_str());
      return false;
    }
    ports[what] = *port;
    log->info("listening {} on {} (port {})", what, ep, *port);
    return true;
  };
  if (!bind("mqtt", mqtt, config.mqtt.listen, nullptr) || !bind("http", http, config.http.listen, nullptr)) return 1;
  {
    // Where people go: the console is served on the HTTP port.
    std::string host = config.http.listen.substr(0, config.http.listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
    log->info("operator console at http://{}:{}/ (sign in with the admin token)", host, ports["http"].to_number<int64_t>());
  }
  if (tls && (!bind("mqtts", mqtt, config.mqtt.tls_listen, tls.get()) || !bind("https", http, config.http.tls_listen, tls.get()))) {
    return 1;
  }
  {
    // Scripts and tests that bind port 0 read the chosen ports here.
    std::string tmp = core::join_path(config.data_dir, "listen.json.tmp");
    std::ofstream(tmp) << boost::json::serialize(ports) << "\n";
    std::rename(tmp.c_str(), core::join_path(config.data_dir, "listen.json").c_str());
  }

  (*pipeline)->start();
  mqtt.start();
  http.start();
  runtime.start();
  log->info("fieldline serving: {} shards, data in {}", config.shards, config.data_dir);
  // Reprocessing jobs a stop interrupted are run again (each is idempotent).
  asio::co_spawn(runtime.context(0), api::resume_reprocessing(**registry, **pipeline), asio::detached);

  // Persist last-seen times now and then, off the hot path.
  std::promise<int> stop_signal;
  auto stop_future = stop_signal.get_future();
  asio::signal_set signals(runtime.context(0), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (!ec) stop_signal.set_value(sig);
  });
  // Overdue calibrations are checked at start and then every minute.
  auto check_calibrations = [&] {
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto raised = api::raise_overdue_calibrations(**registry, metrics, now);
    if (!raised) log->warn("cannot check calibration due dates: {}", raised.error().message());
    else if (*raised) log->warn("{} calibration(s) became overdue (events calibration.overdue)", *raised);
  };
  check_calibrations();
  int ticks = 0;
  while (stop_future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    if (auto st = (*registry)->flush_last_seen(); !st) log->warn("cannot save last-seen times: {}", st.error().message());
    if (++ticks % 12 == 0) check_calibrations();
  }
  int sig = stop_future.get();
  log->info("signal {}: stopping", sig);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  // 1. stop accepting and close sessions; 2. drain and flush storage; 3. exit.
  mqtt.stop();
  http.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto closed = (*pipeline)->close();
  if (!closed) log->error("storage did not close cleanly: {}", closed.error().message());
  (void)(*registry)->flush_last_seen();
  (*alarms)->flush();
  for (uint64_t id : channels) (*alarms)->unsubscribe(id);
  for (auto& w : webhooks) w->stop();
  runtime.stop();
  runtime.join();
  log->info("stopped{}", std::chrono::steady_clock::now() > deadline ? " (slowly)" : "");
  return closed ? 0 : 1;
}

}  // namespace fieldline::app
