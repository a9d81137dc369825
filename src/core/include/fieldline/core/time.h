#pragma once
// Time: int64 nanoseconds since the Unix epoch inside the engine. The parsers accept what
// users type: epoch seconds, milliseconds or nanoseconds, RFC 3339, and relative times.

#include <cstdint>
#include <string>
#include <string_view>

#include "fieldline/core/result.h"

namespace fieldline::core {

// Days since 1970-01-01 for a proleptic Gregorian date.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day);

struct TimestampNs {
  int64_t ns = 0;
  auto operator<=>(const TimestampNs&) const = default;
};

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kNsPerMinute = 60 * kNsPerSecond;
constexpr int64_t kNsPerHour = 60 * kNsPerMinute;
constexpr int64_t kNsPerDay = 24 * kNsPerHour;

enum class EpochUnit { seconds, milliseconds, microseconds, nanoseconds, guess };

// Converts an epoch number in `unit` to ns. With `guess`, the magnitude decides: values below
// 1e11 are seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
Result<int64_t> epoch_to_ns(double value, EpochUnit unit);
Result<int64_t> epoch_to_ns(int64_t value, EpochUnit unit);

// Parses RFC 3339 ("2026-11-23T01:02:03.5Z", "+01:00" offsets, lower-case t/z accepted).
Result<int64_t> parse_rfc3339(std::string_view text);
std::string format_rfc3339(int64_t ns);

// Parses a duration such as "10ms", "30s", "5m", "2h", "7d", "1w", "1h30m".
Result<int64_t> parse_duration(std::string_view text);
std::string format_duration(int64_t ns);

// A time as a user writes it in a query: "now", a relative time ("-1h", "now-15m"), RFC 3339,
// or an epoch number (unit guessed unless given).
Result<int64_t> parse_time(std::string_view text, int64_t now_ns, EpochUnit epoch_unit = EpochUnit::guess);

}  // namespace fieldline::core
