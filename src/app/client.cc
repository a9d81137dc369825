#include "client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "fieldline/core/errc.h"

namespace fieldline::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {
template <typename Stream>
Result<HttpResult> exchange(Stream& stream, const std::string& host, const std::string& token, const std::string& method,
                            const std::string& target, const std::string& body, const std::string& content_type) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::user_agent, "fieldline-cli");
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = body;
  }
  req.prepare_payload();
  boost::system::error_code ec;
  bhttp::write(stream, req, ec);
  if (ec) return core::make_error(core::Errc::io_error, "sending the request: " + ec.message());
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ULL << 32);
  bhttp::read(stream, buf, parser, ec);
  if (ec) return core::make_error(core::Errc::io_error, "reading the response: " + ec.message());
  auto res = parser.release();
  return HttpResult{res.result_int(), std::move(res.body()), std::string(res[bhttp::field::content_type])};
}
}  // namespace

Result<HttpResult> http_request(const std::string& server, const std::string& token, const std::string& method,
                                const std::string& target, const std::string& body, const std::string& content_type) {
  auto url = boost::urls::parse_uri(server);
  if (!url) return core::make_error(core::Errc::invalid_argument, "server URL '" + server + "' is not a URL");
  bool https = url->scheme() == "https";
  std::string host(url->host());
  std::string port = url->has_port() ? std::string(url->port()) : (https ? "443" : "80");
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return core::make_error(core::Errc::io_error, "resolving " + host + ": " + ec.message());
  if (https) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(std::getenv("FIELDLINE_INSECURE") ? asio::ssl::verify_none : asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
    beast::get_lowest_layer(stream).connect(endpoints, ec);
    if (ec) return core::make_error(core::Errc::io_error, "connecting to " + server + ": " + ec.message());
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return core::make_error(core::Errc::io_error, "TLS handshake with " + server + ": " + ec.message());
    return exchange(stream, host, token, method, target, body, content_type);
  }
  beast::tcp_stream stream(io);
  stream.connect(endpoints, ec);
  if (ec) return core::make_error(core::Errc::io_error, "connecting to " + server + ": " + ec.message());
  return exchange(stream, host, token, method, target, body, content_type);
}

}  // namespace fieldline::app
