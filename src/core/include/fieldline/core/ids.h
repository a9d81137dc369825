#pragma once
// Strong id types. A DeviceId is a user-chosen string: 1-128 characters from
// [A-Za-z0-9._:-], so it is safe in MQTT topics, URLs, file names and metric labels.

#include <cstdint>
#include <string>
#include <string_view>

#include "fieldline/core/result.h"

namespace fieldline::core {

// Checks that `id` is usable as a device id; the error says which character is wrong.
Status validate_device_id(std::string_view id);
// Metric names follow the same rule, plus '/' is not allowed either.
Status validate_metric_name(std::string_view name);

// The shard that owns a device: a stable hash of its id modulo the shard count.
uint32_t shard_of(std::string_view device_id, uint32_t shard_count);

}  // namespace fieldline::core
