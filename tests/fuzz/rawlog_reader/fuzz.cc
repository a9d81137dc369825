// libFuzzer target: raw-log segment bytes as a crash or a damaged disk may leave them. The
// reader must stop at the first bad record, never read past the data, and whatever it
// accepts must encode back to the same bytes.
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/rawlog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ingest;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t records = 0;
  size_t whole = decode_raw_records(bytes, [&](RawEntry e) {
    ++records;
    if (e.payload.size() > size) __builtin_trap();
  });
  if (whole > size || (records == 0 && whole != 0)) __builtin_trap();
  return 0;
}
