// libFuzzer target: the core JSON telemetry decoder.
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = fieldline::ingest::decode_json_telemetry(std::string_view(reinterpret_cast<const char*>(data), size),
                                                    1'795'395'723'000'000'000);
  if (r) {
    for (const auto& p : *r) {
      if (p.metric.empty()) __builtin_trap();
    }
  }
  return 0;
}
