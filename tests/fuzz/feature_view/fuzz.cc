// libFuzzer target: feature view documents (TOML), and the features of whatever parses, fed a
// few samples (including a late one and a NaN) and read. Errors must be reported, never crash.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>

#include "fieldline/ml/feature_view.h"
#include "fieldline/ml/features.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ml;
  auto view = parse_feature_view(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!view) return 0;
  auto shared = std::make_shared<const FeatureView>(std::move(*view));
  FeatureState state(shared);
  constexpr int64_t t0 = 1'795'400'000'000'000'000LL;
  const auto inputs = shared->inputs();
  for (int i = 0; i < 50; ++i) {
    const int input = state.input(inputs[static_cast<size_t>(i) % inputs.size()]);
    (void)state.apply(input, t0 + int64_t{i} * 7'000'000'000LL, i % 7 == 3 ? std::nan("") : i * 0.5);
    (void)state.apply(input, t0, 1.0);  // late
  }
  std::vector<double> out;
  state.snapshot(t0 + 400'000'000'000LL, out);
  if (out.size() != shared->feature_names().size()) __builtin_trap();
  return 0;
}
