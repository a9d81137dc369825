// libFuzzer target: the chunk and rollup decoders on arbitrary bytes. Inside a block they run
// only on bytes whose CRC matched, which a mutating fuzzer rarely produces, so the block
// reader's target seldom reaches them; this one does. The first byte picks the decoder.
#include <cstdint>
#include <string_view>

#include "fieldline/tsdb/chunk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::tsdb;
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto it = ChunkIterator::open(bytes);
      if (it) {
        while (it->next()) (void)it->value();
      }
      break;
    }
    case 1: (void)decode_rollups(bytes); break;
    case 2: (void)decode_rollups_v2(bytes); break;
    default: (void)decode_rollups_v1(bytes); break;
  }
  return 0;
}
