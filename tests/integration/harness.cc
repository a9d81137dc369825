#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace fieldline::itest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult run(const std::string& command, int timeout_s) {
  std::string full = "timeout -k 2 " + std::to_string(timeout_s) + " bash -c " + shell_quote(command) + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  CommandResult r;
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("fieldline-itest-" + std::to_string(rd()))).string();
  fs::create_directories(path_);
}
TempDir::~TempDir() {
  std::error_code ec;
  if (!::testing::Test::HasFailure()) fs::remove_all(path_, ec);
}

ServerProcess::ServerProcess(std::string data_dir, std::vector<std::string> settings)
    : data_dir_(std::move(data_dir)), settings_(std::move(settings)) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string ServerProcess::log() const {
  std::ifstream in(data_dir_ + ".log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ServerProcess::start() {
  std::string listen = data_dir_ + "/listen.json";
  fs::remove(listen);
  std::vector<std::string> args = {FIELDLINE_BINARY, "serve", "--data-dir", data_dir_, "--mqtt-listen", "127.0.0.1:0",
                                   "--http-listen", "127.0.0.1:0", "--log-level", "info"};
  for (const auto& s : settings_) {
    args.push_back("--set");
    args.push_back(s);
  }
  std::string log_path = data_dir_ + ".log";
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("FIELDLINE_ADMIN_TOKEN", kAdminToken, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (fs::exists(listen)) {
      std::ifstream in(listen);
      std::stringstream ss;
      ss << in.rdbuf();
      boost::system::error_code ec;
      auto v = boost::json::parse(ss.str(), ec);
      if (!ec) {
        http_port_ = static_cast<uint16_t>(v.at("http").to_number<int>());
        mqtt_port_ = static_cast<uint16_t>(v.at("mqtt").to_number<int>());
        return;
      }
    }
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "fieldline exited at start:\n" << log();
    }
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "fieldline did not start within 10 s:\n" << log();
}

void ServerProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::pair<int, double> ServerProcess::terminate() {
  auto t0 = std::chrono::steady_clock::now();
  ::kill(pid_, SIGTERM);
  int st = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, secs};
    }
    std::this_thread::sleep_for(50ms);
  }
  kill9();
  return {-1, 10.0};
}

bool ServerProcess::running() {
  if (pid_ <= 0) return false;
  return waitpid(pid_, nullptr, WNOHANG) == 0;
}

std::pair<int, std::string> ServerProcess::http(const std::string& method, const std::string& path, const std::string& body,
                                                const std::string& token, const std::string& content_type) {
  std::string cmd = "curl -s -o /dev/stdout -w '\\n%{http_code}' -X " + method + " " + shell_quote(url() + path);
  if (!token.empty()) cmd += " -H " + shell_quote("Authorization: Bearer " + token);
  if (!body.empty()) cmd += " -H " + shell_quote("Content-Type: " + content_type) + " --data-binary " + shell_quote(body);
  auto r = run(cmd);
  auto nl = r.output.rfind('\n');
  if (nl == std::string::npos) return {0, r.output};
  return {std::atoi(r.output.c_str() + nl + 1), r.output.substr(0, nl)};
}

std::string ServerProcess::add_device(const std::string& id, const std::string& tags_json) {
  auto [code, body] = http("POST", "/api/v1/devices", "{\"id\":\"" + id + "\",\"tags\":" + tags_json + "}");
  EXPECT_EQ(code, 201) << body;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return {};
  return std::string(v.at("token").as_string());
}

boost::json::array ServerProcess::query(const std::string& device, const std::string& metric, const std::string& extra) {
  auto [code, body] = http("GET", "/api/v1/devices/" + device + "/metrics/" + metric + "?from=0&to=now%2B1d" + extra);
  EXPECT_EQ(code, 200) << body;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return {};
  return v.at("points").as_array();
}

double ServerProcess::metric(const std::string& name, const std::string& filter) {
  auto [code, body] = http("GET", "/metrics");
  double total = 0;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(name) || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    if (!filter.empty() && line.find(filter) == std::string::npos) continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

std::string ServerProcess::mosquitto_args(const std::string& device, const std::string& token) const {
  return "-h 127.0.0.1 -p " + std::to_string(mqtt_port_) + " -u " + shell_quote(device) + " -P " + shell_quote(token);
}

RawMqtt::RawMqtt(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
  int one = 1;
  if (fd_ >= 0) setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
RawMqtt::~RawMqtt() {
  if (fd_ >= 0) ::close(fd_);
}

void RawMqtt::send_bytes(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void RawMqtt::send(const transport::mqtt::Packet& p, uint8_t version) {
  std::string b;
  transport::mqtt::encode(p, version, b);
  send_bytes(b);
}

std::optional<transport::mqtt::Packet> RawMqtt::receive(uint8_t version, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    // Client side: decode server packets (CONNACK etc.) as a non-zero version.
    auto d = transport::mqtt::decode(std::span<const char>(buf_.data(), buf_.size()), version, 0);
    if (d && *d) {
      auto p = std::move((*d)->packet);
      buf_.erase(0, (*d)->size);
      return p;
    }
    if (!d) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      closed_ = true;
      return std::nullopt;
    }
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

bool RawMqtt::wait_closed(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) closed_ = true;
    else buf_.append(tmp, static_cast<size_t>(n));
  }
  return true;
}

int RawMqtt::connect(uint8_t version, const std::string& user, const std::string& password, uint16_t keep_alive,
                     const std::string& client_id) {
  transport::mqtt::Connect c;
  c.version = version;
  c.client_id = client_id;
  c.keep_alive = keep_alive;
  c.username = user;
  c.password = password;
  send(c, version);
  auto p = receive(version);
  if (!p || !std::holds_alternative<transport::mqtt::Connack>(*p)) return -1;
  return std::get<transport::mqtt::Connack>(*p).code;
}

std::optional<transport::mqtt::Connack> RawMqtt::connect(const transport::mqtt::Connect& c) {
  send(c, c.version);
  auto p = receive(c.version);
  if (!p || !std::holds_alternative<transport::mqtt::Connack>(*p)) return std::nullopt;
  return std::get<transport::mqtt::Connack>(*p);
}

}  // namespace fieldline::itest
