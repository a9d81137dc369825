#pragma once
// Logging: JSON lines on stderr ({"ts":...,"level":...,"logger":...,"msg":...}). Each module
// has a named logger (its logger.h) created from here; loggers are the one kind of global
// the house style allows.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace fieldline::core {
// Configures the default sink and level once at startup; returns false on an unknown level.
bool init_logging(const std::string& level);
// The logger called `name`, created on first use with the shared JSON sink.
std::shared_ptr<spdlog::logger> logger(const std::string& name);
}  // namespace fieldline::core
