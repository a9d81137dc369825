#pragma once

#include <string>

#include "fieldline/sim/fleet.h"
#include "fieldline/sim/mqtt_fleet.h"

namespace fieldline::app {

struct SimulateOptions {
  sim::Options fleet;
  std::string target = "mqtt://127.0.0.1:1883";
  std::string server;  // REST URL that registers the devices (default: the target's host, port 8080)
  std::string token;   // admin token (env FIELDLINE_TOKEN)
  double speedup = 1;
  double duration_s = 0;  // simulated seconds; 0: until SIGINT/SIGTERM
  std::string labels;     // file for the ground truth (JSON lines); empty: none
  double bad_share = 0;   // share of messages sent malformed or non-conforming
  std::string format = "table";
};

// fieldline simulate: registers the fleet's devices (a token each; an existing device gets a
// new one), connects each as an MQTT client (or sends over HTTP with its token), and sends its readings as simulated time goes by
// at `speedup` times real time. With a duration the simulation ends at the present moment
// (it starts `duration` ago), so no timestamp is ever in the future; without one it starts
// now and speedup can only catch up. Maintenance commands (devices/{id}/commands/maintenance)
// are carried out. Prints a progress line on a terminal and a summary at the end; 0 when
// every message was acknowledged.
int simulate(SimulateOptions options);

// Registers each device with its profile and site tag through `server`'s REST API (an existing
// device gets a new token); returns their tokens.
Result<std::vector<sim::Credential>> register_fleet(const std::vector<sim::DeviceSpec>& devices, const std::string& server,
                                                    const std::string& token);

}  // namespace fieldline::app
