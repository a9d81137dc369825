#pragma once
// Response helpers shared by the route files of this module (not part of its interface).

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>

#include "fieldline/core/json.h"
#include "fieldline/transport/http/server.h"

namespace fieldline::api::detail {

inline transport::http::Response json_response(unsigned status, const boost::json::value& body, unsigned version) {
  namespace bhttp = boost::beast::http;
  transport::http::Response res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = core::to_json(body);
  res.prepare_payload();
  return res;
}

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace fieldline::api::detail
