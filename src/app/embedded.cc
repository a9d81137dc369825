#include "embedded.h"

#include <boost/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "fieldline/core/errc.h"

namespace fieldline::app {

namespace fs = std::filesystem;

Result<std::unique_ptr<EmbeddedServer>> EmbeddedServer::start(const Options& options) {
  std::unique_ptr<EmbeddedServer> server(new EmbeddedServer());
  if (options.data_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fieldline-XXXXXX";
    if (!mkdtemp(pattern.data())) return core::errno_error(errno, "cannot make a folder for the embedded server");
    server->data_dir_ = pattern;
    server->remove_dir_ = true;
  } else {
    server->data_dir_ = options.data_dir;
    std::error_code ec;
    fs::create_directories(server->data_dir_, ec);
  }
  // A token for this run only: the server keeps its hash, this process the token.
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) server->admin_token_.push_back(kHex[random() & 15]);
  server->log_path_ = server->data_dir_ + "/server.log";
  const std::string listen = server->data_dir_ + "/listen.json";
  std::vector<std::string> args = {"/proc/self/exe", "serve", "--data-dir", server->data_dir_, "--mqtt-listen", options.mqtt_listen,
                                   "--http-listen", options.http_listen};
  for (const auto& s : options.settings) {
    args.push_back("--set");
    args.push_back(s);
  }
  server->pid_ = fork();
  if (server->pid_ < 0) return core::errno_error(errno, "cannot start the embedded server");
  if (server->pid_ == 0) {
    const int fd = ::open(server->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("FIELDLINE_ADMIN_TOKEN", server->admin_token_.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(listen);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      boost::system::error_code ec;
      auto ports = boost::json::parse(text.str(), ec);
      if (!ec && ports.is_object() && ports.as_object().contains("http")) {
        server->url_ = "http://127.0.0.1:" + std::to_string(ports.at("http").to_number<int>());
        server->mqtt_port_ = static_cast<uint16_t>(ports.at("mqtt").to_number<int>());
        return server;
      }
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return core::make_error(core::Errc::io_error, "the embedded server exited at start:\n" + server->log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return core::make_error(core::Errc::io_error, "the embedded server did not start within 30 s:\n" + server->log_tail());
}

EmbeddedServer::~EmbeddedServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (remove_dir_) {
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
  }
}

Result<std::string> EmbeddedServer::call(const std::string& method, const std::string& target, const std::string& body,
                                         const std::string& content_type, const std::string& token) const {
  FL_TRY(res, http_request(url_, token.empty() ? admin_token_ : token, method, target, body, content_type));
  if (res.status >= 400) {
    return core::make_error(core::Errc::invalid_argument, method + " " + target + ": " + std::to_string(res.status) + " " + res.body);
  }
  return std::move(res.body);
}

std::string EmbeddedServer::log_tail(size_t lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += l + "\n";
  return out;
}

}  // namespace fieldline::app
