// SPDX-License-Identifier: LGPL-2.1-or-later
/* Load generator for room-protocol signaling servers (pointcast-signaling and the Python
 * reference): raw sockets + epoll, one thread, no allocation per message on the hot path.
 *
 *   loadtool --port P [--host 127.0.0.1] [--connections 10000] [--pairs 100] [--window 8]
 *            [--seconds 5] [--warmup 1] [--server-pid PID] [--port2 P2 [--server-pid2 PID2]]
 *
 * With --port2 (a second daemon of the same cluster), every room is split across the two:
 * in the hold phase the two clients of a room go one to each daemon, in the relay phase the
 * receivers are on the first and the senders on the second, so every message crosses daemons.
 *
 * Phase 1 (hold): opens N WebSocket connections and registers each (rooms of two); reports how
 * many were registered and the server's RSS growth per connection (/proc/PID/status), then
 * closes them. Phase 2 (relay): P sender/receiver pairs, each in its own room; every sender keeps
 * `window` ice_candidate messages in flight to its receiver (closed loop); reports delivered
 * messages per second and the relay latency p50/p99 (send to receive, same clock).
 * Prints one JSON object on stdout. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::int64_t now_ns()
{
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

long rss_kb(int pid)
{
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

enum class State { Connecting, Handshake, Open, Closed };

struct Conn {
  int fd = -1;
  State state = State::Connecting;
  std::string in; // bytes received, not yet parsed
  std::size_t in_off = 0;
  std::string out; // bytes to write
  std::size_t out_off = 0;
  bool want_write = false;
  bool registered = false;
  bool dirty = false; // frames queued, flushed after the current epoll batch
  int pair = -1;      // relay phase: pair index
  bool sender = false;
  std::string reg; // register message to send once open
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 10000;
  int pairs = 100;
  int window = 8;
  double seconds = 5;
  double warmup = 1;
  int server_pid = 0;
  int port2 = 0; // a second daemon: rooms split across the two
  int server_pid2 = 0;
  // Hold phase split over processes (one process cannot hold 20,000 sockets under a hard limit
  // of 20,000 descriptors): connection j of this process is global number base + j * step.
  int id_base = 0, id_step = 1;
  double hold_seconds = 0; // keep the connections open this long once registered
  int parallel_connects = 100;
};

class Load {
public:
  explicit Load(const Options &o) : opt(o)
  {
    ep = epoll_create1(0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(o.port);
    inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
    addr2 = addr;
    if (o.port2) addr2.sin_port = htons(o.port2);
  }

  // Frame a client text message (mask key 0: masking is then the identity, which RFC 6455
  // permits; it keeps the tool's CPU out of the measurement).
  static void frame(std::string &out, std::string_view payload, int opcode = 1)
  {
    unsigned char h[14];
    std::size_t n = 0, len = payload.size();
    h[n++] = 0x80 | opcode;
    if (len < 126) {
      h[n++] = 0x80 | len;
    } else if (len < 65536) {
      h[n++] = 0x80 | 126;
      h[n++] = len >> 8;
      h[n++] = len & 0xff;
    } else {
      h[n++] = 0x80 | 127;
      for (int i = 7; i >= 0; i--) h[n++] = (len >> (8 * i)) & 0xff;
    }
    h[n++] = 0, h[n++] = 0, h[n++] = 0, h[n++] = 0;
    out.append(reinterpret_cast<char *>(h), n);
    out.append(payload);
  }

  int open_conn(std::string reg, bool second = false)
  {
    const sockaddr_in &to = second ? addr2 : addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      std::fprintf(stderr, "loadtool: socket: %s\n", std::strerror(errno));
      return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<const sockaddr *>(&to), sizeof to) < 0 &&
        errno != EINPROGRESS) {
      std::fprintf(stderr, "loadtool: connect: %s\n", std::strerror(errno));
      close(fd);
      return -1;
    }
    if ((std::size_t)fd >= conns.size()) conns.resize(fd + 1024);
    Conn &c = conns[fd];
    c = Conn{};
    c.fd = fd;
    c.reg = std::move(reg);
    c.out = "GET /ws HTTP/1.1\r\nHost: " + opt.host +
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    c.want_write = true;
    pending_open++;
    return fd;
  }

  void close_conn(Conn &c)
  {
    if (c.fd < 0) return;
    if (c.state != State::Open) pending_open--;
    if (c.registered) registered--;
    epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.state = State::Closed;
    c.fd = -1;
    closed++;
  }

  void flush(Conn &c)
  {
    while (c.out_off < c.out.size()) {
      ssize_t n = write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (n < 0) {
        if (errno == EAGAIN) break;
        close_conn(c);
        return;
      }
      c.out_off += n;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    bool want = !c.out.empty() || c.state == State::Connecting;
    if (want != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? unsigned(EPOLLOUT) : 0u);
      ev.data.fd = c.fd;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = want;
    }
  }

  void send_text(Conn &c, std::string_view text)
  {
    frame(c.out, text);
    flush(c);
  }

  // Called for every text message a connection receives.
  void on_text(Conn &c, std::string_view msg)
  {
    if (!c.registered && msg.find("\"registered\"") != std::string_view::npos) {
      c.registered = true;
      registered++;
      return;
    }
    if (c.pair < 0 || c.sender) return;
    // Relayed candidate: "candidate:<pair> <send time ns> ..."
    std::size_t p = msg.find("candidate:");
    if (p == std::string_view::npos) return;
    const char *s = msg.data() + p + 10;
    char *end = nullptr;
    long pair = std::strtol(s, &end, 10);
    std::int64_t sent = std::strtoll(end, nullptr, 10);
    std::int64_t t = now_ns();
    if (pair < 0 || pair >= (long)inflight.size()) return;
    inflight[pair]--;
    if (measuring && sent >= measure_start) {
      latencies.push_back(t - sent);
      delivered++;
    }
    pump(pair);
  }

  void pump(int pair)
  {
    Conn &s = conns[senders[pair]];
    if (s.state != State::Open || !relay_running) return;
    while (inflight[pair] < opt.window) {
      char buf[320];
      int n = std::snprintf(
          buf, sizeof buf,
          "{\"type\":\"ice_candidate\",\"target_id\":\"rx%d\",\"candidate\":{\"candidate\":"
          "\"candidate:%d %" PRId64 " 1 udp 2122260223 192.168.1.10 54321 typ host "
          "generation 0 ufrag aBcD network-id 1\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}",
          pair, pair, now_ns());
      frame(s.out, std::string_view(buf, n));
      inflight[pair]++;
      sent_total++;
    }
    if (!s.dirty) {
      s.dirty = true;
      dirty.push_back(s.fd);
    }
  }

  void on_readable(Conn &c)
  {
    char buf[65536];
    for (;;) {
      ssize_t n = read(c.fd, buf, sizeof buf);
      if (n == 0) {
        close_conn(c);
        return;
      }
      if (n < 0) {
        if (errno != EAGAIN) close_conn(c);
        break;
      }
      c.in.append(buf, n);
      if (n < (ssize_t)sizeof buf) break;
    }
    if (c.state == State::Handshake) {
      std::size_t e = c.in.find("\r\n\r\n");
      if (e == std::string::npos) return;
      if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
        std::fprintf(stderr, "loadtool: handshake refused: %.40s\n", c.in.c_str());
        close_conn(c);
        return;
      }
      c.in_off = e + 4;
      c.state = State::Open;
      pending_open--;
      opened++;
      send_text(c, c.reg);
      if (c.fd < 0) return;
    }
    // Parse complete server frames (unmasked).
    for (;;) {
      std::size_t avail = c.in.size() - c.in_off;
      if (avail < 2) break;
      auto *p = reinterpret_cast<const unsigned char *>(c.in.data() + c.in_off);
      int opcode = p[0] & 0x0f;
      std::size_t len = p[1] & 0x7f, hdr = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (p[2] << 8) | p[3];
        hdr = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
        hdr = 10;
      }
      if (avail < hdr + len) break;
      std::string_view payload(c.in.data() + c.in_off + hdr, len);
      c.in_off += hdr + len;
      if (opcode == 1) {
        on_text(c, payload);
      } else if (opcode == 9) {
        frame(c.out, payload, 0xA);
        flush(c);
      } else if (opcode == 8) {
        close_conn(c);
        return;
      }
      if (c.fd < 0) return;
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 65536) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
  }

  void poll_once(int timeout_ms)
  {
    epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
      Conn &c = conns[evs[i].data.fd];
      if (c.fd < 0) continue;
      if (c.state == State::Connecting && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
          connect_errors++;
          close_conn(c);
          continue;
        }
        c.state = State::Handshake;
        flush(c);
        if (c.fd < 0) continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (c.fd >= 0 && (evs[i].events & EPOLLOUT) && c.state != State::Connecting) flush(c);
    }
    // One write per sender per batch, like a real client library with Nagle off would not do,
    // but it keeps the load tool's own syscalls out of the way of the servers under test.
    for (int fd : dirty) {
      Conn &c = conns[fd];
      c.dirty = false;
      if (c.fd >= 0) flush(c);
    }
    dirty.clear();
  }

  void hold_phase(std::string &json)
  {
    long before = rss_kb(opt.server_pid) + (opt.server_pid2 ? rss_kb(opt.server_pid2) : 0);
    std::int64_t t0 = now_ns();
    std::vector<int> fds;
    int started = 0;
    std::int64_t deadline = t0 + 120LL * 1000000000;
    while (now_ns() < deadline) {
      while (started < opt.connections && pending_open < opt.parallel_connects) {
        char reg[160];
        int g = opt.id_base + started * opt.id_step;
        std::snprintf(reg, sizeof reg,
                      "{\"type\":\"register\",\"client_id\":\"c%d\",\"room_id\":\"hold-%d\","
                      "\"client_type\":\"bench\"}",
                      g, g / 2);
        int fd = open_conn(reg, opt.port2 && g % 2);
        started++;
        if (fd >= 0) fds.push_back(fd);
      }
      if (registered >= opt.connections ||
          (started >= opt.connections && pending_open == 0 &&
           registered + closed >= opt.connections))
        break;
      poll_once(10);
    }
    double secs = (now_ns() - t0) / 1e9;
    // Let the server settle (peer_joined deliveries) before reading its memory.
    for (int i = 0; i < 50; i++) poll_once(10);
    for (std::int64_t until = now_ns() + std::int64_t(opt.hold_seconds * 1e9); now_ns() < until;)
      poll_once(10);
    long after = rss_kb(opt.server_pid) + (opt.server_pid2 ? rss_kb(opt.server_pid2) : 0);
    int held = registered;
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"connections_target\":%d,\"connections_held\":%d,\"connect_seconds\":%.2f,"
                  "\"connect_errors\":%d,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"kb_per_"
                  "connection\":%.2f",
                  opt.connections, held, secs, connect_errors, before, after,
                  held > 0 && before >= 0 ? double(after - before) / held : -1.0);
    json += buf;
    for (int fd : fds)
      if (conns[fd].fd >= 0) close_conn(conns[fd]);
    registered = 0;
    // Give the server time to notice the closes before the next phase.
    for (int i = 0; i < 100; i++) poll_once(10);
  }

  void relay_phase(std::string &json)
  {
    inflight.assign(opt.pairs, 0);
    senders.assign(opt.pairs, -1);
    std::vector<int> fds;
    for (int k = 0; k < opt.pairs; k++) {
      char reg[160];
      std::snprintf(reg, sizeof reg,
                    "{\"type\":\"register\",\"client_id\":\"rx%d\",\"room_id\":\"pair-%d\","
                    "\"client_type\":\"bench\"}",
                    k, k);
      int r = open_conn(reg);
      if (r < 0) break;
      conns[r].pair = k;
      fds.push_back(r);
    }
    // Receivers first so the senders' targets exist.
    std::int64_t deadline = now_ns() + 30LL * 1000000000;
    while (registered < (int)fds.size() && now_ns() < deadline) poll_once(10);
    for (int k = 0; k < opt.pairs; k++) {
      char reg[160];
      std::snprintf(reg, sizeof reg,
                    "{\"type\":\"register\",\"client_id\":\"tx%d\",\"room_id\":\"pair-%d\","
                    "\"client_type\":\"bench\"}",
                    k, k);
      int s = open_conn(reg, opt.port2 != 0);
      if (s < 0) break;
      conns[s].pair = k;
      conns[s].sender = true;
      senders[k] = s;
      fds.push_back(s);
    }
    while (registered < 2 * opt.pairs && now_ns() < deadline) poll_once(10);
    if (registered < 2 * opt.pairs)
      std::fprintf(stderr, "loadtool: only %d of %d relay clients registered\n", registered,
                   2 * opt.pairs);
    // Drain the peer_joined messages, then go.
    for (int i = 0; i < 20; i++) poll_once(5);
    latencies.reserve(4 << 20);
    relay_running = true;
    for (int k = 0; k < opt.pairs; k++)
      if (senders[k] >= 0) pump(k);
    std::int64_t start = now_ns();
    std::int64_t warm_end = start + std::int64_t(opt.warmup * 1e9);
    std::int64_t end = warm_end + std::int64_t(opt.seconds * 1e9);
    while (now_ns() < end) {
      if (!measuring && now_ns() >= warm_end) {
        measuring = true;
        measure_start = now_ns();
        sent_at_start = sent_total;
      }
      poll_once(5);
    }
    double secs = (now_ns() - measure_start) / 1e9;
    measuring = false;
    relay_running = false;
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double q) {
      if (latencies.empty()) return -1.0;
      std::size_t i = std::min(latencies.size() - 1, std::size_t(q * latencies.size()));
      return latencies[i] / 1e6;
    };
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  ",\"pairs\":%d,\"window\":%d,\"relay_seconds\":%.2f,\"delivered\":%llu,"
                  "\"throughput_msg_s\":%.0f,\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,"
                  "\"latency_max_ms\":%.3f",
                  opt.pairs, opt.window, secs, (unsigned long long)delivered, delivered / secs,
                  pct(0.5), pct(0.99), latencies.empty() ? -1.0 : latencies.back() / 1e6);
    json += buf;
    for (int fd : fds)
      if (conns[fd].fd >= 0) close_conn(conns[fd]);
  }

  Options opt;
  int ep;
  sockaddr_in addr{}, addr2{};
  std::vector<Conn> conns;
  int pending_open = 0, opened = 0, registered = 0, closed = 0, connect_errors = 0;
  std::vector<int> inflight, senders, dirty;
  bool relay_running = false, measuring = false;
  std::int64_t measure_start = 0;
  std::uint64_t sent_total = 0, sent_at_start = 0, delivered = 0;
  std::vector<std::int64_t> latencies;
};

} // namespace

int main(int argc, char **argv)
{
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char * {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "loadtool: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::atoi(next());
    else if (a == "--connections")
      o.connections = std::atoi(next());
    else if (a == "--pairs")
      o.pairs = std::atoi(next());
    else if (a == "--window")
      o.window = std::atoi(next());
    else if (a == "--seconds")
      o.seconds = std::atof(next());
    else if (a == "--warmup")
      o.warmup = std::atof(next());
    else if (a == "--port2")
      o.port2 = std::atoi(next());
    else if (a == "--id-base")
      o.id_base = std::atoi(next());
    else if (a == "--id-step")
      o.id_step = std::max(1, std::atoi(next()));
    else if (a == "--hold-seconds")
      o.hold_seconds = std::atof(next());
    else if (a == "--server-pid2")
      o.server_pid2 = std::atoi(next());
    else if (a == "--server-pid")
      o.server_pid = std::atoi(next());
    else {
      std::fprintf(stderr,
                   "usage: loadtool --port P [--host H] [--connections N] [--pairs P] "
                   "[--window W] [--seconds S] [--warmup S] [--server-pid PID] [--port2 P2] "
                   "[--server-pid2 PID2] [--id-base B --id-step S] [--hold-seconds S]\n");
      return 2;
    }
  }
  if (o.port <= 0) {
    std::fprintf(stderr, "loadtool: --port is required\n");
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  // 20,000 connections need more than a hard limit of 20,000; root may raise it.
  rlim_t want = rlim_t(o.connections) + 1024;
  if (rl.rlim_max < want) {
    rlimit more{want, want};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) rl = more;
  }
  if (rl.rlim_cur < (rlim_t)o.connections + 256)
    std::fprintf(stderr, "loadtool: only %llu file descriptors allowed\n",
                 (unsigned long long)rl.rlim_cur);

  Load load(o);
  std::string json = "{";
  if (o.connections > 0)
    load.hold_phase(json);
  else
    json += "\"connections_held\":0";
  if (o.pairs > 0) load.relay_phase(json);
  json += "}";
  std::printf("%s\n", json.c_str());
  return 0;
}
