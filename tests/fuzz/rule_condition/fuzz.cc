// libFuzzer target: rule conditions (the rules' parser), and evaluating whatever parses against
// a few samples. Errors must be reported, never crash.
#include <cstdint>
#include <string_view>

#include "fieldline/analytics/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::analytics::rules;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rule = make_rule("fuzz", text);
  if (!rule) return 0;
  Evaluator e({std::move(*rule)}, {{"site", "north"}});
  int64_t ts = 1'795'400'000'000'000'000LL;
  for (double v : {1.0, 90.0, -5.0, 1e300}) {
    (void)e.observe("temperature", ts += 60'000'000'000LL, v, 0.5);
    (void)e.observe("flow", ts, -v, 0.9);
  }
  return 0;
}
