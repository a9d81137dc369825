#pragma once
// `fieldline serve`: wires every module together and runs until SIGTERM/SIGINT.

#include "fieldline/core/config.h"

namespace fieldline::app {
// Returns the process exit status.
int serve(const core::Config& config);
}  // namespace fieldline::app
