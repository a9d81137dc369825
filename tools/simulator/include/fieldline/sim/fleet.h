#pragma once
// The fleet simulator's physics (fieldline simulate, fieldline demo): devices whose readings
// follow what wears them out, deterministic under a seed, with the ground truth beside them.
//
// - Pumps: bearing wear that accelerates as it grows raises vibration, bearing temperature and
//   current until the bearing fails; seal leaks that grow until the seal fails (flow and
//   pressure fall); cavitation episodes (vibration and noise up, flow down) that are anomalies,
//   not failures. A failure stops the pump for a repair of 12-36 h; maintenance stops it for
//   4 h and renews bearing and seal.
// - HVAC units: coil fouling lowers the coefficient of performance, so the energy per degree of
//   cooling rises with it (outdoor temperature follows a daily cycle); past a point the
//   compressor trips; maintenance (cleaning) takes 2 h.
// - Energy meters: power with daily and weekly load shapes, a cumulative energy counter.
// - Sensor faults on any device: drift, stuck values, spikes, dropouts, clock skew.
//
// Every device reads at `rate_hz` of simulated time, from its own random stream (seed, index),
// so a device's readings do not depend on the others or on how time is advanced. Each reading
// says `running` (1 or 0); the one that opens a stop carries `failure` 1 or `maintenance` 1,
// as a device's controller would report them.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::sim {

enum class Kind : uint8_t { pump, hvac, energy_meter };
// The device profile each kind registers with: "pump", "hvac", "energy-meter".
const char* profile_of(Kind kind);

struct DeviceSpec {
  std::string id;    // pump-0001, hvac-0001, meter-0001
  Kind kind = Kind::pump;
  std::string site;  // site-1, site-2...
};

struct Reading {
  size_t device = 0;
  int64_t ts_ns = 0;  // as the device's clock says (a skewed clock is off)
  std::vector<std::pair<const char*, double>> values;
};

// What happened, for the labels file: failure (detail: bearing, seal, compressor), repaired,
// maintenance, maintained, fault and fault_end (detail: drift:<metric>, stuck:<metric>,
// spikes:<metric>, dropout, clock_skew), cavitation and cavitation_end.
struct Event {
  size_t device = 0;
  int64_t ts_ns = 0;  // true time
  std::string kind, detail;
};

struct Options {
  uint32_t devices = 10;
  std::string profile = "pump";  // pump, hvac, energy-meter, mixed
  uint64_t seed = 1;
  double rate_hz = 1.0 / 60;          // readings per simulated second per device
  uint32_t sites = 2;
  double faults_per_day = 1.0 / 90;   // sensor faults per device per simulated day
  double pump_life_days = 30;         // median time from new to a bearing failure
  // Failures no sensor foresees (a motor winding, debris through the impeller): a pump's chance
  // per running day. Real fleets have them, and no model may take credit for avoiding them.
  double sudden_failures_per_day = 1.0 / 240;
};

// "mixed": 70% pumps, 20% HVAC units, 10% energy meters.
Result<std::vector<DeviceSpec>> fleet_of(const Options& options);

class Fleet {
 public:
  using OnReading = std::function<void(const Reading&)>;
  using OnEvent = std::function<void(const Event&)>;

  static Result<std::unique_ptr<Fleet>> make(const Options& options, int64_t start_ns);
  ~Fleet();
  const std::vector<DeviceSpec>& devices() const { return devices_; }
  int64_t now() const { return now_; }
  // Readings from each device's next one on come `rate_hz` apart (the demo's live part sends
  // more often than its accelerated history). Above 0, at most 1000.
  void set_rate(double rate_hz);

  // Advances every device to `until_ns`: readings and events of each device in time order,
  // devices interleaved by time.
  void advance(int64_t until_ns, const OnReading& on_reading, const OnEvent& on_event);
  // Planned maintenance of `device` now (ignored while it is down): it stops and comes back
  // renewed. Returns whether it was done.
  bool maintain(size_t device, const OnEvent& on_event);
  // For the labels and the demo's scoring: whether the device would fail within `horizon_ns`
  // if nothing were done (its wear projected forward), and whether it is down now.
  bool fails_within(size_t device, int64_t horizon_ns) const;
  bool down(size_t device) const;

  struct Model;

 private:
  Fleet() = default;
  std::vector<DeviceSpec> devices_;
  std::vector<std::unique_ptr<Model>> models_;
  Options options_;  // the models read it
  int64_t now_ = 0;
  int64_t period_ns_ = 0;
};

}  // namespace fieldline::sim
