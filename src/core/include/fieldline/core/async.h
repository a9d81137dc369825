#pragma once
// Running a piece of work on another executor (a shard's thread, a module's own thread, a
// background pool) and resuming the calling coroutine on its own executor with the result.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace fieldline::core {

// Runs f() on `ex` and resumes the caller on its own executor with f()'s result. (A plain
// post, not a coroutine lambda: a coroutine lambda's captures die with the lambda.)
// GCC 12 mishandles non-trivial temporaries inside co_await expressions (double destruction):
// callers name the awaitable first (auto job = on_executor(...); co_await std::move(job)).
template <typename Executor, typename F>
inline auto on_executor(Executor ex, F f) -> boost::asio::awaitable<decltype(f())> {
  namespace asio = boost::asio;
  using R = decltype(f());
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [&ex, &f](auto handler) {
        asio::post(ex, [f = std::move(f), handler = std::move(handler)]() mutable {
          R r = f();
          auto home = asio::get_associated_executor(handler);
          asio::post(home, [handler = std::move(handler), r = std::move(r)]() mutable { handler(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace fieldline::core
