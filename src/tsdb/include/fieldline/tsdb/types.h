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
using Tags = std::vector<std::pair<std::string, std::string>>;

struct SeriesKey {
  std::string device;
  std::string metric;
  Tags tags;

  // The value of a label (device, metric or a tag), or nullptr.
  const std::string* label(std::string_view name) const;
  // "device/metric{k=v,...}", for messages.
  std::string to_string() const;
  bool operator==(const SeriesKey&) const = default;
};

// A series' labels without owning them: a SeriesKey's, or the head's, which keeps each
// device name, metric name and tag set once however many series share it.
struct SeriesLabels {
  SeriesLabels(const SeriesKey& key) : device(&key.device), metric(&key.metric), tags(&key.tags) {}  // NOLINT: a view
  SeriesLabels(const std::string& d, const std::string& m, const Tags& t) : device(&d), metric(&m), tags(&t) {}
  const std::string* label(std::string_view name) const;
  SeriesKey key() const { return {*device, *metric, *tags}; }
  std::string to_string() const;
  bool operator==(const SeriesLabels& o) const { return *device == *o.device && *metric == *o.metric && *tags == *o.tags; }

  const std::string* device;
  const std::string* metric;
  const Tags* tags;
};

struct Sample {
  int64_t ts = 0;
  Value value;
};

}  // namespace fieldline::tsdb
