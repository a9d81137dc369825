// libFuzzer target: the MQTT decoder must never crash, hang or read out of bounds, and
// whatever it accepts must re-encode to something it accepts again.
#include <cstdint>
#include <string>

#include "fieldline/transport/mqtt/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::transport::mqtt;
  if (size == 0) return 0;
  uint8_t version = data[0] % 3 == 0 ? 0 : (data[0] % 3 == 1 ? 4 : 5);
  std::span<const char> buf(reinterpret_cast<const char*>(data + 1), size - 1);
  while (!buf.empty()) {
    auto d = decode(buf, version, 1 << 20);
    if (!d || !*d) break;
    std::string again;
    uint8_t v = version == 0 ? std::get<Connect>((*d)->packet).version : version;
    encode((*d)->packet, v, again);
    auto d2 = decode(std::span<const char>(again.data(), again.size()), version, 0);
    if (!d2 || !*d2) __builtin_trap();
    buf = buf.subspan((*d)->size);
    if (version == 0) version = v;
  }
  return 0;
}
