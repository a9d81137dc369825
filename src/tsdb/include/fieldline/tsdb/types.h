#pragma once
// The data model: a series is (device, metric) plus tags, holding values of one type.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fieldline::tsdb {

enum class ValueType : uint8_t { float64 = 1, int64 = 2, boolean = 3, string = 4 };
const char* to_string(ValueType t);

// A sample value; the variant index matches ValueType minus one.
using Value = std::variant<double, int64_t, bool, std::string>;
inline ValueType type_of(const Value& v) { return static_cast<ValueType>(v.index() + 1); }
// Numeric view of a value for aggregation (bool -> 0/1); strings have none.
bool numeric_value(const Value& v, double& out);
// Bitwise equality (NaN payloads and -0.0 compare by bits, as they are stored).
bool same_value(const Value& a, const Value& b);

using SeriesRef = uint64_t;

// Identifies a series. Tags are sorted by key, keys unique; "device" and "metric" are
// reserved names used by selectors.
struct SeriesKey {
  std::string device;
  std::string metric;
  std::vector<std::pair<std::string, std::string>> tags;

  // The value of a label (device, metric or a tag), or nullptr.
  const std::string* label(std::string_view name) const;
  // "device/metric{k=v,...}", for messages.
  std::string to_string() const;
  bool operator==(const SeriesKey&) const = default;
};

struct Sample {
  int64_t ts = 0;
  Value value;
};

}  // namespace fieldline::tsdb
