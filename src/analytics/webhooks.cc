#include "fieldline/analytics/webhooks.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <deque>
#include <thread>

#include "fieldline/core/log.h"
#include "fieldline/transport/http/client.h"

namespace fieldline::analytics {

namespace asio = boost::asio;

std::string hmac_sha256_hex(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

namespace {
constexpr size_t kMaxQueued = 10000;
}

struct WebhookChannel::Impl {
  Options options;
  std::shared_ptr<spdlog::logger> log = core::logger("webhooks");
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  struct Event {
    std::string name, body;
    uint64_t delivery;
  };
  std::deque<Event> queue;  // on io's thread
  bool sending = false;
  bool stopped = false;
  uint64_t next_delivery = 1;
  asio::steady_timer backoff{io};
  ops::Counter *delivered, *failed, *retried, *dropped;

  Impl(Options o, ops::Metrics& m)
      : options(std::move(o)),
        delivered(&m.counter("fieldline_webhook_deliveries_total", "Webhook events delivered (2xx)")),
        failed(&m.counter("fieldline_webhook_failures_total", "Webhook events given up after every attempt")),
        retried(&m.counter("fieldline_webhook_retries_total", "Webhook attempts that failed and were retried")),
        dropped(&m.counter("fieldline_webhook_dropped_total", "Webhook events dropped: queue full or stopped")) {}

  asio::awaitable<void> drain() {
    using namespace std::chrono;
    while (!queue.empty() && !stopped) {
      Event& e = queue.front();
      int64_t wait_ns = options.first_backoff_ns;
      bool ok = false;
      for (uint32_t attempt = 1; attempt <= options.attempts && !stopped; ++attempt) {
        const std::string ts = std::to_string(duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
        std::vector<std::pair<std::string, std::string>> headers{
            {"Content-Type", "application/json"},
            {"X-Fieldline-Event", e.name},
            {"X-Fieldline-Delivery", std::to_string(e.delivery)},
            {"X-Fieldline-Timestamp", ts},
            {"X-Fieldline-Signature", "sha256=" + hmac_sha256_hex(options.secret, ts + "." + e.body)}};
        auto sent = co_await transport::http::post(options.url, std::move(headers), e.body, seconds(10));
        if (sent && sent->status >= 200 && sent->status < 300) {
          ok = true;
          break;
        }
        const std::string why = sent ? "status " + std::to_string(sent->status) : sent.error().message();
        if (attempt == options.attempts) {
          log->warn("webhook {}: event {} given up after {} attempts ({})", options.url, e.delivery, attempt, why);
          break;
        }
        retried->inc();
        log->info("webhook {}: attempt {} of event {} failed ({}); retrying in {} ms", options.url, attempt, e.delivery, why,
                  wait_ns / 1'000'000);
        backoff.expires_after(nanoseconds(wait_ns));
        co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
        wait_ns = std::min(wait_ns * 2, options.max_backoff_ns);
      }
      (ok ? delivered : failed)->inc();
      queue.pop_front();
    }
    sending = false;
  }
};

Result<std::shared_ptr<WebhookChannel>> WebhookChannel::make(Options options, ops::Metrics& metrics) {
  FL_TRY_STATUS(transport::http::check_url(options.url));
  auto impl = std::make_unique<Impl>(std::move(options), metrics);
  Impl* i = impl.get();
  i->thread = std::thread([i] { i->io.run(); });
  return std::shared_ptr<WebhookChannel>(new WebhookChannel(std::move(impl)));
}

WebhookChannel::WebhookChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebhookChannel::~WebhookChannel() {
  stop();
  impl_->work.reset();
  impl_->thread.join();
}

void WebhookChannel::stop() {
  asio::post(impl_->io, [i = impl_.get()] {
    if (i->stopped) return;
    i->stopped = true;
    i->backoff.cancel();
    if (!i->queue.empty()) i->dropped->inc(i->queue.size() - (i->sending ? 1 : 0));
  });
}

void WebhookChannel::deliver(const AlarmNotice& notice) {
  asio::post(impl_->io, [i = impl_.get(), name = std::string(notice.event), body = notice.json] {
    if (i->stopped) {
      i->dropped->inc();
      return;
    }
    if (i->queue.size() >= kMaxQueued) {
      // The oldest waiting (not the one being sent) makes room.
      i->queue.erase(i->queue.begin() + (i->sending ? 1 : 0));
      i->dropped->inc();
    }
    i->queue.push_back({name, body, i->next_delivery++});
    if (!i->sending) {
      i->sending = true;
      asio::co_spawn(i->io, i->drain(), asio::detached);
    }
  });
}

}  // namespace fieldline::analytics
