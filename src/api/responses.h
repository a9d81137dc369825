#pragma once
// Response helpers shared by the route files of this module (not part of its interface).

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>

#include "fieldline/core/json.h"
#include "fieldline/transport/http/server.h"
#include "fieldline/tsdb/types.h"

namespace fieldline::api::detail {

inline transport::http::Response json_response(unsigned status, const boost::json::value& body, unsigned version) {
  namespace bhttp = boost::beast::http;
  transport::http::Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = core::to_json(body);
  res.prepare_payload();
  return res;
}

// A stored value as JSON; a non-finite number (which JSON cannot carry) as null.
inline boost::json::value value_json(const tsdb::Value& v) {
  switch (v.index()) {
    case 0: {
      const double d = std::get<0>(v);
      return std::isfinite(d) ? boost::json::value(d) : boost::json::value(nullptr);
    }
    case 1: return boost::json::value(std::get<1>(v));
    case 2: return boost::json::value(std::get<2>(v));
    default: return boost::json::value(std::get<3>(v));
  }
}

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace fieldline::api::detail
