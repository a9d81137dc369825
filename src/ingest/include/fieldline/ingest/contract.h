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
#include "fieldline/ingest/decode.h"
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
  // How often the metric should arrive: gaps longer than 1.5 intervals count as missing
  // samples in the data-quality figures.
  std::optional<double> expected_interval_s;
  std::string description;
  bool operator==(const MetricSpec&) const = default;
};

// How a vendor-specific JSON layout maps to the contract's metrics.
struct FieldMapping {
  std::string metric;   // a metric of the contract
  std::string pointer;  // JSON pointer (RFC 6901) to the value, e.g. "/data/temp_c"
  double scale = 1, offset = 0;  // value = raw * scale + offset
  std::string unit;     // UCUM unit of the scaled value; empty: the metric's own
  bool operator==(const FieldMapping&) const = default;
};

// The decoder the profile's devices use when a message does not say (MQTT 3.1.1 has no
// content type): the core JSON format, SenML, or a mapping of a vendor's layout.
struct DecoderSpec {
  enum class Kind { json, senml, mapping } kind = Kind::json;
  std::string time_pointer;     // mapping: the timestamp (epoch s/ms/us/ns or RFC 3339); empty: receipt time
  std::string records_pointer;  // mapping: an array whose elements are decoded one by one; empty: the document
  std::vector<FieldMapping> fields;  // mapping: sorted by metric
  bool operator==(const DecoderSpec&) const = default;
};
const char* to_string(DecoderSpec::Kind k);

struct Contract {
  std::string profile;
  std::string description;
  std::vector<std::string> required_tags;  // sorted, unique
  std::vector<MetricSpec> metrics;         // sorted by name, unique
  DecoderSpec decoder;
  const MetricSpec* metric(std::string_view name) const;
  bool operator==(const Contract&) const = default;
};

// Decodes a vendor JSON document with a mapping decoder. Missing fields are skipped (the
// contract's required metrics catch what must be there); errors say which pointer failed.
Result<std::vector<Point>> decode_mapped(const DecoderSpec& decoder, std::string_view payload, int64_t receipt_ns,
                                         const DecodeLimits& limits = {});

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
