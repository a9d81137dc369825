#include "fieldline/analytics/alarm_service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <sqlite3.h>

#include <cmath>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "fieldline/core/async.h"
#include "fieldline/core/errc.h"
#include "fieldline/core/json.h"
#include "fieldline/core/log.h"
#include "fieldline/core/time.h"

namespace fieldline::analytics {

namespace asio = boost::asio;
namespace json = boost::json;
using alarms::Alarm;

struct AlarmService::Impl {
  core::Env& env;
  ops::Metrics& metrics;
  Options options;
  alarms::AlarmBook book;
  sqlite3* db = nullptr;
  std::shared_ptr<spdlog::logger> log = core::logger("alarms");

  asio::io_context io;  // the book, the channels
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  asio::io_context writer_io;  // alarms.db (only this thread touches it once open)
  asio::executor_work_guard<asio::io_context::executor_type> writer_work{writer_io.get_executor()};
  std::thread writer_thread;
  std::unique_ptr<asio::steady_timer> ticker;

  struct Subscriber {
    std::shared_ptr<AlarmChannel> channel;
    alarms::AlarmBook::Filter filter;
    double tokens = 0;
    int64_t refilled_ns = 0;
    uint64_t dropped = 0;  // since the last summary
  };
  std::mutex subscribers_mu;
  std::map<uint64_t, std::shared_ptr<Subscriber>> subscribers;  // guarded by subscribers_mu
  uint64_t next_subscriber = 1;

  static constexpr int64_t kUpdateEvery = 10'000'000'000;
  std::unordered_map<uint64_t, int64_t> updates_told;  // active alarm -> when channels last heard it was seen again
  std::set<uint64_t> dirty;  // alarms changed since the last save
  bool save_posted = false;
  uint64_t ticks = 0;

  ops::Counter *suppressed, *rate_limited, *notified, *dropped;

  Impl(core::Env& e, ops::Metrics& m, Options o)
      : env(e), metrics(m), options(std::move(o)), book(options.policy),
        suppressed(&m.counter("fieldline_alarms_suppressed_total", "Alarms not raised: a maintenance window covered the device")),
        rate_limited(&m.counter("fieldline_alarms_rate_limited_total", "Alarms not raised: their type's storm limit was reached")),
        notified(&m.counter("fieldline_alarm_notifications_total", "Alarm events handed to notification channels")),
        dropped(&m.counter("fieldline_alarm_notifications_dropped_total",
                           "Alarm events a channel's rate limit held back (summed up in an alarm.storm event)")) {}

  ~Impl() {
    if (db) sqlite3_close(db);
  }

  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      return core::make_error(core::Errc::io_error, std::string("alarms database: ") + msg);
    }
    return {};
  }

  Status open_db() {
    if (sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      return core::make_error(core::Errc::io_error, "cannot open " + options.path + ": " + (db ? sqlite3_errmsg(db) : "?"));
    }
    sqlite3_busy_timeout(db, 5000);
    FL_TRY_STATUS(exec("PRAGMA journal_mode=WAL"));
    FL_TRY_STATUS(exec("PRAGMA synchronous=FULL"));
    FL_TRY_STATUS(exec(
        "CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY, device TEXT NOT NULL, type TEXT NOT NULL, "
        "active INTEGER NOT NULL, cleared_ns INTEGER NOT NULL, document TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS maintenance (id INTEGER PRIMARY KEY, device TEXT NOT NULL, from_ns INTEGER NOT NULL, "
        "to_ns INTEGER NOT NULL, reason TEXT NOT NULL);"));
    return load();
  }

  Status load() {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT document FROM alarms ORDER BY id", -1, &st, nullptr);
    size_t loaded = 0, damaged = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string_view doc(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_bytes(st, 0));
      boost::system::error_code ec;
      auto v = json::parse(doc, ec);
      auto a = ec ? Result<Alarm>(core::make_error(core::Errc::corrupt, ec.message())) : alarm_from_json(v);
      if (!a) {
        ++damaged;
        continue;
      }
      book.restore(std::move(*a));
      ++loaded;
    }
    sqlite3_finalize(st);
    if (damaged) log->error("{} saved alarms could not be read and were left out", damaged);
    sqlite3_prepare_v2(db, "SELECT device, from_ns, to_ns, reason FROM maintenance", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      book.add_maintenance({reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1),
                            sqlite3_column_int64(st, 2), reinterpret_cast<const char*>(sqlite3_column_text(st, 3))});
    }
    sqlite3_finalize(st);
    if (loaded) log->info("{} alarms loaded", loaded);
    return {};
  }

  // A changed alarm as alarms.db keeps it, made on the service's thread, written on the writer's.
  struct Row {
    uint64_t id;
    std::string device, type;
    bool active;
    int64_t cleared_ns;
    std::string document;
  };

  std::vector<Row> take_dirty() {
    save_posted = false;
    std::vector<Row> rows;
    for (uint64_t id : dirty) {
      if (const Alarm* a = book.get(id)) {
        rows.push_back({id, a->device, a->type, a->active, a->cleared_ns, core::to_json(alarm_to_json(*a))});
      }
    }
    dirty.clear();
    return rows;
  }

  // On the writer's thread: one transaction.
  Status write(const std::vector<Row>& rows) {
    if (rows.empty()) return {};
    FL_TRY_STATUS(exec("BEGIN"));
    sqlite3_stmt* up = nullptr;
    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO alarms (id, device, type, active, cleared_ns, document) VALUES (?,?,?,?,?,?)",
                       -1, &up, nullptr);
    for (const auto& r : rows) {
      sqlite3_bind_int64(up, 1, static_cast<int64_t>(r.id));
      sqlite3_bind_text(up, 2, r.device.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(up, 3, r.type.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(up, 4, r.active ? 1 : 0);
      sqlite3_bind_int64(up, 5, r.cleared_ns);
      sqlite3_bind_text(up, 6, r.document.c_str(), static_cast<int>(r.document.size()), SQLITE_TRANSIENT);
      int rc = sqlite3_step(up);
      sqlite3_reset(up);
      if (rc != SQLITE_DONE) {
        sqlite3_finalize(up);
        (void)exec("ROLLBACK");
        return core::make_error(core::Errc::io_error, std::string("saving alarm: ") + sqlite3_errmsg(db));
      }
    }
    sqlite3_finalize(up);
    return exec("COMMIT");
  }

  // Hands the round's changes to the writer: an fsync must not hold up the next alarm.
  void save_later() {
    auto rows = take_dirty();
    if (rows.empty()) return;
    asio::post(writer_io, [this, rows = std::move(rows)] {
      if (auto st = write(rows); !st) log->error("{}", st.error().message());
    });
  }

  void changed(uint64_t id) {
    dirty.insert(id);
    if (save_posted) return;
    save_posted = true;
    // Saved once the round's changes are in: a burst of detections is one transaction.
    asio::post(io, [this] { save_later(); });
  }

  void notify(AlarmEvent e, uint64_t id, int64_t at_ns) {
    const Alarm* a = book.get(id);
    if (!a) return;
    std::vector<std::shared_ptr<Subscriber>> subs;
    {
      std::lock_guard lock(subscribers_mu);
      for (auto& [sid, s] : subscribers) {
        if (s->filter.matches(*a)) subs.push_back(s);
      }
    }
    if (subs.empty()) return;
    const std::string body = event_json(e, *a, at_ns);
    const int64_t now = env.now_ns();
    const double rate = std::max<uint32_t>(options.notify_per_second, 1);
    for (auto& s : subs) {
      if (s->refilled_ns == 0) s->tokens = 2 * rate;
      s->tokens = std::min(2 * rate, s->tokens + rate * static_cast<double>(now - s->refilled_ns) / 1e9);
      s->refilled_ns = now;
      if (s->tokens < 1) {
        ++s->dropped;
        dropped->inc();
        continue;
      }
      s->tokens -= 1;
      notified->inc();
      s->channel->deliver(AlarmNotice{to_string(e), a->device, a->type, body});
    }
  }

  void apply_raise(alarms::Raise r) {
    const int64_t at = r.at_ns;
    const std::string type = r.type;
    auto outcome = book.raise(std::move(r));
    switch (outcome.kind) {
      case alarms::Outcome::Kind::raised:
        // By type (anomaly, rule, out_of_range, missing, maintenance, ...): a small, fixed set.
        metrics.counter("fieldline_alarms_raised_total", "Alarms raised, by type", {{"type", type}}).inc();
        changed(outcome.id);
        notify(AlarmEvent::raised, outcome.id, at);
        break;
      case alarms::Outcome::Kind::updated: {
        changed(outcome.id);
        // A condition that lasts is seen again with every sample: channels hear of it at most
        // every kUpdateEvery (the alarm counts every occurrence).
        auto& told = updates_told[outcome.id];
        if (at - told >= kUpdateEvery) {
          told = at;
          notify(AlarmEvent::updated, outcome.id, at);
        }
        break;
      }
      case alarms::Outcome::Kind::suppressed: suppressed->inc(); break;
      case alarms::Outcome::Kind::rate_limited: rate_limited->inc(); break;
    }
  }

  void tick() {
    const int64_t now = env.now_ns();
    for (uint64_t id : book.tick(now)) {
      changed(id);
      notify(AlarmEvent::escalated, id, now);
    }
    // A channel that dropped events hears how many, once a second: it knows it missed some.
    std::vector<std::shared_ptr<Subscriber>> subs;
    {
      std::lock_guard lock(subscribers_mu);
      for (auto& [sid, s] : subscribers) subs.push_back(s);
    }
    for (auto& s : subs) {
      if (s->dropped == 0) continue;
      const std::string body = core::to_json(json::object{{"event", "alarm.storm"},
                                                          {"at", core::format_rfc3339(now)},
                                                          {"dropped", s->dropped},
                                                          {"message", "events held back by this channel's rate limit; "
                                                                      "list the alarms over REST for the full picture"}});
      s->channel->deliver(AlarmNotice{"alarm.storm", "", "", body});
      s->dropped = 0;
    }
    if (++ticks % 3600 == 1) {
      book.expire_maintenance(now);
      (void)book.forget_cleared(now - options.retention_ns);
      asio::post(writer_io, [this, now] {
        for (auto [sql, before] : {std::pair{"DELETE FROM alarms WHERE active = 0 AND cleared_ns < ?", now - options.retention_ns},
                                   std::pair{"DELETE FROM maintenance WHERE to_ns < ?", now}}) {
          sqlite3_stmt* st = nullptr;
          sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
          sqlite3_bind_int64(st, 1, before);
          if (sqlite3_step(st) != SQLITE_DONE) log->error("alarm retention: {}", sqlite3_errmsg(db));
          sqlite3_finalize(st);
        }
      });
    }
    alarms::AlarmBook::Filter active_only;
    active_only.active = true;
    metrics.gauge("fieldline_alarms_active", "Active alarms").set(static_cast<int64_t>(book.list(active_only).size()));
    ticker->expires_after(std::chrono::seconds(1));
    ticker->async_wait([this](boost::system::error_code ec) {
      if (!ec) tick();
    });
  }

  // An operator's action on the service's thread: applied and told to the channels; the rows
  // to save come back, and the caller is answered once the writer has saved them.
  struct Acted {
    Result<Alarm> alarm;
    std::vector<Row> rows;
  };
  Acted act(uint64_t id, AlarmEvent e, const std::function<Status(int64_t)>& action) {
    const int64_t now = env.now_ns();
    if (auto st = action(now); !st) return {st.error(), {}};
    dirty.insert(id);
    auto rows = take_dirty();
    notify(e, id, now);
    return {*book.get(id), std::move(rows)};
  }

  template <typename F>
  auto run(F f) {
    return core::on_executor(io.get_executor(), std::move(f));
  }
  template <typename F>
  auto run_writer(F f) {
    return core::on_executor(writer_io.get_executor(), std::move(f));
  }

  // Runs an action and waits for its save.
  asio::awaitable<Result<Alarm>> act_and_save(std::function<Acted()> f) {
    auto job = run(std::move(f));
    Acted acted = co_await std::move(job);
    if (!acted.alarm) co_return acted.alarm;
    auto save = run_writer([this, rows = std::move(acted.rows)] { return write(rows); });
    Status saved = co_await std::move(save);
    if (!saved) co_return saved.error();
    co_return acted.alarm;
  }
};

AlarmService::AlarmService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<AlarmService>> AlarmService::open(core::Env& env, ops::Metrics& metrics, Options options) {
  auto impl = std::make_unique<Impl>(env, metrics, std::move(options));
  FL_TRY_STATUS(impl->open_db());
  Impl* i = impl.get();
  i->ticker = std::make_unique<asio::steady_timer>(i->io);
  asio::post(i->io, [i] { i->tick(); });
  i->thread = std::thread([i] { i->io.run(); });
  i->writer_thread = std::thread([i] { i->writer_io.run(); });
  return std::unique_ptr<AlarmService>(new AlarmService(std::move(impl)));
}

AlarmService::~AlarmService() {
  flush();
  asio::post(impl_->io, [i = impl_.get()] {
    i->ticker->cancel();
    i->work.reset();
  });
  impl_->thread.join();
  impl_->writer_work.reset();
  impl_->writer_thread.join();
}

void AlarmService::raise(alarms::Raise r) {
  asio::post(impl_->io, [i = impl_.get(), r = std::move(r)]() mutable { i->apply_raise(std::move(r)); });
}

void AlarmService::clear_condition(std::string device, std::string dedup_key, int64_t at_ns) {
  asio::post(impl_->io, [i = impl_.get(), device = std::move(device), key = std::move(dedup_key), at_ns] {
    if (auto id = i->book.clear_condition(device, key, at_ns)) {
      i->updates_told.erase(*id);
      i->changed(*id);
      i->notify(AlarmEvent::cleared, *id, at_ns);
    }
  });
}

uint64_t AlarmService::subscribe(std::shared_ptr<AlarmChannel> channel, alarms::AlarmBook::Filter filter) {
  std::lock_guard lock(impl_->subscribers_mu);
  const uint64_t id = impl_->next_subscriber++;
  auto s = std::make_shared<Impl::Subscriber>();
  s->channel = std::move(channel);
  s->filter = std::move(filter);
  impl_->subscribers.emplace(id, std::move(s));
  return id;
}

void AlarmService::unsubscribe(uint64_t id) {
  std::lock_guard lock(impl_->subscribers_mu);
  impl_->subscribers.erase(id);
}

void AlarmService::flush() {
  std::promise<void> done;
  auto fut = done.get_future();
  asio::post(impl_->io, [i = impl_.get(), &done] {
    i->save_later();
    asio::post(i->writer_io, [&done] { done.set_value(); });  // after what save_later handed over
  });
  fut.wait();
}

asio::awaitable<std::vector<Alarm>> AlarmService::list(alarms::AlarmBook::Filter filter, size_t limit) {
  auto job = impl_->run([i = impl_.get(), filter = std::move(filter), limit] {
    std::vector<Alarm> out;
    for (const Alarm* a : i->book.list(filter)) {
      if (out.size() >= limit) break;
      out.push_back(*a);
    }
    return out;
  });
  auto out = co_await std::move(job);
  co_return out;
}

asio::awaitable<Result<Alarm>> AlarmService::get(uint64_t id) {
  auto job = impl_->run([i = impl_.get(), id]() -> Result<Alarm> {
    const Alarm* a = i->book.get(id);
    if (!a) return core::make_error(core::Errc::not_found, "no alarm " + std::to_string(id));
    return *a;
  });
  auto out = co_await std::move(job);
  co_return out;
}

asio::awaitable<Result<Alarm>> AlarmService::acknowledge(uint64_t id, std::string by) {
  auto job = impl_->act_and_save([i = impl_.get(), id, by = std::move(by)] {
    return i->act(id, AlarmEvent::acknowledged, [&](int64_t now) { return i->book.acknowledge(id, by, now); });
  });
  auto out = co_await std::move(job);
  co_return out;
}

asio::awaitable<Result<Alarm>> AlarmService::clear(uint64_t id, std::string by) {
  auto job = impl_->act_and_save([i = impl_.get(), id, by = std::move(by)] {
    i->updates_told.erase(id);
    return i->act(id, AlarmEvent::cleared, [&](int64_t now) { return i->book.clear(id, by, now); });
  });
  auto out = co_await std::move(job);
  co_return out;
}

asio::awaitable<Result<Alarm>> AlarmService::comment(uint64_t id, std::string by, std::string text) {
  auto job = impl_->act_and_save([i = impl_.get(), id, by = std::move(by), text = std::move(text)]() mutable {
    return i->act(id, AlarmEvent::commented, [&](int64_t now) { return i->book.comment(id, by, std::move(text), now); });
  });
  auto out = co_await std::move(job);
  co_return out;
}

asio::awaitable<Status> AlarmService::add_maintenance(alarms::MaintenanceWindow w) {
  if (w.to_ns <= w.from_ns) co_return core::make_error(core::Errc::invalid_argument, "a maintenance window ends after it starts");
  // Saved first, then in force: a window the caller was told about survives a restart.
  auto save = impl_->run_writer([i = impl_.get(), w]() -> Status {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(i->db, "INSERT INTO maintenance (device, from_ns, to_ns, reason) VALUES (?,?,?,?)", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, w.device.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, w.from_ns);
    sqlite3_bind_int64(st, 3, w.to_ns);
    sqlite3_bind_text(st, 4, w.reason.c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return core::make_error(core::Errc::io_error, std::string("saving a maintenance window: ") + sqlite3_errmsg(i->db));
    return {};
  });
  Status saved = co_await std::move(save);
  if (!saved) co_return saved;
  auto apply = impl_->run([i = impl_.get(), w = std::move(w)]() -> Status {
    i->book.add_maintenance(w);
    return {};
  });
  Status applied = co_await std::move(apply);
  co_return applied;
}

asio::awaitable<std::vector<alarms::MaintenanceWindow>> AlarmService::maintenance() {
  auto job = impl_->run([i = impl_.get()] { return i->book.maintenance(); });
  auto out = co_await std::move(job);
  co_return out;
}

}  // namespace fieldline::analytics
