#pragma once
// Peers the integration tests run beside the server: a WebSocket subscriber (Debian's
// python3-websockets) and any command in the background with its output in a file.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "harness.h"

namespace fieldline::itest {

using namespace std::chrono_literals;

// Debian's python3 with python3-websockets (not whatever python3 a PATH puts first).
constexpr const char* kPython = "/usr/bin/python3";

constexpr const char* kWebSocketClient = R"(import asyncio, sys, websockets
async def main():
    headers = {"Authorization": "Bearer " + sys.argv[2]} if len(sys.argv) > 2 else {}
    try:
        async with websockets.connect(sys.argv[1], extra_headers=headers) as ws:
            while True:
                print(await ws.recv(), flush=True)
    except websockets.exceptions.InvalidStatusCode as e:
        print("refused", e.status_code, flush=True)
    except websockets.exceptions.ConnectionClosed as e:
        print("closed", e.code, e.reason, flush=True)
asyncio.run(main())
)";

// A peer running in the background, its output in a file; killed at the end.
class Background {
 public:
  Background(const std::string& command, std::string output) : output_(std::move(output)) {
    pid_ = fork();
    if (pid_ == 0) {
      execlp("bash", "bash", "-c", ("exec " + command + " > " + shell_quote(output_) + " 2>&1").c_str(), nullptr);
      _exit(127);
    }
  }
  ~Background() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string text() const {
    std::ifstream in(output_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Waits until the output holds `needle`.
  bool wait_for(const std::string& needle, std::chrono::milliseconds limit = 10s) const {
    for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
      if (text().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  int pid_ = -1;
  std::string output_;
};

}  // namespace fieldline::itest
