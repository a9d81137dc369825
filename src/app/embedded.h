#pragma once
// A fieldline server started by this binary as a child process, on a data directory of its
// own and on loopback ports the system picks: for commands that run something through the
// whole platform (fieldline eval cmapss) rather than through its libraries.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "client.h"
#include "fieldline/core/result.h"

namespace fieldline::app {

class EmbeddedServer {
 public:
  struct Options {
    std::string data_dir;               // empty: a fresh folder under $TMPDIR, removed at the end
    std::vector<std::string> settings;  // --set key=value
    std::string http_listen = "127.0.0.1:0", mqtt_listen = "127.0.0.1:0";
  };
  // Returns once the server listens (or failed to start within 30 s, with its log).
  static Result<std::unique_ptr<EmbeddedServer>> start(const Options& options);
  // SIGTERM, waits for the exit; removes a data directory it made.
  ~EmbeddedServer();
  EmbeddedServer(const EmbeddedServer&) = delete;
  EmbeddedServer& operator=(const EmbeddedServer&) = delete;

  const std::string& url() const { return url_; }
  uint16_t mqtt_port() const { return mqtt_port_; }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& data_dir() const { return data_dir_; }
  // A request with the admin token (or `token`); a status of 400 or above is an error that
  // carries the server's message.
  Result<std::string> call(const std::string& method, const std::string& target, const std::string& body = {},
                           const std::string& content_type = "application/json", const std::string& token = {}) const;
  // The last lines of the server's log, for error messages.
  std::string log_tail(size_t lines = 20) const;

 private:
  EmbeddedServer() = default;
  pid_t pid_ = -1;
  std::string data_dir_, log_path_, url_, admin_token_;
  bool remove_dir_ = false;
  uint16_t mqtt_port_ = 0;
};

}  // namespace fieldline::app
