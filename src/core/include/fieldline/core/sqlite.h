#pragma once
// A thin SQLite wrapper for the modules that keep a database of their own: errors as values
// that name the file, statements that finalize themselves.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fieldline/core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fieldline::core::sqlite {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, std::string where) : stmt_(stmt), where_(std::move(where)) {}
  Statement(Statement&& o) noexcept : stmt_(o.stmt_), where_(std::move(o.where_)) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters count from 1, as in SQL (?1).
  Statement& bind(int i, int64_t v);
  Statement& bind(int i, double v);  // NaN binds NULL
  Statement& bind(int i, std::string_view v);
  // A row (true), done (false), or the error.
  Result<bool> step();
  Status run();  // steps to the end
  void reset();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  double real(int col) const;  // NULL reads NaN
  std::string text(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  std::string where_;
};

class Database {
 public:
  // Opens (creating) `path` in WAL mode; `durable`: synchronous=FULL (a committed transaction
  // survives power loss), else NORMAL (it survives a crash of the process).
  static Result<std::unique_ptr<Database>> open(const std::string& path, bool durable);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(const char* sql);
  Result<Statement> prepare(std::string_view sql);
  int64_t last_insert_id() const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

}  // namespace fieldline::core::sqlite
