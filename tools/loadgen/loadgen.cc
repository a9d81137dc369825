// fieldline-loadgen: an MQTT load generator on Boost.Asio that works against any broker.
// Each connection pre-encodes its PUBLISH packets and writes them in large batches, so the
// generator (not the server) is cheap per message: a libmosquitto publisher costs ~19 us of
// CPU per message, which would otherwise be the ceiling on a 2-core machine.
//
// Output: one JSON object with messages sent/acknowledged, the rate, PUBACK latency
// percentiles (QoS 1) and the generator's own CPU time per message.

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "fieldline/transport/mqtt/codec.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace mq = fieldline::transport::mqtt;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 1883;
  int connections = 100;
  int qos = 1;
  double rate = 0;  // total messages/s; 0 = as fast as possible
  double duration = 10;
  int window = 200;  // QoS 1 messages in flight per connection
  int batch = 64;    // packets per write
  std::string credentials;  // file: "device token" per line; else anonymous, ids dev-<i>
  std::string topic = "devices/{id}/telemetry";
  int version = 4;
  int threads = 1;
  int pace_tick_us = 1000;
  // Latency percentiles leave out messages sent in the first `warmup` seconds: connecting
  // thousands of devices and the server's first sight of each series are not the steady state.
  double warmup = 0;
  // A subscriber on this filter counts what the broker forwards (its forwarding rate); empty:
  // none. Fieldline forwards no telemetry to MQTT subscribers (it stores it), so this is for
  // brokers.
  std::string subscribe;
  int subscribe_qos = 0;
};

struct Stats {
  std::mutex mu;
  std::vector<double> latencies_ms;
  uint64_t sent = 0, acked = 0, failed_connections = 0, refused_acks = 0;
};

std::string payload(uint64_t seq, int64_t ts_us) {
  // ~100 bytes of JSON with 5 values, like the benchmark.
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "{\"ts\":%lld,\"values\":{\"temp\":%.2f,\"pressure\":%.3f,\"vibration\":%.4f,\"rpm\":%llu,\"current\":%.2f}}",
                static_cast<long long>(ts_us), 20.0 + (seq % 100) * 0.01, 1.0 + (seq % 7) * 0.001, 0.01 * (seq % 13),
                static_cast<unsigned long long>(1400 + seq % 200), 3.0 + (seq % 11) * 0.1);
  return buf;
}

// Resolves and connects to the broker; the error, if any.
asio::awaitable<boost::system::error_code> connect_tcp(tcp::socket& socket, const Options& o) {
  boost::system::error_code ec;
  tcp::resolver resolver(socket.get_executor());
  auto eps = co_await resolver.async_resolve(o.host, std::to_string(o.port), asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_await asio::async_connect(socket, eps, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

class Connection;

// Paced connections cost a timer wake-up per message if each paces itself (10,000 devices at
// 10 msg/s; or 100 connections at 1,500 msg/s, where the generator then used more CPU per
// message than the server); one ticker per thread writes whatever is due on all of its
// connections instead, so the generator stays cheaper than the server it measures.
struct Pacer {
  explicit Pacer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  // Next due time of each connection, earliest first: a tick touches only those due. (main
  // keeps the connections alive until every thread is done.)
  using Due = std::pair<Clock::time_point, Connection*>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
  bool finished = false;
  asio::awaitable<void> run(Clock::time_point end, std::chrono::microseconds tick);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, const Options& o, std::string id, std::string token, Stats& stats, int index,
             Clock::time_point end)
      : socket_(io), opts_(o), id_(std::move(id)), token_(std::move(token)), stats_(stats), index_(index), end_(end),
        // Sized to the window, not to the 16-bit id space: 10,000 connections must not cost
        // the generator gigabytes. Ids in flight are at most `window` consecutive values.
        sent_at_(std::bit_ceil(static_cast<size_t>(o.window) * 2 + 2)),
        measure_from_(end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration - o.warmup))) {
    topic_ = o.topic;
    auto pos = topic_.find("{id}");
    if (pos != std::string::npos) topic_.replace(pos, 4, id_);
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto connecting = connect_tcp(socket_, opts_);  // named: GCC 12 and temporaries in co_await
    boost::system::error_code ec = co_await std::move(connecting);
    if (ec) {
      std::lock_guard l(stats_.mu);
      ++stats_.failed_connections;
      co_return;
    }
    socket_.set_option(tcp::no_delay(true));
    mq::Connect c;
    c.version = static_cast<uint8_t>(opts_.version);
    c.client_id = "loadgen-" + std::to_string(index_);
    c.keep_alive = 60;
    if (!token_.empty()) {
      c.username = id_;
      c.password = token_;
    }
    std::string out;
    mq::encode(c, c.version, out);
    co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    // CONNACK
    read_buf_.resize(8192);
    size_t used = 0;
    bool connected = false;
    while (!connected && !ec) {
      size_t n = co_await socket_.async_read_some(asio::buffer(read_buf_.data() + used, read_buf_.size() - used),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      used += n;
      auto d = mq::decode(std::span<const char>(read_buf_.data(), used), c.version, 0);
      if (d && *d) {
        connected = std::get<mq::Connack>((*d)->packet).code == 0;
        used -= (*d)->size;
        if (!connected) break;
      } else if (!d) {
        break;
      }
    }
    if (!connected) {
      std::lock_guard l(stats_.mu);
      ++stats_.failed_connections;
      co_return;
    }
    version_ = c.version;
    asio::co_spawn(socket_.get_executor(), reader(), asio::detached);
    if (pacer_) {
      socket_.non_blocking(true);
      paced_start_ = staggered_start();
      if (!pacer_->finished) {
        pacer_->due.emplace(next_due(), this);
        paced_done_.expires_at(Clock::time_point::max());
        co_await paced_done_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      co_await drain();
    } else {
      co_await writer();
    }
  }

  void use_pacer(Pacer* p) { pacer_ = p; }

  // Paced mode: writes the messages due by `now` without waiting (a tiny write to a socket
  // with room never blocks; what does not fit is retried on the next tick).
  void send_due(Clock::time_point now) {
    if (closed_) return;
    const double per_conn_rate = opts_.rate / opts_.connections;
    double due = std::chrono::duration<double>(now - paced_start_).count() * per_conn_rate;
    int n = static_cast<int>(std::min<double>(due - static_cast<double>(seq_), opts_.batch));
    if (opts_.qos == 1) n = std::min<int>(n, opts_.window - static_cast<int>(inflight_));
    if (n > 0) encode_publishes(n, pending_);
    if (pending_.empty()) return;
    boost::system::error_code ec;
    size_t written = socket_.write_some(asio::buffer(pending_), ec);
    pending_.erase(0, written);
    if (ec && ec != asio::error::would_block) closed_ = true;
  }
  void end_paced() { paced_done_.cancel(); }
  Clock::time_point next_due() const {
    return paced_start_ + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(seq_ + 1) * opts_.connections / opts_.rate));
  }

 private:
  // Unpaced (--rate 0): batches of --batch publishes as fast as the QoS 1 window allows.
  asio::awaitable<void> writer() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    std::string out;
    while (Clock::now() < end_) {
      int n = opts_.batch;
      if (opts_.qos == 1) {
        n = std::min<int>(n, opts_.window - static_cast<int>(inflight_));
        if (n <= 0) {
          window_open_.expires_at(Clock::time_point::max());
          co_await window_open_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          continue;
        }
      }
      out.clear();
      encode_publishes(n, out);
      co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    co_await drain();
  }

  void encode_publishes(int n, std::string& out) {
    const int64_t now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto now = Clock::now();
    for (int i = 0; i < n; ++i) {
      mq::Publish p;
      p.qos = static_cast<uint8_t>(opts_.qos);
      p.topic = topic_;
      ++seq_;
      if (p.qos) {
        p.packet_id = next_id_++;
        if (next_id_ == 0) next_id_ = 1;
        sent_at_[p.packet_id & (sent_at_.size() - 1)] = now;
        ++inflight_;
      }
      // A device's clock: its timestamps (in microseconds) rise with every message, as real
      // readings do. (The ms plus seq % 1000 used before went backwards, and repeated, once a
      // connection sent over 1,000 messages in one batch: unpaced QoS 0 does, and the server
      // then measured its handling of out-of-order and conflicting samples, not ingestion.)
      last_ts_us_ = std::max(now_us, last_ts_us_ + 1);
      p.payload = payload(seq_, last_ts_us_);
      mq::encode(p, version_, out);
    }
    sent_ += static_cast<uint64_t>(n);
  }

  // Stagger the connections over one period so rate-limited fleets don't fire in lockstep.
  Clock::time_point staggered_start() const {
    const double per_conn_rate = opts_.rate > 0 ? opts_.rate / opts_.connections : 0;
    if (per_conn_rate <= 0) return Clock::now();
    return Clock::now() - std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>((index_ % 1000) / 1000.0 * std::min(1.0, 1.0 / per_conn_rate)));
  }

  // Waits for outstanding acks (QoS 1) or a PINGRESP (QoS 0: the server read everything).
  asio::awaitable<void> drain() {
    boost::system::error_code ec;
    asio::steady_timer timer(socket_.get_executor());
    std::string out = std::move(pending_);
    mq::encode(mq::Pingreq{}, version_, out);
    co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    auto drain_end = Clock::now() + std::chrono::seconds(30);
    while ((inflight_ > 0 || !pong_) && Clock::now() < drain_end && !closed_) {
      window_open_.expires_at(drain_end);  // the reader cancels it on every read
      co_await window_open_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    finished_at_ = Clock::now();
    {
      std::lock_guard l(stats_.mu);
      stats_.sent += sent_;
      stats_.acked += acked_;
      stats_.refused_acks += refused_;
      stats_.latencies_ms.insert(stats_.latencies_ms.end(), latencies_.begin(), latencies_.end());
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  asio::awaitable<void> reader() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    size_t used = 0;
    for (;;) {
      size_t n = co_await socket_.async_read_some(asio::buffer(read_buf_.data() + used, read_buf_.size() - used),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      used += n;
      size_t off = 0;
      auto now = Clock::now();
      for (;;) {
        auto d = mq::decode(std::span<const char>(read_buf_.data() + off, used - off), version_, 0);
        if (!d || !*d) break;
        off += (*d)->size;
        if (auto* a = std::get_if<mq::Ack>(&(*d)->packet)) {
          --inflight_;
          ++acked_;
          if (a->reason >= 0x80) ++refused_;
          const auto sent_at = sent_at_[a->packet_id & (sent_at_.size() - 1)];
          if (sent_at >= measure_from_) latencies_.push_back(std::chrono::duration<double, std::milli>(now - sent_at).count());
        } else if (std::holds_alternative<mq::Pingresp>((*d)->packet)) {
          pong_ = true;
        }
      }
      std::memmove(read_buf_.data(), read_buf_.data() + off, used - off);
      used -= off;
      window_open_.cancel();
    }
    closed_ = true;
    window_open_.cancel();
  }

  tcp::socket socket_;
  const Options& opts_;
  std::string id_, token_, topic_;
  Stats& stats_;
  int index_;
  Clock::time_point end_;
  std::vector<Clock::time_point> sent_at_;
  Clock::time_point measure_from_;  // acks of messages sent earlier are not in the percentiles
  std::vector<char> read_buf_;
  asio::steady_timer window_open_{socket_.get_executor()};
  uint8_t version_ = 4;
  uint16_t next_id_ = 1;
  uint64_t inflight_ = 0, sent_ = 0, acked_ = 0, refused_ = 0, seq_ = 0;
  int64_t last_ts_us_ = 0;  // the last message's timestamp
  Pacer* pacer_ = nullptr;
  Clock::time_point paced_start_{};
  asio::steady_timer paced_done_{socket_.get_executor()};
  std::string pending_;  // paced mode: written next tick
  bool pong_ = false, closed_ = false;
  std::vector<double> latencies_;

 public:
  Clock::time_point finished_at_{};
};

// Counts what the broker forwards on a subscription while the publishers run: started and
// subscribed before they connect, done once they are and nothing has come for a second.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(asio::io_context& io, const Options& o) : socket_(io), opts_(o) {}

  std::atomic<bool> subscribed{false}, failed{false}, publishers_done{false};
  uint64_t received = 0;
  Clock::time_point first{}, last{};

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto connecting = connect_tcp(socket_, opts_);  // named: GCC 12 and temporaries in co_await
    boost::system::error_code ec = co_await std::move(connecting);
    if (ec) {
      failed = true;
      co_return;
    }
    mq::Connect c;
    c.version = static_cast<uint8_t>(opts_.version);
    c.client_id = "loadgen-subscriber";
    c.keep_alive = 60;
    std::string out;
    mq::encode(c, c.version, out);
    mq::Subscribe sub;
    sub.packet_id = 1;
    sub.filters.emplace_back(opts_.subscribe, static_cast<uint8_t>(opts_.subscribe_qos));
    mq::encode(sub, c.version, out);
    co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    std::vector<char> buf(1 << 20);
    size_t used = 0;
    std::string acks;
    // Ends the read below once the publishers are done and a second has passed without a message.
    asio::co_spawn(socket_.get_executor(), watch(), asio::detached);
    while (!ec) {
      size_t n = co_await socket_.async_read_some(asio::buffer(buf.data() + used, buf.size() - used), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      used += n;
      size_t off = 0;
      const auto now = Clock::now();
      for (;;) {
        auto d = mq::decode(std::span<const char>(buf.data() + off, used - off), c.version, 0);
        if (!d) {
          failed = true;
          ec = asio::error::invalid_argument;
          break;
        }
        if (!*d) break;
        off += (*d)->size;
        if (auto* p = std::get_if<mq::Publish>(&(*d)->packet)) {
          if (received++ == 0) first = now;
          last = now;
          if (p->qos == 1) mq::encode(mq::Ack{mq::PacketType::puback, p->packet_id, 0, {}}, c.version, acks);
        } else if (auto* a = std::get_if<mq::Suback>(&(*d)->packet)) {
          if (a->codes.empty() || a->codes[0] >= 0x80) failed = true;
          subscribed = true;
        } else if (auto* k = std::get_if<mq::Connack>(&(*d)->packet); k && k->code != 0) {
          failed = true;
        }
      }
      std::memmove(buf.data(), buf.data() + off, used - off);
      used -= off;
      if (!acks.empty()) {
        co_await asio::async_write(socket_, asio::buffer(acks), asio::redirect_error(asio::use_awaitable, ec));
        acks.clear();
      }
    }
    if (!subscribed) failed = true;
    subscribed = true;  // wakes a main thread still waiting
  }

 private:
  asio::awaitable<void> watch() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    uint64_t seen = UINT64_MAX;
    const auto give_up = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts_.duration + 60));
    for (;;) {
      quiet_.expires_after(std::chrono::seconds(1));
      co_await quiet_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if ((publishers_done && received == seen) || Clock::now() > give_up) break;
      seen = received;
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  const Options& opts_;
  asio::steady_timer quiet_{socket_.get_executor()};
};

asio::awaitable<void> Pacer::run(Clock::time_point end, std::chrono::microseconds tick) {
  boost::system::error_code ec;
  for (auto now = Clock::now(); now < end; now = Clock::now()) {
    while (!due.empty() && due.top().first <= now) {
      Connection* c = due.top().second;
      due.pop();
      c->send_due(now);
      // Held back by the QoS 1 window: look again next tick.
      due.emplace(std::max(c->next_due(), now + tick), c);
    }
    timer.expires_after(tick);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  finished = true;
  for (; !due.empty(); due.pop()) due.top().second->end_paced();
}

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"MQTT load generator"};
  app.add_option("--host", o.host);
  app.add_option("--port", o.port);
  app.add_option("--connections", o.connections);
  app.add_option("--qos", o.qos)->check(CLI::IsMember({0, 1}));
  app.add_option("--rate", o.rate, "Total messages per second (0: as fast as possible)");
  app.add_option("--duration", o.duration, "Seconds of load");
  app.add_option("--window", o.window, "QoS 1 messages in flight per connection");
  app.add_option("--batch", o.batch, "Packets per write");
  app.add_option("--credentials", o.credentials, "File of 'device token' lines, one per connection");
  app.add_option("--topic", o.topic, "Topic; {id} is replaced by the device id");
  app.add_option("--mqtt-version", o.version)->check(CLI::IsMember({4, 5}));
  app.add_option("--threads", o.threads);
  app.add_option("--pace-tick-us", o.pace_tick_us, "With --rate: one ticker per thread writes what is due on its connections every tick (default 1000)");
  app.add_option("--subscribe", o.subscribe, "A subscriber on this filter (e.g. devices/+/telemetry) counts what a broker forwards");
  app.add_option("--subscribe-qos", o.subscribe_qos)->check(CLI::IsMember({0, 1}));
  app.add_option("--warmup", o.warmup, "Seconds at the start whose messages the latency percentiles leave out");
  CLI11_PARSE(app, argc, argv);
  if (o.warmup < 0 || o.warmup >= o.duration) {
    std::fprintf(stderr, "error: --warmup must be at least 0 and less than --duration\n");
    return 2;
  }

  std::vector<std::pair<std::string, std::string>> creds;
  if (!o.credentials.empty()) {
    std::ifstream in(o.credentials);
    std::string id, token;
    while (in >> id >> token) creds.emplace_back(id, token);
    if (creds.size() < static_cast<size_t>(o.connections)) {
      std::fprintf(stderr, "error: %s has %zu credentials for %d connections\n", o.credentials.c_str(), creds.size(), o.connections);
      return 2;
    }
  }
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  // The subscriber, on a thread of its own, is subscribed before any publisher connects.
  asio::io_context subscriber_io(1);
  std::shared_ptr<Subscriber> subscriber;
  std::thread subscriber_thread;
  if (!o.subscribe.empty()) {
    subscriber = std::make_shared<Subscriber>(subscriber_io, o);
    asio::co_spawn(subscriber_io, subscriber->run(), asio::detached);
    subscriber_thread = std::thread([&subscriber_io] { subscriber_io.run(); });
    for (auto wait_end = Clock::now() + std::chrono::seconds(10); !subscriber->subscribed && Clock::now() < wait_end;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!subscriber->subscribed || subscriber->failed) {
      std::fprintf(stderr, "error: the subscriber could not subscribe to %s\n", o.subscribe.c_str());
      subscriber->publishers_done = true;
      subscriber_io.stop();
      subscriber_thread.join();
      return 2;
    }
  }

  Stats stats;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int t = 0; t < o.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  std::vector<std::shared_ptr<Connection>> conns;
  std::vector<std::unique_ptr<Pacer>> pacers;
  const bool paced = o.rate > 0;
  if (paced) {
    for (auto& io : ios) {
      pacers.push_back(std::make_unique<Pacer>(*io));
      asio::co_spawn(*io, pacers.back()->run(end, std::chrono::microseconds(o.pace_tick_us)), asio::detached);
    }
  }
  for (int i = 0; i < o.connections; ++i) {
    std::string id = creds.empty() ? "dev-" + std::to_string(i) : creds[i].first;
    std::string token = creds.empty() ? "" : creds[i].second;
    auto c = std::make_shared<Connection>(*ios[i % o.threads], o, id, token, stats, i, end);
    if (paced) c->use_pacer(pacers[i % o.threads].get());
    conns.push_back(c);
    asio::co_spawn(*ios[i % o.threads], c->run(), asio::detached);
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::vector<std::thread> threads;
  for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
  for (auto& t : threads) t.join();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  if (subscriber) {
    subscriber->publishers_done = true;
    subscriber_thread.join();
  }
  auto last = start;
  for (auto& c : conns) last = std::max(last, c->finished_at_);
  double elapsed = std::chrono::duration<double>(last - start).count();
  auto cpu = [](const rusage& r) { return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6; };
  double cpu_s = cpu(after) - cpu(before);
  auto& lat = stats.latencies_ms;
  std::sort(lat.begin(), lat.end());
  // What the subscriber got, at what rate from the first message to the last.
  std::string forwarded;
  if (subscriber) {
    const double span = std::chrono::duration<double>(subscriber->last - subscriber->first).count();
    char buf[256];
    std::snprintf(buf, sizeof buf, ",\"forwarded\":%llu,\"forwarded_rate\":%.0f,\"forwarded_share\":%.4f",
                  static_cast<unsigned long long>(subscriber->received), span > 0 ? static_cast<double>(subscriber->received) / span : 0.0,
                  stats.sent ? static_cast<double>(subscriber->received) / static_cast<double>(stats.sent) : 0.0);
    forwarded = buf;
  }
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(q * static_cast<double>(lat.size())))]; };
  std::printf("{\"connections\":%d,\"qos\":%d,\"target_rate\":%.0f,\"sent\":%llu,\"acked\":%llu,\"refused\":%llu,"
              "\"failed_connections\":%llu,\"elapsed_s\":%.3f,\"rate\":%.0f,\"latency_ms_p50\":%.3f,\"latency_ms_p99\":%.3f,"
              "\"latency_ms_max\":%.3f,\"latency_samples\":%zu,\"warmup_s\":%.1f,\"loadgen_cpu_us_per_msg\":%.3f%s}\n",
              o.connections, o.qos, o.rate, static_cast<unsigned long long>(stats.sent), static_cast<unsigned long long>(stats.acked),
              static_cast<unsigned long long>(stats.refused_acks), static_cast<unsigned long long>(stats.failed_connections), elapsed,
              elapsed > 0 ? static_cast<double>(stats.sent) / elapsed : 0.0, pct(0.5), pct(0.99), lat.empty() ? 0.0 : lat.back(), lat.size(), o.warmup,
              stats.sent ? cpu_s * 1e6 / static_cast<double>(stats.sent) : 0.0, forwarded.c_str());
  return stats.failed_connections ? 1 : 0;
}
