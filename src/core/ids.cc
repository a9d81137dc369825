#include "fieldline/core/ids.h"

#include "fieldline/core/errc.h"

namespace fieldline::core {
namespace {
bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == ':';
}
Status validate(std::string_view what, std::string_view id) {
  if (id.empty()) return make_error(Errc::invalid_argument, std::string(what) + " is empty");
  if (id.size() > 128) return make_error(Errc::invalid_argument, std::string(what) + " is longer than 128 characters");
  for (size_t i = 0; i < id.size(); ++i) {
    if (!id_char(id[i])) {
      return make_error(Errc::invalid_argument, std::string(what) + " '" + std::string(id.substr(0, 64)) +
                                                    "' has a character outside [A-Za-z0-9._:-] at offset " +
                                                    std::to_string(i));
    }
  }
  return ok();
}
}  // namespace

Status validate_device_id(std::string_view id) { return validate("device id", id); }
Status validate_metric_name(std::string_view name) { return validate("metric name", name); }

uint32_t shard_of(std::string_view device_id, uint32_t shard_count) {
  // FNV-1a: stable across versions and platforms, which matters because shard data
  // directories are keyed by it.
  uint64_t h = 1469598103934665603ULL;
  for (char c : device_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return shard_count == 0 ? 0 : static_cast<uint32_t>(h % shard_count);
}

}  // namespace fieldline::core
