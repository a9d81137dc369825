// libFuzzer target: the built-in linear runtime's artifacts (JSON), as the model registry
// reads them back; whatever loads must predict and explain a row. Errors must be reported,
// never crash.
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fieldline/ml/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ml;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (size_t width : {1u, 3u}) {
    auto model = load_linear(text, width);
    if (!model) continue;
    std::vector<float> row(width, 1.5f), out;
    row[0] = NAN;
    (void)(*model)->predict(row.data(), 1, out);
    (void)(*model)->contributions(row.data(), 1, out);
    (void)(*model)->save();
  }
  return 0;
}
