// libFuzzer target: contract documents (TOML or JSON), UCUM unit strings and unit pairs to
// convert between, as an admin's file or a REST body would bring them. The first byte picks.
#include <cstdint>
#include <string_view>

#include "fieldline/ingest/contract.h"
#include "fieldline/ingest/units.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ingest;
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 3 == 2) {
    // Two units, one per line: a conversion, or a clear refusal.
    auto nl = text.find('\n');
    if (nl != std::string_view::npos) {
      auto c = unit_conversion(text.substr(0, nl), text.substr(nl + 1));
      if (c) (void)c->apply(1.0);
    }
  } else if (data[0] % 3 == 0) {
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
