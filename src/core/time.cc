#include "fieldline/core/time.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "fieldline/core/errc.h"

namespace fieldline::core {

// Howard Hinnant's algorithm.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

Error bad_time(std::string_view text, std::string_view why) {
  return make_error(Errc::invalid_argument, "time '" + std::string(text) + "': " + std::string(why));
}

}  // namespace

Result<int64_t> epoch_to_ns(double value, EpochUnit unit) {
  if (!std::isfinite(value)) return make_error(Errc::invalid_argument, "timestamp is not a finite number");
  double a = std::fabs(value);
  if (unit == EpochUnit::guess) {
    unit = a < 1e11 ? EpochUnit::seconds : a < 1e14 ? EpochUnit::milliseconds
         : a < 1e17 ? EpochUnit::microseconds : EpochUnit::nanoseconds;
  }
  double scale = unit == EpochUnit::seconds ? 1e9 : unit == EpochUnit::milliseconds ? 1e6
               : unit == EpochUnit::microseconds ? 1e3 : 1.0;
  double ns = value * scale;
  if (ns > 9.2e18 || ns < -9.2e18) return make_error(Errc::invalid_argument, "timestamp out of range");
  return static_cast<int64_t>(std::llround(ns));
}

Result<int64_t> epoch_to_ns(int64_t value, EpochUnit unit) {
  uint64_t a = value < 0 ? static_cast<uint64_t>(-(value + 1)) + 1 : static_cast<uint64_t>(value);
  if (unit == EpochUnit::guess) {
    unit = a < 100'000'000'000ULL ? EpochUnit::seconds : a < 100'000'000'000'000ULL ? EpochUnit::milliseconds
         : a < 100'000'000'000'000'000ULL ? EpochUnit::microseconds : EpochUnit::nanoseconds;
  }
  int64_t scale = unit == EpochUnit::seconds ? kNsPerSecond : unit == EpochUnit::milliseconds ? kNsPerMs
                : unit == EpochUnit::microseconds ? 1000 : 1;
  int64_t out = 0;
  if (__builtin_mul_overflow(value, scale, &out)) return make_error(Errc::invalid_argument, "timestamp out of range");
  return out;
}

Result<int64_t> parse_rfc3339(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (!digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
      !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
      s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second)) {
    return bad_time(s, "expected RFC 3339 like 2026-11-23T01:02:03Z");
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad_time(s, "date or time field out of range");
  }
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad_time(s, "empty fraction of a second");
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om)) {
      return bad_time(s, "bad UTC offset");
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad_time(s, "missing time zone (Z or +hh:mm)");
  }
  if (pos != s.size()) return bad_time(s, "trailing characters");
  int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + std::min(second, 59) - offset_s;
  // Nanoseconds since the epoch in 64 bits reach from 1677 to 2262.
  if (secs <= INT64_MIN / kNsPerSecond || secs >= INT64_MAX / kNsPerSecond) {
    return bad_time(s, "outside the years 1678-2261 that nanosecond timestamps cover");
  }
  return secs * kNsPerSecond + frac_ns;
}

std::string format_rfc3339(int64_t ns) {
  int64_t secs = ns / kNsPerSecond;
  int64_t frac = ns % kNsPerSecond;
  if (frac < 0) {
    frac += kNsPerSecond;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  if (frac == 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else if (frac % kNsPerMs == 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac / kNsPerMs));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  }
  return buf;
}

Result<int64_t> parse_duration(std::string_view s) {
  if (s.empty()) return make_error(Errc::invalid_argument, "empty duration");
  int64_t total = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), n);
    if (ec != std::errc() || n < 0) {
      return make_error(Errc::invalid_argument, "duration '" + std::string(s) + "': expected a number at " +
                                                    std::to_string(pos));
    }
    pos = static_cast<size_t>(p - s.data());
    int64_t unit = 0;
    auto rest = s.substr(pos);
    size_t len = 1;
    if (rest.starts_with("ns")) { unit = 1; len = 2; }
    else if (rest.starts_with("us")) { unit = 1000; len = 2; }
    else if (rest.starts_with("ms")) { unit = kNsPerMs; len = 2; }
    else if (rest.starts_with("s")) unit = kNsPerSecond;
    else if (rest.starts_with("m")) unit = kNsPerMinute;
    else if (rest.starts_with("h")) unit = kNsPerHour;
    else if (rest.starts_with("d")) unit = kNsPerDay;
    else if (rest.starts_with("w")) unit = 7 * kNsPerDay;
    else if (rest.starts_with("y")) unit = 365 * kNsPerDay;
    else return make_error(Errc::invalid_argument, "duration '" + std::string(s) + "': unknown unit (use ns, us, ms, s, m, h, d, w, y)");
    int64_t part = 0;
    if (__builtin_mul_overflow(n, unit, &part) || __builtin_add_overflow(total, part, &total)) {
      return make_error(Errc::invalid_argument, "duration '" + std::string(s) + "' overflows");
    }
    pos += len;
  }
  return total;
}

std::string format_duration(int64_t ns) {
  if (ns % kNsPerDay == 0 && ns != 0) return std::to_string(ns / kNsPerDay) + "d";
  if (ns % kNsPerHour == 0 && ns != 0) return std::to_string(ns / kNsPerHour) + "h";
  if (ns % kNsPerMinute == 0 && ns != 0) return std::to_string(ns / kNsPerMinute) + "m";
  if (ns % kNsPerSecond == 0) return std::to_string(ns / kNsPerSecond) + "s";
  if (ns % kNsPerMs == 0) return std::to_string(ns / kNsPerMs) + "ms";
  return std::to_string(ns) + "ns";
}

Result<int64_t> parse_time(std::string_view s, int64_t now_ns, EpochUnit epoch_unit) {
  if (s.empty()) return make_error(Errc::invalid_argument, "empty time");
  if (s == "now") return now_ns;
  if (s.starts_with("now")) s.remove_prefix(3);
  if (s[0] == '-' || s[0] == '+') {
    // A relative time unless it is a plain (negative) number.
    bool all_digits = s.size() > 1 && s.find_first_not_of("0123456789", 1) == std::string_view::npos;
    if (!all_digits) {
      FL_TRY(d, parse_duration(s.substr(1)));
      return s[0] == '-' ? now_ns - d : now_ns + d;
    }
  }
  if (s.size() >= 19 && s[4] == '-') return parse_rfc3339(s);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc() && p == s.data() + s.size()) return epoch_to_ns(n, epoch_unit);
  double d = 0;
  auto [pd, ecd] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ecd == std::errc() && pd == s.data() + s.size()) return epoch_to_ns(d, epoch_unit);
  return bad_time(s, "expected now, -1h, RFC 3339 or an epoch number");
}

}  // namespace fieldline::core
