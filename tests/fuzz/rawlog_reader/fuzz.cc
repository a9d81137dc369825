// libFuzzer target: raw-log segment bytes as a crash or a damaged disk may leave them. The
// reader must stop at the first bad record and never read past the data; the framing scan
// (compression's) must accept every record the reader does, and end where it does unless
// the reader refused a body that its framing accepts.
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
  size_t framed_records = 0, last_end = 0;
  const size_t framed = raw_records_end(bytes, 0, [&](size_t end) {
    ++framed_records;
    if (end <= last_end || end > size) __builtin_trap();
    last_end = end;
  });
  if (framed < whole || framed_records < records || framed != last_end) __builtin_trap();
  return 0;
}
