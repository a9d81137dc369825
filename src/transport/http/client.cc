#include "fieldline/transport/http/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <openssl/ssl.h>

#include "fieldline/core/errc.h"

namespace fieldline::transport::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

struct Target {
  bool tls = false;
  std::string host, port, path;
};

Result<Target> parse(const std::string& url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) return core::make_error(core::Errc::invalid_argument, "'" + url.substr(0, 200) + "' is not a URL");
  Target t;
  if (u->scheme() == "https") t.tls = true;
  else if (u->scheme() != "http") return core::make_error(core::Errc::invalid_argument, "'" + url.substr(0, 200) + "': only http and https");
  t.host = std::string(u->host());
  if (t.host.empty()) return core::make_error(core::Errc::invalid_argument, "'" + url.substr(0, 200) + "' names no host");
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.path = std::string(u->encoded_target());
  if (t.path.empty()) t.path = "/";
  return t;
}

Error failed(const std::string& what, const boost::system::error_code& ec) {
  return core::make_error(core::Errc::io_error, what + ": " + ec.message());
}

template <typename Stream>
asio::awaitable<Result<ClientResponse>> exchange(Stream& stream, const Target& t,
                                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                                 const std::string& body) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, t.path, 11};
  req.set(bhttp::field::host, t.host);
  req.set(bhttp::field::user_agent, "fieldline");
  req.set(bhttp::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  auto [wec, wn] = co_await bhttp::async_write(stream, req, use_nothrow);
  if (wec) co_return failed("sending to " + t.host, wec);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1 << 20);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
  if (rec) co_return failed("reading the answer of " + t.host, rec);
  co_return ClientResponse{parser.get().result_int(), parser.get().body()};
}

}  // namespace

Status check_url(const std::string& url) {
  auto t = parse(url);
  if (!t) return t.error();
  return {};
}

asio::awaitable<Result<ClientResponse>> post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
                                             std::string body, std::chrono::milliseconds timeout) {
  auto target = parse(url);
  if (!target) co_return target.error();
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [ec, endpoints] = co_await resolver.async_resolve(target->host, target->port, use_nothrow);
  if (ec) co_return failed("resolving " + target->host, ec);
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_after(timeout);
  auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, use_nothrow);
  if (cec) co_return failed("connecting to " + target->host + ":" + target->port, cec);
  if (!target->tls) {
    auto r = co_await exchange(tcp_stream, *target, headers, body);
    boost::system::error_code ignored;
    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
  }
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_default_verify_paths();
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp_stream), ctx);
  if (!SSL_set_tlsext_host_name(tls.native_handle(), target->host.c_str())) {
    co_return core::make_error(core::Errc::io_error, "TLS: cannot set the server name " + target->host);
  }
  tls.set_verify_callback(asio::ssl::host_name_verification(target->host));
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (hec) co_return failed("TLS handshake with " + target->host, hec);
  auto r = co_await exchange(tls, *target, headers, body);
  co_await tls.async_shutdown(use_nothrow);
  co_return r;
}

}  // namespace fieldline::transport::http
