#pragma once

#include <cstdint>
#include <string>

namespace fieldline::app {

struct DemoOptions {
  uint32_t pumps = 200;       // the fleet: these pumps plus HVAC units and energy meters (7:2:1)
  uint32_t days = 60;         // simulated; the model trains on the first half and acts in the second
  double minutes = 2.5;       // wall-clock time the simulated days take (at most; the platform sets the pace)
  uint32_t preventive_days = 15;  // the fixed-interval baseline's period
  uint64_t seed = 1;
  double bad_share = 0.005;   // share of ordinary readings sent malformed or non-conforming
  bool serve = true;          // keep the platform running with live data afterwards
  std::string format = "table";
  std::string data_dir = "fieldline-demo";  // serve mode only; --no-serve uses a temporary one
};

// fieldline demo: see demo.cc.
int demo(const DemoOptions& options);

}  // namespace fieldline::app
