// libFuzzer target: contract documents (TOML or JSON) and UCUM unit strings, as an admin's
// file or a REST body would bring them. The first byte picks which.
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ingest;
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto c = parse_contract(text);
    if (c) {
      // What is accepted has a canonical form that parses back to the same contract.
      auto again = parse_contract(canonical_json(*c));
      if (!again || !(*again == *c)) __builtin_trap();
      (void)diff_contracts(*c, *again);
    }
  } else {
    (void)validate_ucum(text);
  }
  return 0;
}
