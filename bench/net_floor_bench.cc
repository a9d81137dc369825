// Google Benchmark of what the kernel alone charges for one MQTT QoS 1 exchange over loopback
// TCP: a 130-byte PUBLISH one way, a 4-byte PUBACK back, each a write and a read, no broker
// work at all. With one message per packet (thousands of devices each sending a reading now
// and then) this is a floor under the CPU per message of any broker and load generator
// sharing one machine; bench/README.md puts it beside bench/mqtt_many_connections.sh.
//
// `/1`: one connection, the exchange in a loop. `/N`: N connections, one exchange on each in
// turn, as a server sees many devices (the sockets' state no longer stays in the caches).
#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstring>
#include <vector>

namespace {

struct Pair {
  int device = -1, broker = -1;
};

// A connected loopback TCP pair with Nagle off on both ends, as MQTT clients and brokers run.
bool connect_pair(int listener, const sockaddr_in& at, Pair& p) {
  p.device = ::socket(AF_INET, SOCK_STREAM, 0);
  if (p.device < 0 || ::connect(p.device, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) return false;
  p.broker = ::accept(listener, nullptr, nullptr);
  if (p.broker < 0) return false;
  int one = 1;
  ::setsockopt(p.device, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(p.broker, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

bool exchange(const Pair& p, const char* publish, size_t publish_size, char* buf, size_t buf_size) {
  static constexpr char kPuback[4] = {0x40, 0x02, 0x00, 0x01};
  if (::send(p.device, publish, publish_size, 0) != static_cast<ssize_t>(publish_size)) return false;
  for (size_t got = 0; got < publish_size;) {
    const ssize_t n = ::recv(p.broker, buf, buf_size, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  if (::send(p.broker, kPuback, sizeof kPuback, 0) != sizeof kPuback) return false;
  for (size_t got = 0; got < sizeof kPuback;) {
    const ssize_t n = ::recv(p.device, buf, buf_size, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

void BM_LoopbackQos1Exchange(benchmark::State& state) {
  const auto connections = static_cast<size_t>(state.range(0));
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof at;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || ::listen(listener, 1024) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len) != 0) {
    state.SkipWithError("cannot listen on loopback");
    return;
  }
  std::vector<Pair> pairs(connections);
  bool ok = true;
  for (auto& p : pairs) ok = ok && connect_pair(listener, at, p);
  // A 100-byte JSON reading with its topic, as tools/loadgen sends.
  char publish[130];
  std::memset(publish, 'x', sizeof publish);
  publish[0] = 0x32;  // PUBLISH, QoS 1
  publish[1] = static_cast<char>(sizeof publish - 2);
  char buf[4096];
  size_t next = 0;
  for (auto _ : state) {
    if (!ok || !exchange(pairs[next], publish, sizeof publish, buf, sizeof buf)) {
      state.SkipWithError("a loopback exchange failed");
      break;
    }
    if (++next == pairs.size()) next = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  for (auto& p : pairs) {
    if (p.device >= 0) ::close(p.device);
    if (p.broker >= 0) ::close(p.broker);
  }
  ::close(listener);
}
BENCHMARK(BM_LoopbackQos1Exchange)->Arg(1)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  // 5,000 pairs are 10,000 descriptors.
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
