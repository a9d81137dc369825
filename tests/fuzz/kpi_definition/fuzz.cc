// libFuzzer target: KPI definitions (TOML), and the KPIs of whatever parses over a few
// readings. Errors must be reported, never crash.
#include <cstdint>
#include <string_view>

#include "fieldline/ops/kpi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fieldline::ops::kpi;
  auto d = parse_definition(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!d) return 0;
  constexpr int64_t t0 = 1'795'400'000'000'000'000LL, hour = 3'600'000'000'000LL;
  DeviceSeries s;
  s.device = "d";
  for (int i = 0; i < 24; ++i) {
    s.running.push_back({t0 + i * hour, i % 5 == 2 ? 0.0 : 1.0});
    s.output.push_back({t0 + i * hour, 10.0 * i});
    s.energy.push_back({t0 + i * hour, 3.0 * i});
  }
  s.failure.push_back({t0 + 2 * hour, 1});
  s.maintenance.push_back({t0 + 7 * hour, 1});
  s.alarms = {t0, t0 + 20 * hour};
  auto v = compute(*d, {s}, t0, t0 + 24 * hour);
  if (v.failures != 1 || v.maintenance != 1) __builtin_trap();
  return 0;
}
