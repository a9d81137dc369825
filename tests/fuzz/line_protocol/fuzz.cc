// libFuzzer target: the InfluxDB line-protocol decoder.
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)fieldline::ingest::decode_line_protocol(std::string_view(reinterpret_cast<const char*>(data), size),
                                                fieldline::core::EpochUnit::nanoseconds, 1'795'395'723'000'000'000);
  return 0;
}
