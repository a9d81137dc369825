#pragma once
// JSON text for API responses. Boost.JSON prints 30.0 as "3E1"; users and tools expect the
// shortest round-trip decimal ("30", "21.5"), so doubles are written with std::to_chars.

#include <boost/json/parse_options.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace fieldline::core {
void append_json(std::string& out, const boost::json::value& v);
std::string to_json(const boost::json::value& v);
void append_json_number(std::string& out, double d);  // non-finite -> null

// Parses `text` as one JSON document, like boost::json::parse, except that every number with a
// fraction or exponent reads to the nearest double (std::from_chars): Boost.JSON 1.81's parser
// can be an ulp off for long mantissas, and a device's value must be stored as it was sent.
// `temp` (may be null) is the parser's working memory before it takes from `sp`; on error,
// `consumed` says where the text went wrong.
boost::json::value parse_json(std::string_view text, boost::system::error_code& ec, boost::json::storage_ptr sp = {},
                              const boost::json::parse_options& options = {}, unsigned char* temp = nullptr, size_t temp_size = 0,
                              size_t* consumed = nullptr);
}  // namespace fieldline::core
