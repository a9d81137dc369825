#include "fieldline/transport/mqtt/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/deque.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <variant>

#include "fieldline/core/errc.h"
#include "fieldline/core/log.h"
#include "fieldline/transport/mqtt/codec.h"

namespace fieldline::transport::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct OutboundMessage {
  std::string topic;
  std::string payload;
  uint8_t qos = 1;
  uint16_t packet_id = 0;  // assigned when sent
  bool sent = false;
  bool too_large = false;  // beyond the client's maximum packet size
  int64_t seq = 0;         // its row in the registry (a stored session's QoS 1 message); 0: memory only
};

class SessionBase;

// State that survives a connection (MQTT persistent session), keyed by client id.
struct SessionState {
  std::string client_id;
  std::string device;
  std::map<std::string, uint8_t> subscriptions;  // filter -> granted QoS
  // boost's deque allocates nothing until used (std::deque takes ~600 bytes even when empty,
  // which 10,000 idle connections notice).
  boost::container::deque<OutboundMessage> outbound;  // unacknowledged QoS 1 and queued messages
  uint16_t next_packet_id = 1;
  int64_t next_seq = 1;   // for messages kept in the registry
  int64_t expiry_ns = 0;  // 0: ends with the connection
  std::weak_ptr<SessionBase> live;
  std::chrono::steady_clock::time_point disconnected_at{};
  // An MQTT 5 will with a delay, waiting for its time, for the session's end, or for the
  // client to come back (which cancels it).
  struct DelayedWill {
    Will will;
    std::shared_ptr<const ingest::DeviceContext> context;
    std::chrono::steady_clock::time_point due;
  };
  std::unique_ptr<DelayedWill> delayed_will;
  bool stored = false;  // in the registry, so that it survives a restart
};

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void close_async(uint8_t reason) = 0;
  virtual void deliver_async() = 0;
  virtual asio::any_io_executor executor() = 0;
  // Called by the shard's sweeper: enforces the CONNECT and keep-alive deadlines.
  // Returns false once the session is closed (the sweeper forgets it).
  virtual bool check_deadline(std::chrono::steady_clock::time_point now) = 0;
};

}  // namespace

struct Server::Impl {
  core::ShardRuntime& runtime;
  core::Config config;
  registry::Registry& registry;
  ingest::Pipeline& pipeline;
  ops::Metrics& metrics;
  std::shared_ptr<spdlog::logger> log = core::logger("mqtt");

  struct Listener {
    std::unique_ptr<tcp::acceptor> acceptor;
    asio::ssl::context* tls = nullptr;
  };
  std::vector<Listener> listeners;
  std::atomic<uint32_t> next_shard{0};
  std::atomic<bool> stopping{false};
  // Payload bytes handed to the pipeline by every session and not yet durable: per-session
  // limits alone let 10,000 flooding connections hold gigabytes (bench/run).
  std::atomic<uint64_t> pending_bytes{0};
  bool over_pending_budget() const { return pending_bytes.load(std::memory_order_relaxed) > config.mqtt.max_pending_bytes; }

  std::mutex mu;  // guards sessions and live
  std::unordered_map<std::string, std::shared_ptr<SessionState>> sessions;  // by client id
  std::set<std::weak_ptr<SessionBase>, std::owner_less<std::weak_ptr<SessionBase>>> live;
  // Every session of a shard, touched only on that shard's thread. One sweeper per shard
  // checks their deadlines, instead of a timer and a coroutine per connection.
  std::vector<std::vector<std::weak_ptr<SessionBase>>> shard_sessions;

  ops::Gauge& open_connections;
  ops::Counter& connections_total;
  ops::Counter& connect_refused;
  ops::Counter& connections_moved;
  // Times a connection stopped reading until what it sent became durable (back-pressure), by
  // what was full: the server-wide budget, the session's own batches, its receive maximum.
  ops::Counter& paused_pending_budget;
  ops::Counter& paused_session_batches;
  ops::Counter& paused_receive_maximum;

  Impl(core::ShardRuntime& r, const core::Config& c, registry::Registry& reg, ingest::Pipeline& p, ops::Metrics& m)
      : runtime(r), config(c), registry(reg), pipeline(p), metrics(m),
        open_connections(m.gauge("fieldline_mqtt_connections", "Open MQTT connections")),
        connections_total(m.counter("fieldline_mqtt_connections_total", "Accepted MQTT connections")),
        connect_refused(m.counter("fieldline_mqtt_connections_refused_total", "Connections refused at the connection limit")),
        connections_moved(m.counter("fieldline_mqtt_connections_moved_total",
                                    "Connections moved at CONNECT to the shard that owns their device")),
        paused_pending_budget(read_pauses(m, "pending_budget")),
        paused_session_batches(read_pauses(m, "session_batches")),
        paused_receive_maximum(read_pauses(m, "receive_maximum")) {
    shard_sessions.resize(r.size());
  }

  static ops::Counter& read_pauses(ops::Metrics& m, const char* reason) {
    return m.counter("fieldline_mqtt_read_pauses_total",
                     "Times a connection stopped reading until what it sent was durable, by what was full", {{"reason", reason}});
  }

  ops::Counter& protocol_errors(const std::string& reason) {
    return metrics.counter("fieldline_mqtt_protocol_errors_total", "MQTT sessions closed for a protocol violation, by reason",
                           {{"reason", reason}});
  }
  ops::Counter& rejected(const std::string& reason) {
    return metrics.counter("fieldline_messages_rejected_total", "Messages refused, by transport and reason",
                           {{"transport", "mqtt"}, {"reason", reason}});
  }

  asio::awaitable<void> accept_loop(Listener& l);
  asio::awaitable<void> sweep(uint32_t shard);
  void expire_sessions(std::chrono::steady_clock::time_point now);
  // Keeps the registry's copy of a session in step: saved while it outlives its connection
  // (expiry > 0), deleted otherwise. REQUIRES: mu held.
  void store(SessionState& st) {
    if (st.expiry_ns > 0) {
      registry::StoredSession s{st.client_id, st.device, st.expiry_ns, {st.subscriptions.begin(), st.subscriptions.end()}, {}};
      if (auto r = registry.save_session(s); !r) {
        log->warn("cannot store mqtt session {}: {}", st.client_id, r.error().message());
        return;
      }
      st.stored = true;
      for (auto& m : st.outbound) keep(st, m);  // what was queued before it became persistent
    } else if (st.stored) {
      forget(st.client_id);
      st.stored = false;
      for (auto& m : st.outbound) m.seq = 0;
    }
  }
  // Writes a stored session's QoS 1 message to the registry, once. REQUIRES: mu held.
  void keep(SessionState& st, OutboundMessage& m) {
    if (!st.stored || m.qos != 1 || m.seq != 0) return;
    m.seq = st.next_seq++;
    if (auto r = registry.save_queued(st.client_id, {m.seq, m.topic, m.payload}); !r) {
      log->warn("cannot keep a queued message for mqtt session {}: {}", st.client_id, r.error().message());
      m.seq = 0;
    }
  }
  void forget(const std::string& client_id) {
    if (auto r = registry.delete_session(client_id); !r) log->warn("cannot delete mqtt session {}: {}", client_id, r.error().message());
  }
  // Publishes a will on the device's own topics: telemetry is stored, commands delivered.
  void publish_will(const std::shared_ptr<const ingest::DeviceContext>& context, Will will, asio::any_io_executor executor);
  size_t deliver(const std::string& device_id, const std::string& name, const std::string& payload);
  // Queues `topic` for the sessions of `owner` (a device id, or kIntegratorUser) whose
  // subscriptions match it, keeping QoS 1 ones for offline persistent sessions; wakes the
  // live ones. Returns how many sessions it reached.
  size_t enqueue(const std::string& owner, const std::string& topic, const std::string& payload);
  // `input`: bytes already read by the shard the connection came from (it moved here).
  template <typename Stream>
  void start_session(Stream stream, uint32_t shard, bool tls_handshake, std::string input = {});
};

namespace {

template <typename T>
struct is_ssl : std::false_type {};
template <typename T>
struct is_ssl<asio::ssl::stream<T>> : std::true_type {};

template <typename Stream>
class Session final : public SessionBase {
 public:
  Session(Server::Impl& server, Stream stream) : server_(server), stream_(std::move(stream)) {}

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  void start(bool tls_handshake) {
    auto self = std::static_pointer_cast<Session>(shared_from_this());
    deadline_ = std::chrono::steady_clock::now() + std::chrono::nanoseconds(server_.config.mqtt.connect_timeout_ns);
    auto on_done = [self](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          self->server_.log->error("mqtt session ended by an exception: {}", ex.what());
        }
        self->shutdown();
      }
    };
    asio::co_spawn(stream_.get_executor(), self->reader(tls_handshake), on_done);
  }

  // Continues this connection on another shard as a new session, with the bytes read so far.
  // Returns false (and stays) if the socket cannot be handed over.
  bool move_to(uint32_t owner, std::string input) {
    boost::system::error_code ec;
    auto protocol = stream_.local_endpoint(ec).protocol();
    if (ec) return false;
    auto fd = stream_.release(ec);
    if (ec) return false;
    closed_ = fully_closed_ = true;
    counted_ = false;  // the new session carries the count
    server_.connections_moved.inc();
    asio::post(server_.runtime.context(owner), [&server = server_, owner, protocol, fd, input = std::move(input)]() mutable {
      boost::system::error_code aec;
      tcp::socket socket(server.runtime.context(owner));
      socket.assign(protocol, fd, aec);
      if (aec) {
        ::close(fd);
        server.open_connections.add(-1);
        return;
      }
      server.start_session(std::move(socket), owner, false, std::move(input));
    });
    return true;
  }

  void set_origin(uint32_t shard, std::string input) {
    shard_ = shard;
    buf_.assign(input.begin(), input.end());
    used_ = buf_.size();
  }

  void close_async(uint8_t reason) override {
    asio::post(stream_.get_executor(), [self = std::static_pointer_cast<Session>(shared_from_this()), reason] {
      self->disconnect(reason, "");
    });
  }

  void deliver_async() override {
    asio::post(stream_.get_executor(), [self = std::static_pointer_cast<Session>(shared_from_this())] { self->flush_outbound(); });
  }

 private:
  // ---- lifecycle -------------------------------------------------------------------------
  asio::awaitable<void> reader(bool tls_handshake) {
    if constexpr (is_ssl<Stream>::value) {
      if (tls_handshake) {
        auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_nothrow);
        if (ec) {
          server_.protocol_errors("tls_handshake").inc();
          shutdown();
          co_return;
        }
      }
    }
    // A connection that moved here from another shard arrives with what that shard read.
    if (used_ > 0 && !process_input()) co_return;
    for (;;) {
      if (closed_) co_return;
      if (auto* full = pause_reason()) full->inc();
      while (!closed_ && paused()) {
        // Back-pressure: too much awaiting durability; TCP carries it to the sender. This
        // session's own batches wake it as they complete; the server-wide budget is looked at
        // again every 2 ms (no session knows when others' batches complete).
        resume_.emplace(stream_.get_executor());
        if (server_.over_pending_budget()) {
          resume_->expires_after(std::chrono::milliseconds(2));
        } else {
          resume_->expires_at(std::chrono::steady_clock::time_point::max());
        }
        co_await resume_->async_wait(use_nothrow);
        resume_.reset();
      }
      if (closed_) co_return;
      if (used_ == 0 && buf_.size() != kIdleReadSize) {
        // Between packets a connection keeps only a small read buffer; a large packet's goes
        // once it is handled. (Waiting for readability without any buffer, async_wait, made
        // Asio re-arm the descriptor with an epoll_ctl per message; a pending read costs none.)
        buf_ = std::vector<char>(kIdleReadSize);
      }
      if (used_ == buf_.size()) {
        size_t limit = server_.config.mqtt.max_packet_size + 8;
        if (buf_.size() >= limit) {
          fail(Error(std::error_code(static_cast<int>(Errc::too_large), mqtt_category()), "packet exceeds the maximum size"));
          co_return;
        }
        buf_.resize(std::min(buf_.size() * 2, limit));
      }
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf_.data() + used_, buf_.size() - used_), use_nothrow);
      if (ec || n == 0) {
        lost();
        co_return;
      }
      used_ += n;
      read_ns_ = wall_clock_ns();
      if (!process_input()) co_return;
    }
  }

  // Handles every whole packet in the buffer. False when the reader must stop: a protocol
  // error, or the connection moved to another shard.
  bool process_input() {
    size_t off = 0;
    while (!closed_) {
      auto d = decode(std::span<const char>(buf_.data() + off, used_ - off), version_, server_.config.mqtt.max_packet_size);
      if (!d) {
        fail(d.error());
        return false;
      }
      if (!*d) break;
      if constexpr (!is_ssl<Stream>::value) {
        // A device's connection belongs on the shard that owns the device: its messages
        // then reach storage without crossing threads. Move before anything is answered.
        if (version_ == 0) {
          if (const auto* c = std::get_if<Connect>(&(*d)->packet); c && c->username) {
            uint32_t owner = server_.pipeline.shard_of(*c->username);
            if (owner != shard_ && move_to(owner, std::string(buf_.data() + off, used_ - off))) return false;
          }
        }
      }
      off += (*d)->size;
      handle(std::move((*d)->packet));
    }
    if (off > 0) {
      // The keep-alive counts from the last packet received; a read's packets came together
      // (one clock reading for them all, not one each).
      touch();
      std::memmove(buf_.data(), buf_.data() + off, used_ - off);
      used_ -= off;
    }
    flush_batch();
    return true;
  }

  // Writes are completion handlers rather than a coroutine: an idle connection then holds
  // no writer frame. Everything queued while a write is in flight goes out in the next one.
  void start_write() {
    write_posted_ = false;
    if (writing_ || fully_closed_) return;
    if (out_.empty()) {
      if (closing_after_write_) shutdown();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    out_.clear();
    asio::async_write(stream_, asio::buffer(sending_),
                      [self = std::static_pointer_cast<Session>(shared_from_this())](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) {
                          self->lost();
                          return;
                        }
                        self->sending_.clear();
                        if (self->sending_.capacity() > kIdleBufferSize) self->sending_ = std::string();
                        self->start_write();
                      });
  }

 public:
  bool check_deadline(std::chrono::steady_clock::time_point now) override {
    if (fully_closed_) return false;
    if (closed_ || now < deadline_) return true;
    if (version_ == 0) {
      server_.protocol_errors("connect_timeout").inc();
      shutdown();
    } else {
      server_.protocol_errors("keep_alive_timeout").inc();
      disconnect(reason::keep_alive_timeout, "keep-alive timeout");
    }
    return !fully_closed_;
  }

 private:
  static constexpr size_t kIdleBufferSize = 1024;
  static constexpr size_t kIdleReadSize = 512;  // a few 100-byte telemetry messages

  void touch() {
    if (version_ != 0 && keep_alive_s_ > 0) {
      deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(keep_alive_s_ * 1500);
    } else if (version_ != 0) {
      deadline_ = std::chrono::steady_clock::time_point::max();
    }
  }

  // What keeps this connection from reading (its counter), or null: the reader goes on.
  ops::Counter* pause_reason() const {
    if (pending_batches_.size() >= 64) return &server_.paused_session_batches;
    if (version_ == 4 && inflight_ >= server_.config.mqtt.receive_maximum) return &server_.paused_receive_maximum;
    if (server_.over_pending_budget()) return &server_.paused_pending_budget;
    return nullptr;
  }
  bool paused() const { return pause_reason() != nullptr; }

  void send(const Packet& p) {
    encode(p, version_ == 0 ? 4 : version_, out_);
    wake_writer();
  }
  void wake_writer() {
    if (out_.size() > server_.config.mqtt.max_outbound_bytes) {
      // A client that never reads: drop it rather than buffer without bound.
      // Posted, not inline: callers may hold the server's session lock, which on_closed takes.
      if (!closed_) {
        server_.protocol_errors("slow_consumer").inc();
        server_.log->warn("mqtt device {}: dropped, it stopped reading ({} bytes unsent)", device_, out_.size());
      }
      out_.clear();
      closed_ = true;
      asio::post(stream_.get_executor(), [self = std::static_pointer_cast<Session>(shared_from_this())] { self->shutdown(); });
      return;
    }
    schedule_write();
  }

  // Posted, so that everything queued by one read goes out in one write.
  void schedule_write() {
    if (writing_ || write_posted_) return;
    write_posted_ = true;
    asio::post(stream_.get_executor(), [self = std::static_pointer_cast<Session>(shared_from_this())] { self->start_write(); });
  }

  // Protocol violation: MQTT 5 gets DISCONNECT with the reason, 3.1.1 a plain close.
  void fail(const Error& e) {
    server_.protocol_errors(e.name()).inc();
    server_.log->info("mqtt {} ({}): {}", device_.empty() ? "unauthenticated client" : "device " + device_, remote(),
                      e.message());
    if (version_ == 0 && reason_code(e) == reason::unsupported_protocol_version) {
      // CONNACK 0x01 (3.1.1 wording) tells old clients which version we speak.
      Connack c;
      c.code = 0x01;
      encode(c, 4, out_);
      close_after_write();
      return;
    }
    disconnect(reason_code(e), e.message());
  }

  void disconnect(uint8_t code, const std::string& why) {
    if (closed_) return;
    if (version_ == 5) {
      Disconnect d;
      d.reason = code;
      if (!why.empty()) d.properties.reason_string = why.substr(0, 200);
      encode(d, 5, out_);
      close_after_write();
    } else {
      shutdown();
    }
  }

  void close_after_write() {
    closing_after_write_ = true;
    closed_ = true;
    if (resume_) resume_->cancel();
    schedule_write();
  }

  // The connection dropped without DISCONNECT.
  void lost() { shutdown(); }

  void shutdown() {
    bool was_open = !fully_closed_;
    closed_ = true;
    fully_closed_ = true;
    boost::system::error_code ec;
    if constexpr (!is_ssl<Stream>::value) {
      stream_.shutdown(tcp::socket::shutdown_both, ec);
      stream_.close(ec);
    } else {
      stream_.lowest_layer().close(ec);
    }
    if (resume_) resume_->cancel();
    if (was_open) on_closed();
  }

  void on_closed() {
    if (counted_) {
      server_.open_connections.add(-1);
      counted_ = false;
    }
    if (version_ == 0) return;
    std::unique_ptr<Will> will = std::move(will_);
    if (graceful_) will.reset();
    std::lock_guard lock(server_.mu);
    server_.live.erase(weak_from_this());
    auto delay = std::chrono::seconds(will ? will->properties.will_delay_interval.value_or(0) : 0);
    if (will && (delay.count() == 0 || !state_ || state_->expiry_ns == 0)) {
      // Posted: publishing may deliver to sessions, which takes the lock held here.
      asio::post(stream_.get_executor(), [&server = server_, context = context_, w = std::move(*will), ex = stream_.get_executor()]() mutable {
        server.publish_will(context, std::move(w), ex);
      });
      will.reset();
    }
    if (state_) {
      auto self = shared_from_this();
      auto current = state_->live.lock();
      if (current == self) {
        state_->live.reset();
        current.reset();
      }
      if (!current) {
        // Nobody took the session over: it ends now or waits for its expiry.
        state_->disconnected_at = std::chrono::steady_clock::now();
        if (will) {
          // Published at the will delay or the session's end, whichever comes first.
          auto expiry = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(state_->expiry_ns));
          state_->delayed_will = std::make_unique<SessionState::DelayedWill>(SessionState::DelayedWill{
              std::move(*will), context_, state_->disconnected_at + std::min<std::chrono::steady_clock::duration>(delay, expiry)});
        }
        auto it = server_.sessions.find(state_->client_id);
        if (state_->expiry_ns == 0 && it != server_.sessions.end() && it->second == state_) {
          if (state_->stored) server_.forget(state_->client_id);
          server_.sessions.erase(it);
        }
      }
    }
  }

  std::string remote() {
    boost::system::error_code ec;
    if constexpr (!is_ssl<Stream>::value) {
      auto ep = stream_.remote_endpoint(ec);
      return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    } else {
      auto ep = stream_.lowest_layer().remote_endpoint(ec);
      return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    }
  }

  // ---- packets ---------------------------------------------------------------------------
  void handle(Packet p) {
    std::visit(
        [this](auto& pkt) {
          using T = std::decay_t<decltype(pkt)>;
          if constexpr (std::is_same_v<T, Connect>) on_connect(pkt);
          else if constexpr (std::is_same_v<T, Publish>) on_publish(pkt);
          else if constexpr (std::is_same_v<T, Ack>) on_ack(pkt);
          else if constexpr (std::is_same_v<T, Subscribe>) on_subscribe(pkt);
          else if constexpr (std::is_same_v<T, Unsubscribe>) on_unsubscribe(pkt);
          else if constexpr (std::is_same_v<T, Pingreq>) send(Pingresp{});
          else if constexpr (std::is_same_v<T, Disconnect>) on_disconnect(pkt);
          else fail(Error(std::error_code(static_cast<int>(Errc::protocol), mqtt_category()),
                          "a client may not send this packet type"));
        },
        p);
  }

  void refuse_connect(uint8_t v5_code, uint8_t v3_code, const std::string& why) {
    Connack c;
    c.code = version_ == 5 ? v5_code : v3_code;
    if (version_ == 5) c.properties.reason_string = why;
    encode(c, version_, out_);
    server_.protocol_errors("connect_refused").inc();
    server_.log->info("mqtt connect refused ({}): {}", remote(), why);
    close_after_write();
  }

  void on_connect(Connect& c) {
    version_ = c.version;
    keep_alive_s_ = std::min<uint32_t>(c.keep_alive, server_.config.mqtt.max_keep_alive_s);
    if (!c.username || !c.password) {
      return refuse_connect(reason::bad_username_or_password, 0x04, "user name (device id) and password (token) are required");
    }
    if (*c.username == kIntegratorUser) {
      // An integrator (admin token) subscribing to alarms: it publishes nothing and has no will.
      if (server_.registry.authenticate_bearer(*c.password).principal != registry::Principal::admin) {
        return refuse_connect(reason::not_authorized, 0x05, "the integrator user needs the admin token as its password");
      }
      integrator_ = true;
      c.will.reset();
    }
    auto identity = integrator_ ? Result<registry::DeviceIdentity>(registry::DeviceIdentity{})
                                : server_.registry.authenticate_device(*c.username, *c.password);
    if (!identity) {
      return refuse_connect(reason::bad_username_or_password, 0x04, identity.error().context());
    }
    if (integrator_) identity->id = kIntegratorUser;
    device_ = identity->id;
    // MQTT 5 devices may say which firmware they run and which gateway they come through.
    std::string firmware, gateway;
    for (const auto& [k, v] : c.properties.user_properties) {
      if (k == "firmware") firmware = v;
      else if (k == "gateway") gateway = v;
    }
    auto reported = ingest::reported_tags(firmware, gateway);
    if (!reported) return refuse_connect(reason::implementation_specific_error, 0x02, reported.error().context());
    context_ = ingest::make_device_context(identity->id, identity->profile, identity->tags, *reported);
    telemetry_topic_ = "devices/" + device_ + "/telemetry";
    if (c.client_id.empty()) {
      if (!c.clean_start && version_ == 4) {
        return refuse_connect(reason::client_identifier_not_valid, 0x02, "empty client id needs a clean session");
      }
      c.client_id = "fl-" + device_ + "-" + std::to_string(reinterpret_cast<uintptr_t>(this));
      assigned_id_ = true;
    }
    if (c.will) {
      will_ = std::make_unique<Will>(std::move(*c.will));
    }
    if (version_ == 5) {
      if (c.properties.maximum_packet_size) client_max_packet_ = *c.properties.maximum_packet_size;
      if (c.properties.receive_maximum) client_receive_max_ = *c.properties.receive_maximum;
    }
    int64_t expiry = 0;
    if (version_ == 5) {
      expiry = static_cast<int64_t>(c.properties.session_expiry_interval.value_or(0)) * 1'000'000'000;
    } else if (!c.clean_start) {
      expiry = server_.config.mqtt.session_expiry_max_ns;
    }
    expiry = std::min(expiry, server_.config.mqtt.session_expiry_max_ns);
    bool session_present = false;
    std::shared_ptr<SessionBase> previous;
    std::unique_ptr<SessionState::DelayedWill> ended_will;
    {
      std::lock_guard lock(server_.mu);
      auto& slot = server_.sessions[c.client_id];
      bool was_stored = slot && slot->stored;
      if (slot) previous = slot->live.lock();
      if (slot && (c.clean_start || slot->device != device_)) {
        // The old session ends here: a will it still holds is due now.
        if (slot->delayed_will) ended_will = std::move(slot->delayed_will);
        slot.reset();
      }
      if (slot) {
        session_present = true;
        slot->delayed_will.reset();  // the client came back in time
      }
      if (!slot) {
        slot = std::make_shared<SessionState>();
        slot->client_id = c.client_id;
        slot->device = device_;
      }
      // The registry is written only when what it holds changes (not on every reconnect).
      bool expiry_changed = slot->expiry_ns != expiry;
      slot->expiry_ns = expiry;
      slot->stored = slot->stored || was_stored;
      if (expiry_changed || (slot->stored && expiry == 0)) server_.store(*slot);
      slot->live = weak_from_this();
      state_ = slot;
      server_.live.insert(weak_from_this());
    }
    if (previous) previous->close_async(reason::session_taken_over);
    if (ended_will) server_.publish_will(ended_will->context, std::move(ended_will->will), stream_.get_executor());
    Connack ack;
    ack.session_present = session_present;
    ack.code = 0;
    if (version_ == 5) {
      ack.properties.receive_maximum = static_cast<uint16_t>(std::min<uint32_t>(server_.config.mqtt.receive_maximum, 65535));
      ack.properties.maximum_packet_size = server_.config.mqtt.max_packet_size;
      ack.properties.topic_alias_maximum = kTopicAliasMax;
      ack.properties.maximum_qos = 1;
      ack.properties.retain_available = 0;
      ack.properties.wildcard_subscription_available = 1;
      ack.properties.shared_subscription_available = 0;
      ack.properties.subscription_identifier_available = 0;
      if (assigned_id_) ack.properties.assigned_client_identifier = c.client_id;
      if (c.keep_alive != keep_alive_s_) ack.properties.server_keep_alive = static_cast<uint16_t>(keep_alive_s_);
    }
    send(ack);
    server_.registry.touch(device_, wall_clock_ns());
    touch();
    if (session_present) flush_outbound(true);
  }

  static constexpr uint16_t kTopicAliasMax = 64;

  bool resolve_topic(Publish& p) {
    if (version_ != 5 || !p.properties.topic_alias) {
      if (p.topic.empty()) {
        fail(Error(std::error_code(static_cast<int>(Errc::protocol), mqtt_category()), "empty topic without a topic alias"));
        return false;
      }
      return true;
    }
    uint16_t alias = *p.properties.topic_alias;
    if (alias == 0 || alias > kTopicAliasMax) {
      server_.protocol_errors("topic_alias_invalid").inc();
      disconnect(reason::topic_alias_invalid, "topic alias " + std::to_string(alias) + " outside 1.." + std::to_string(kTopicAliasMax));
      return false;
    }
    if (aliases_.size() <= alias) aliases_.resize(kTopicAliasMax + 1);
    if (!p.topic.empty()) {
      aliases_[alias] = p.topic;
    } else if (aliases_[alias].empty()) {
      fail(Error(std::error_code(static_cast<int>(Errc::protocol), mqtt_category()), "unknown topic alias " + std::to_string(alias)));
      return false;
    } else {
      p.topic = aliases_[alias];
    }
    return true;
  }

  void reject_publish(const Publish& p, uint8_t code, const std::string& reason_name, const std::string& why) {
    server_.rejected(reason_name).inc();
    if (version_ == 5 && p.qos == 1) {
      // Acknowledge in order with the batch, carrying the reason.
      queue_ack(p.packet_id, code, why);
      return;
    }
    if (version_ == 5) {
      disconnect(code, why);
      return;
    }
    // MQTT 3.1.1 has no reason codes: close the connection.
    server_.log->info("mqtt device {}: {}", device_, why);
    shutdown();
  }

  void on_publish(Publish& p) {
    if (!resolve_topic(p)) return;
    if (integrator_) {
      return reject_publish(p, reason::not_authorized, "mqtt.not_authorized", "an integrator session only subscribes (alarms/#)");
    }
    if (p.qos == 2) {
      server_.rejected("mqtt.qos_not_supported").inc();
      return disconnect(reason::qos_not_supported, "QoS 2 is not supported; use QoS 0 or 1");
    }
    if (p.qos == 1) {
      ++inflight_;
      if (version_ == 5 && inflight_ > server_.config.mqtt.receive_maximum) {
        server_.protocol_errors("receive_maximum_exceeded").inc();
        return disconnect(reason::receive_maximum_exceeded, "more QoS 1 messages in flight than the receive maximum");
      }
    }
    if (p.topic != telemetry_topic_) {
      std::string prefix = "devices/" + device_ + "/";
      if (!p.topic.starts_with(prefix)) {
        if (p.qos == 1) --inflight_;
        return reject_publish(p, reason::not_authorized, "mqtt.not_authorized",
                              "device '" + device_ + "' may not publish to '" + p.topic + "'");
      }
      if (p.qos == 1) --inflight_;
      return reject_publish(p, reason::topic_name_invalid, "mqtt.unknown_topic",
                            "unknown topic '" + p.topic + "'; telemetry goes to " + telemetry_topic_);
    }
    // Received when its bytes were read (a read brings several messages: one clock reading).
    const int64_t now = read_ns_ != 0 ? read_ns_ : wall_clock_ns();
    // Decoded in the pipeline with the profile's decoder (an MQTT 5 content type may name
    // SenML); a payload it refuses goes to quarantine, and its PUBACK (MQTT 5: with the
    // reason) follows in order once it is kept there.
    ingest::Message msg;
    if (p.properties.content_type) msg.format = ingest::format_of_content_type(*p.properties.content_type);
    msg.raw = std::move(p.payload);
    msg.receipt_ns = now;
    msg.decode = true;
    batch_bytes_ += msg.raw.size();
    // The batch leaves with its storage at every flush: room for a read's worth at once, not
    // regrown one doubling at a time.
    if (batch_.capacity() == 0) batch_.reserve(16);
    batch_.push_back(std::move(msg));
    ack_ids_.push_back(p.qos == 1 ? p.packet_id : 0);
  }

  // Acks must leave in PUBLISH order: a rejection waits behind earlier pending batches.
  void queue_ack(uint16_t packet_id, uint8_t code, const std::string& why) {
    flush_batch();
    if (pending_batches_.empty()) {
      write_ack(packet_id, code, why);
      wake_writer();
      return;
    }
    auto& last = pending_batches_.back();
    last.trailing.push_back({packet_id, code, why});
  }

  void write_ack(uint16_t packet_id, uint8_t code, const std::string& why) {
    if (code == reason::success || version_ != 5) {
      encode_puback_success(packet_id, out_);
    } else {
      Ack a;
      a.packet_id = packet_id;
      a.reason = code;
      if (!why.empty()) a.properties.reason_string = why.substr(0, 200);
      encode(a, 5, out_);
    }
  }

  struct TrailingAck {
    uint16_t packet_id;
    uint8_t code;
    std::string why;
  };
  struct PendingBatch {
    uint64_t id;
    bool done = false;
    size_t messages = 0;  // their packet ids wait in ack_ids_, in order
    uint64_t bytes = 0;   // their payloads, counted in the server's pending bytes until done
    std::vector<ingest::MessageOutcome> outcomes;
    std::vector<TrailingAck> trailing;
  };

  void flush_batch() {
    if (batch_.empty()) return;
    uint64_t id = next_batch_++;
    pending_batches_.push_back({id, false, batch_.size(), batch_bytes_, {}, {}});
    server_.pending_bytes.fetch_add(batch_bytes_, std::memory_order_relaxed);
    batch_bytes_ = 0;
    auto self = std::static_pointer_cast<Session>(shared_from_this());
    server_.pipeline.submit(context_, std::move(batch_), ingest::Transport::mqtt, stream_.get_executor(),
                            [self, id](std::vector<ingest::MessageOutcome> outcomes) { self->batch_done(id, std::move(outcomes)); });
    batch_.clear();
  }

  void batch_done(uint64_t id, std::vector<ingest::MessageOutcome> outcomes) {
    for (auto& b : pending_batches_) {
      if (b.id == id && !b.done) {
        b.done = true;
        b.outcomes = std::move(outcomes);
        server_.pending_bytes.fetch_sub(b.bytes, std::memory_order_relaxed);
      }
    }
    bool storage_failed = false, quota_spent = false;
    while (!pending_batches_.empty() && pending_batches_.front().done) {
      auto b = std::move(pending_batches_.front());
      pending_batches_.pop_front();
      for (size_t i = 0; i < b.messages; ++i) {
        const auto& o = b.outcomes[i];
        uint16_t pid = ack_ids_.front();
        ack_ids_.pop_front();
        if (pid != 0) --inflight_;
        if (!o.status) {
          const Error& e = o.status.error();
          if (ingest::is(e, ingest::Errc::storage_full) || ingest::is(e, ingest::Errc::storage_failed) ||
              ingest::is(e, ingest::Errc::shutting_down)) {
            storage_failed = true;  // withhold the PUBACK: the client resends after reconnecting
            continue;
          }
          if (ingest::is(e, ingest::Errc::quarantine_quota)) {
            // Refused and not kept. MQTT 5 hears why; a 3.1.1 QoS 1 message cannot be
            // acknowledged (it is not stored), and without a PUBACK the client would resend it
            // for ever: the session is closed instead (logged and counted).
            if (pid != 0 && version_ == 5) {
              write_ack(pid, reason::quota_exceeded, e.message());
            } else if (pid != 0) {
              quota_spent = true;
            }
            continue;
          }
          if (pid != 0) write_ack(pid, reason::payload_format_invalid, e.message());
          continue;
        }
        if (pid == 0) continue;
        if (o.rejected > 0 && o.stored == 0 && o.duplicates == 0) {
          write_ack(pid, reason::implementation_specific_error, o.first_rejection);
        } else {
          write_ack(pid, reason::success, "");
        }
      }
      for (const auto& t : b.trailing) write_ack(t.packet_id, t.code, t.why);
    }
    wake_writer();
    if (storage_failed && !closed_) {
      server_.log->warn("mqtt device {}: storage refused a write; closing so the client resends", device_);
      disconnect(version_ == 5 ? reason::quota_exceeded : reason::unspecified_error, "storage unavailable, retry later");
    } else if (quota_spent && !closed_) {
      server_.log->warn("mqtt device {}: quarantine quota spent on a QoS 1 message that cannot be kept; closing", device_);
      server_.rejected("ingest.quarantine_quota").inc();
      disconnect(reason::quota_exceeded, "quarantine quota spent");
    }
    if (resume_ && !paused()) resume_->cancel();
  }

  void on_ack(Ack& a) {
    if (a.type != PacketType::puback) {
      return fail(Error(std::error_code(static_cast<int>(Errc::protocol), mqtt_category()), "QoS 2 flow is not supported"));
    }
    std::lock_guard lock(server_.mu);
    if (!state_) return;
    auto& q = state_->outbound;
    for (auto it = q.begin(); it != q.end(); ++it) {
      if (it->sent && it->packet_id == a.packet_id) {
        if (it->seq != 0) {
          if (auto r = server_.registry.delete_queued(state_->client_id, it->seq); !r) {
            server_.log->warn("cannot drop an acknowledged message of mqtt session {}: {}", state_->client_id, r.error().message());
          }
        }
        q.erase(it);
        --outbound_inflight_;
        break;
      }
    }
    // More may go out now that the window opened.
    flush_outbound_locked(false);
  }

  bool allowed_filter(const std::string& f) const {
    if (integrator_) return f == "alarms/#" || (f.starts_with("alarms/") && valid_topic_filter(f));
    std::string base = "devices/" + device_ + "/commands";
    return f == base || f == base + "/#" || (f.starts_with(base + "/") && valid_topic_filter(f));
  }

  void on_subscribe(Subscribe& s) {
    Suback ack;
    ack.packet_id = s.packet_id;
    {
      std::lock_guard lock(server_.mu);
      for (const auto& [filter, opts] : s.filters) {
        if (!valid_topic_filter(filter)) {
          ack.codes.push_back(version_ == 5 ? reason::topic_filter_invalid : 0x80);
          continue;
        }
        if (!allowed_filter(filter)) {
          server_.rejected("mqtt.subscribe_not_authorized").inc();
          ack.codes.push_back(version_ == 5 ? reason::not_authorized : 0x80);
          continue;
        }
        uint8_t qos = std::min<uint8_t>(opts & 3, 1);
        if (state_) state_->subscriptions[filter] = qos;
        ack.codes.push_back(qos);
      }
      if (state_) server_.store(*state_);
    }
    send(ack);
  }

  void on_unsubscribe(Unsubscribe& u) {
    Unsuback ack;
    ack.packet_id = u.packet_id;
    std::lock_guard lock(server_.mu);
    for (const auto& f : u.filters) {
      bool had = state_ && state_->subscriptions.erase(f) > 0;
      ack.codes.push_back(had ? 0x00 : 0x11);
    }
    if (state_) server_.store(*state_);
    encode(ack, version_, out_);
    wake_writer();
  }

  void on_disconnect(Disconnect& d) {
    graceful_ = d.reason != reason::disconnect_with_will;
    if (version_ == 5 && d.properties.session_expiry_interval) {
      std::lock_guard lock(server_.mu);
      if (state_) {
        state_->expiry_ns = std::min<int64_t>(static_cast<int64_t>(*d.properties.session_expiry_interval) * 1'000'000'000,
                                              server_.config.mqtt.session_expiry_max_ns);
        server_.store(*state_);
      }
    }
    flush_batch();
    // Let pending acknowledgements go out, then close.
    disconnect_requested_ = true;
    shutdown();
  }

  // Sends queued outbound messages up to the client's receive maximum.
  void flush_outbound(bool resend = false) {
    std::lock_guard lock(server_.mu);
    flush_outbound_locked(resend);
  }
  void flush_outbound_locked(bool resend) {
    if (!state_ || closed_) return;
    for (auto& m : state_->outbound) {
      if (m.sent && !resend) continue;
      if (m.too_large) continue;
      if (!m.sent && outbound_inflight_ >= client_receive_max_) break;
      Publish p;
      p.qos = m.qos;
      p.dup = m.sent;  // a resend after reconnecting
      p.topic = m.topic;
      p.packet_id = m.sent ? m.packet_id : state_->next_packet_id;
      p.payload = m.payload;
      size_t before = out_.size();
      encode(p, version_, out_);
      if (out_.size() - before > client_max_packet_) {
        // Too large for this client: discarded as if sent (MQTT 5, 3.1.2-25).
        out_.resize(before);
        m.too_large = true;
        continue;
      }
      if (!m.sent) {
        m.packet_id = state_->next_packet_id++;
        if (state_->next_packet_id == 0) state_->next_packet_id = 1;
        ++outbound_inflight_;
        m.sent = true;
      }
    }
    if (resend) {
      outbound_inflight_ = 0;
      for (const auto& m : state_->outbound) outbound_inflight_ += m.sent ? 1 : 0;
    }
    // QoS 0 deliveries are not kept, nor what no client could receive.
    auto& q = state_->outbound;
    q.erase(std::remove_if(q.begin(), q.end(), [](const OutboundMessage& m) { return (m.qos == 0 && m.sent) || m.too_large; }), q.end());
    wake_writer();
  }

  Server::Impl& server_;
  Stream stream_;
  std::optional<asio::steady_timer> resume_;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<char> buf_;
  size_t used_ = 0;
  int64_t read_ns_ = 0;  // when the last read completed (0: what is in buf_ came with the connection)
  std::string out_;      // queued for the next write
  std::string sending_;  // the write in flight
  uint8_t version_ = 0;
  uint32_t keep_alive_s_ = 0;
  std::string device_;
  std::string telemetry_topic_;
  std::shared_ptr<const ingest::DeviceContext> context_;
  std::shared_ptr<SessionState> state_;
  std::unique_ptr<Will> will_;  // a pointer: Will is large and most connections have none
  bool integrator_ = false;      // user name kIntegratorUser with the admin token: alarms/# only
  std::vector<std::string> aliases_;
  std::vector<ingest::Message> batch_;
  uint64_t batch_bytes_ = 0;  // payload bytes in batch_
  // The packet ids of the messages submitted and batched, in PUBLISH order (0 for QoS 0):
  // one queue for the session rather than a vector per batch.
  boost::container::deque<uint16_t> ack_ids_;
  boost::container::deque<PendingBatch> pending_batches_;
  uint64_t next_batch_ = 1;
  uint32_t inflight_ = 0;
  uint32_t outbound_inflight_ = 0;
  uint32_t client_receive_max_ = 65535;
  uint32_t client_max_packet_ = UINT32_MAX;
  bool closed_ = false, fully_closed_ = false, closing_after_write_ = false;
  bool graceful_ = false, disconnect_requested_ = false, assigned_id_ = false;
  bool writing_ = false, write_posted_ = false;
  uint32_t shard_ = 0;

 public:
  bool counted_ = false;
};

}  // namespace

template <typename Stream>
void Server::Impl::start_session(Stream stream, uint32_t shard, bool tls_handshake, std::string input) {
  auto session = std::make_shared<Session<Stream>>(*this, std::move(stream));
  session->counted_ = true;
  if (input.empty()) {
    open_connections.add(1);
    connections_total.inc();
  }
  session->set_origin(shard, std::move(input));
  shard_sessions[shard].push_back(session);
  session->start(tls_handshake);
}

void Server::Impl::publish_will(const std::shared_ptr<const ingest::DeviceContext>& context, Will will,
                                asio::any_io_executor executor) {
  if (will.topic == "devices/" + context->id + "/telemetry") {
    auto now = wall_clock_ns();
    // Like any publish: a will the decoder or the contract refuses goes to quarantine.
    std::vector<ingest::Message> msgs(1);
    msgs[0].raw = std::move(will.payload);
    msgs[0].receipt_ns = now;
    msgs[0].decode = true;
    pipeline.submit(context, std::move(msgs), ingest::Transport::mqtt, executor, [](std::vector<ingest::MessageOutcome>) {});
    return;
  }
  std::string prefix = "devices/" + context->id + "/commands/";
  if (will.topic.starts_with(prefix)) {
    deliver(context->id, will.topic.substr(prefix.size()), will.payload);
    return;
  }
  rejected("mqtt.will_not_authorized").inc();
}

asio::awaitable<void> Server::Impl::sweep(uint32_t shard) {
  // Deadlines are seconds long (CONNECT timeout, 1.5 x keep-alive); checking a few times per
  // connect timeout keeps them accurate to a fraction of that.
  auto interval = std::clamp<std::chrono::nanoseconds>(std::chrono::nanoseconds(config.mqtt.connect_timeout_ns) / 4, 10ms, 250ms);
  asio::steady_timer timer(runtime.context(shard));
  auto next_expiry_scan = std::chrono::steady_clock::now();
  while (!stopping.load()) {
    timer.expires_after(interval);
    co_await timer.async_wait(use_nothrow);
    auto now = std::chrono::steady_clock::now();
    auto& sessions = shard_sessions[shard];
    std::erase_if(sessions, [now](const std::weak_ptr<SessionBase>& w) {
      auto s = w.lock();
      return !s || !s->check_deadline(now);
    });
    if (shard == 0 && now >= next_expiry_scan) {
      expire_sessions(now);
      next_expiry_scan = now + 1s;
    }
  }
}

void Server::Impl::expire_sessions(std::chrono::steady_clock::time_point now) {
  std::vector<std::unique_ptr<SessionState::DelayedWill>> due;
  {
    std::lock_guard lock(mu);
    std::erase_if(sessions, [&](const auto& entry) {
      const auto& st = entry.second;
      if (st->live.lock()) return false;
      bool expired = now - st->disconnected_at >= std::chrono::nanoseconds(st->expiry_ns);
      if (st->delayed_will && (expired || now >= st->delayed_will->due)) due.push_back(std::move(st->delayed_will));
      if (expired && st->stored) forget(st->client_id);
      return expired;
    });
  }
  for (auto& w : due) publish_will(w->context, std::move(w->will), runtime.context(0).get_executor());
}

asio::awaitable<void> Server::Impl::accept_loop(Listener& l) {
  for (;;) {
    uint32_t shard = next_shard.fetch_add(1) % runtime.size();
    auto& io = runtime.context(shard);
    auto [ec, socket] = co_await l.acceptor->async_accept(io, use_nothrow);
    if (ec) {
      if (stopping.load() || ec == asio::error::operation_aborted) co_return;
      log->warn("accept failed: {}", ec.message());
      // EMFILE and friends: back off instead of spinning.
      asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
      co_await t.async_wait(use_nothrow);
      continue;
    }
    if (static_cast<uint32_t>(open_connections.value()) >= config.mqtt.max_connections) {
      connect_refused.inc();
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::post(io, [this, s = std::move(socket), tls = l.tls, shard]() mutable {
      if (tls) start_session(asio::ssl::stream<decltype(s)>(std::move(s), *tls), shard, true);
      else start_session(std::move(s), shard, false);
    });
  }
}

Server::Server(core::ShardRuntime& runtime, const core::Config& config, registry::Registry& registry,
               ingest::Pipeline& pipeline, ops::Metrics& metrics)
    : impl_(std::make_unique<Impl>(runtime, config, registry, pipeline, metrics)) {}

Server::~Server() { stop(); }

Result<uint16_t> Server::listen(const std::string& endpoint, asio::ssl::context* tls) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) return core::make_error(core::Errc::invalid_argument, "listen address '" + endpoint + "' is not host:port");
  std::string host = endpoint.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return core::make_error(core::Errc::invalid_argument, "listen address '" + endpoint + "': " + ec.message());
  uint16_t port = static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1)));
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->runtime.context(0));
  tcp::endpoint ep(addr, port);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return core::make_error(core::Errc::io_error, "cannot listen on " + endpoint + ": " + ec.message());
  uint16_t bound = acceptor->local_endpoint().port();
  impl_->listeners.push_back({std::move(acceptor), tls});
  return bound;
}

void Server::start() {
  // Persistent sessions from before a restart: their expiry counts from now.
  if (auto stored = impl_->registry.load_sessions()) {
    std::lock_guard lock(impl_->mu);
    auto now = std::chrono::steady_clock::now();
    for (auto& s : *stored) {
      auto st = std::make_shared<SessionState>();
      st->client_id = s.client_id;
      st->device = s.device;
      st->expiry_ns = s.expiry_ns;
      st->subscriptions.insert(s.subscriptions.begin(), s.subscriptions.end());
      for (auto& m : s.queued) {
        st->outbound.push_back({std::move(m.topic), std::move(m.payload), 1, 0, false, false, m.seq});
        st->next_seq = std::max(st->next_seq, m.seq + 1);
      }
      st->disconnected_at = now;
      st->stored = true;
      impl_->sessions[s.client_id] = std::move(st);
    }
    if (!stored->empty()) impl_->log->info("restored {} persistent mqtt sessions", stored->size());
  } else {
    impl_->log->warn("cannot load stored mqtt sessions: {}", stored.error().message());
  }
  for (uint32_t shard = 0; shard < impl_->runtime.size(); ++shard) {
    asio::co_spawn(impl_->runtime.context(shard), impl_->sweep(shard), [log = impl_->log](std::exception_ptr e) {
      if (e) log->error("mqtt session sweeper ended by an exception");
    });
  }
  for (auto& l : impl_->listeners) {
    asio::co_spawn(impl_->runtime.context(0), impl_->accept_loop(l), [log = impl_->log](std::exception_ptr e) {
      if (e) log->error("mqtt accept loop ended by an exception");
    });
  }
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& l : impl_->listeners) {
    asio::post(l.acceptor->get_executor(), [a = l.acceptor.get()] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& w : impl_->live) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close_async(reason::server_shutting_down);
}

void Server::close_device(const std::string& device_id) {
  std::vector<std::shared_ptr<SessionBase>> targets;
  {
    std::lock_guard lock(impl_->mu);
    for (auto it = impl_->sessions.begin(); it != impl_->sessions.end();) {
      if (it->second->device == device_id) {
        if (auto s = it->second->live.lock()) targets.push_back(std::move(s));
        if (it->second->stored) impl_->forget(it->first);
        it = impl_->sessions.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : targets) s->close_async(reason::administrative_action);
}

size_t Server::deliver_command(const std::string& device_id, const std::string& name, const std::string& payload) {
  return impl_->deliver(device_id, name, payload);
}

size_t Server::Impl::deliver(const std::string& device_id, const std::string& name, const std::string& payload) {
  return enqueue(device_id, "devices/" + device_id + "/commands/" + name, payload);
}

size_t Server::Impl::enqueue(const std::string& owner, const std::string& topic, const std::string& payload) {
  std::vector<std::shared_ptr<SessionBase>> wake;
  size_t reached = 0;
  {
    std::lock_guard lock(mu);
    for (auto& [id, st] : sessions) {
      if (st->device != owner) continue;
      uint8_t qos = 0;
      bool match = false;
      for (const auto& [filter, q] : st->subscriptions) {
        if (topic_matches(filter, topic)) {
          match = true;
          qos = std::max(qos, q);
        }
      }
      if (!match) continue;
      auto live = st->live.lock();
      if (!live && qos == 0) continue;
      if (st->outbound.size() >= 1000) continue;  // a bounded queue per session
      st->outbound.push_back({topic, payload, qos, 0, false});
      keep(*st, st->outbound.back());
      ++reached;
      if (live) wake.push_back(std::move(live));
    }
  }
  for (auto& s : wake) s->deliver_async();
  return reached;
}

size_t Server::publish_alarm(const std::string& topic, const std::string& payload) {
  return impl_->enqueue(kIntegratorUser, topic, payload);
}

size_t Server::connection_count() const { return static_cast<size_t>(impl_->open_connections.value()); }

}  // namespace fieldline::transport::mqtt
