#pragma once
// Data contracts: what a device profile promises about its telemetry (metrics with type, UCUM
// unit, allowed range, required or optional, maximum rate; the device tags it needs). A
// contract is a document (TOML or JSON) that the registry keeps in immutable versions; this
// header parses it, gives its canonical form (what is stored and compared) and tells what
// changed between two versions and whether that change may break senders or readers.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fieldline/core/result.h"
#include "fieldline/ingest/units.h"

namespace fieldline::ingest {

enum class MetricType { float64, int64, boolean, string };
const char* to_string(MetricType t);

struct MetricSpec {
  std::string name;
  MetricType type = MetricType::float64;
  std::string unit;  // UCUM; empty: none (states, codes, counts)
  std::optional<double> min, max;
  bool required = false;
  std::optional<double> max_rate_hz;
  std::string description;
  bool operator==(const MetricSpec&) const = default;
};

struct Contract {
  std::string profile;
  std::string description;
  std::vector<std::string> required_tags;  // sorted, unique
  std::vector<MetricSpec> metrics;         // sorted by name, unique
  const MetricSpec* metric(std::string_view name) const;
  bool operator==(const Contract&) const = default;
};

// Parses a contract document: JSON when it starts with '{', TOML otherwise. A malformed one
// fails with an error naming the line (TOML syntax) and the field, e.g.
// "metrics.temperature.unit: 'degC' is not a UCUM unit (did you mean 'Cel'?)".
Result<Contract> parse_contract(std::string_view text);

// The canonical JSON of a contract: keys in a fixed order, metrics and tags sorted, absent
// options left out. Two documents mean the same contract exactly when these are equal.
std::string canonical_json(const Contract& c);

struct ContractChange {
  std::string field;   // "metrics.temperature.max", "required_tags", ...
  std::string detail;  // "150 -> 120"
  // Breaking: data valid under the old version may be refused by the new one, or readers
  // would misread old data (a removed required metric, a changed type or unit, a narrower
  // range or rate, a metric or tag made required).
  bool breaking = false;
};

// Every difference between two versions, in a stable order.
std::vector<ContractChange> diff_contracts(const Contract& from, const Contract& to);
bool any_breaking(const std::vector<ContractChange>& changes);

}  // namespace fieldline::ingest
