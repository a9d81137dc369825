#pragma once
// Webhooks: every alarm event POSTed as JSON to a URL, signed so the receiver can tell it came
// from us and was not replayed:
//
//   X-Fieldline-Event:     alarm.raised
//   X-Fieldline-Delivery:  <id, the same on every retry of one event>
//   X-Fieldline-Timestamp: <Unix seconds when this attempt was sent>
//   X-Fieldline-Signature: sha256=<hex HMAC-SHA256 under the secret of "<timestamp>.<body>">
//
// Delivery is in order, one event at a time per URL; a failure (no connection, time out, a
// status other than 2xx) is retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 min
// apart) up to `attempts` times, then counted as failed. A receiver that is down holds back
// only its own queue (bounded: beyond 10,000 waiting events the oldest are dropped, counted).

#include <memory>
#include <string>

#include "fieldline/analytics/alarm_service.h"
#include "fieldline/ops/metrics.h"

namespace fieldline::analytics {

class WebhookChannel final : public AlarmChannel {
 public:
  struct Options {
    std::string url, secret;
    uint32_t attempts = 8;
    int64_t first_backoff_ns = 1'000'000'000;
    int64_t max_backoff_ns = 300LL * 1'000'000'000;
  };
  // Fails for a URL the client cannot use.
  static Result<std::shared_ptr<WebhookChannel>> make(Options options, ops::Metrics& metrics);
  ~WebhookChannel() override;
  void deliver(const AlarmNotice& notice) override;
  const char* kind() const override { return "webhook"; }
  // Stops retrying; events not yet delivered are dropped (counted).
  void stop();

  struct Impl;

 private:
  explicit WebhookChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// hex(HMAC-SHA256(secret, message)).
std::string hmac_sha256_hex(const std::string& secret, const std::string& message);

}  // namespace fieldline::analytics
