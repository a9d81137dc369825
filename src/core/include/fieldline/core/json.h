#pragma once
// JSON text for API responses. Boost.JSON prints 30.0 as "3E1"; users and tools expect the
// shortest round-trip decimal ("30", "21.5"), so doubles are written with std::to_chars.

#include <boost/json/value.hpp>

#include <string>

namespace fieldline::core {
void append_json(std::string& out, const boost::json::value& v);
std::string to_json(const boost::json::value& v);
void append_json_number(std::string& out, double d);  // non-finite -> null
}  // namespace fieldline::core
