// SPDX-License-Identifier: LGPL-2.1-or-later
// pcnet-router: forwards IP packets between two TUN devices (each may live in its own network
// namespace) through the impairment model of impair.h, one model per direction.
//
//   pcnet-router --a NETNS:DEV --b NETNS:DEV [--a2b "SETTINGS"] [--b2a "SETTINGS"]
//                [--both "SETTINGS"] [--schedule FILE] [--control SOCKET] [--seed N] [--realtime]
//                [--nat "type=cone|symmetric ip=PUBLIC [filter=none|address|port] [timeout=S]
//                        [udp=block]"]
//
// SETTINGS: loss=0.02 ge=P:R[:LOSS_BAD[:LOSS_GOOD]] delay=MS jitter=MS reorder=0|1
//           rate=KBIT|300k|1M queue=BYTES queue-ms=MS down=0|1 clear
// Schedule file: one change per line, "SECONDS a2b|b2a|both SETTINGS" (seconds from start,
// '#' comments). Control socket (UNIX stream, one command per connection, one reply line):
// "set a2b|b2a|both SETTINGS" -> "ok" or "error: ...", "get" and "stats" -> JSON.
// "nat" -> JSON (settings, counters, live mappings); "nat flush" forgets every mapping (a NAT
// rebooted or its table flushed), "nat flush udp" (or tcp) only that protocol's (UDP mappings
// timed out while a TCP connection through the NAT lives on) -> "ok N". With --nat, side a is the private side of a
// NAT (nat.h) and side b the public one; the impairments apply to the translated packets.
// NETNS "-" means the router's own namespace. The TUN devices must exist (ip tuntap add).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>
#include <string>
#include <vector>

#include "impair.h"
#include "nat.h"

namespace {

volatile sig_atomic_t g_stop = 0;

int64_t now_ns()
{
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string &msg)
{
  std::fprintf(stderr, "pcnet-router: %s\n", msg.c_str());
  std::exit(2);
}

// Opens DEV in network namespace NETNS ("-" = ours): TUNSETIFF looks the name up in the
// caller's namespace, so we enter it for the call and come back.
int open_tun(const std::string &spec)
{
  auto colon = spec.find(':');
  if (colon == std::string::npos) die("expected NETNS:DEV, got " + spec);
  std::string ns = spec.substr(0, colon), dev = spec.substr(colon + 1);
  int home = -1;
  if (ns != "-") {
    home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int target = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (home < 0 || target < 0) die("cannot open network namespace " + ns + ": " + strerror(errno));
    if (setns(target, CLONE_NEWNET) != 0) die("setns " + ns + ": " + strerror(errno));
    close(target);
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die(std::string("/dev/net/tun: ") + strerror(errno));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev.c_str());
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF " + spec + ": " + strerror(errno));
  if (home >= 0) {
    if (setns(home, CLONE_NEWNET) != 0) die(std::string("setns back: ") + strerror(errno));
    close(home);
  }
  return fd;
}

struct Pending {
  int64_t due;
  uint64_t seq; // ties keep arrival order
  int dir;
  std::vector<uint8_t> data;
  bool operator>(const Pending &o) const { return due != o.due ? due > o.due : seq > o.seq; }
};

struct Change {
  int64_t at_ns;
  std::string dir, settings;
};

std::string stats_json(const pcnet::Direction &d)
{
  const auto &s = d.stats;
  char buf[400];
  std::snprintf(
      buf, sizeof buf,
      "{\"in\":%llu,\"in_bytes\":%llu,\"lost\":%llu,\"queue_drops\":%llu,\"down_drops\":%llu,"
      "\"out\":%llu,\"out_bytes\":%llu,\"write_errors\":%llu,\"late_max_us\":%.1f,"
      "\"late_mean_us\":%.2f}",
      (unsigned long long)s.in, (unsigned long long)s.in_bytes, (unsigned long long)s.lost,
      (unsigned long long)s.queue_drops, (unsigned long long)s.down_drops,
      (unsigned long long)s.out, (unsigned long long)s.out_bytes,
      (unsigned long long)s.write_errors, s.late_max_ns / 1e3,
      s.out ? s.late_sum_ns / s.out / 1e3 : 0.0);
  return buf;
}

class Router {
public:
  Router(uint64_t seed)
      : dirs_{pcnet::Direction(seed), pcnet::Direction(seed * 2654435761u + 1)},
        nat(pcnet::NatParams{}, seed * 40503u + 7)
  {
  }
  int fd[2] = {-1, -1}; // fd[0] = side a, fd[1] = side b; dir 0 = a->b, dir 1 = b->a
  pcnet::Direction dirs_[2];
  std::vector<Change> schedule;
  size_t next_change = 0;
  int control = -1;
  pcnet::Nat nat; // used when nat.params.enabled

  std::string set(const std::string &dir, const std::string &settings)
  {
    std::vector<int> which;
    if (dir == "a2b")
      which = {0};
    else if (dir == "b2a")
      which = {1};
    else if (dir == "both")
      which = {0, 1};
    else
      return "unknown direction '" + dir + "' (a2b, b2a, both)";
    for (int i : which) {
      std::string err = pcnet::apply_settings(dirs_[i].params, settings);
      if (!err.empty()) return err;
    }
    return {};
  }

  std::string handle(const std::string &line)
  {
    std::istringstream in(line);
    std::string cmd, dir;
    in >> cmd;
    if (cmd == "stats")
      return "{\"a2b\":" + stats_json(dirs_[0]) + ",\"b2a\":" + stats_json(dirs_[1]) +
          (nat.params.enabled ? ",\"nat\":" + nat.json(now_ns()) : "") + "}";
    if (cmd == "nat") {
      std::string sub;
      in >> sub;
      if (!nat.params.enabled) return sub.empty() ? "{}" : "error: no --nat";
      if (sub == "flush") {
        std::string what;
        in >> what;
        if (what != "" && what != "udp" && what != "tcp")
          return "error: nat flush takes udp, tcp or nothing, not '" + what + "'";
        uint8_t proto = what == "udp" ? 17 : what == "tcp" ? 6 : 0;
        return "ok " + std::to_string(nat.flush(proto));
      }
      if (!sub.empty()) return "error: unknown nat command '" + sub + "' (flush [udp|tcp])";
      return nat.json(now_ns());
    }
    if (cmd == "get")
      return "{\"a2b\":" + pcnet::describe(dirs_[0].params) +
          ",\"b2a\":" + pcnet::describe(dirs_[1].params) + "}";
    if (cmd == "set") {
      in >> dir;
      std::string rest;
      std::getline(in, rest);
      std::string err = set(dir, rest);
      return err.empty() ? "ok" : "error: " + err;
    }
    return "error: unknown command '" + cmd + "' (set, get, stats, nat)";
  }

  void serve_control()
  {
    int c = accept4(control, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{1, 0}; // a client that sends nothing must not stall the packets
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char ch;
    while (line.size() < 4096 && read(c, &ch, 1) == 1 && ch != '\n') line += ch;
    std::string reply = handle(line) + "\n";
    if (write(c, reply.data(), reply.size()) < 0) {}
    close(c);
  }

  void run(int64_t start)
  {
    std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> heap;
    uint64_t seq = 0;
    std::vector<uint8_t> buf(65536);
    while (!g_stop) {
      int64_t now = now_ns();
      while (next_change < schedule.size() && schedule[next_change].at_ns + start <= now) {
        const Change &c = schedule[next_change++];
        std::string err = set(c.dir, c.settings);
        std::fprintf(stderr, "pcnet-router: t=%.3f s %s %s%s%s\n", (now - start) / 1e9,
                     c.dir.c_str(), c.settings.c_str(),
                     err.empty() ? "" : " -> error: ", err.c_str());
      }
      while (!heap.empty() && heap.top().due <= now) {
        const Pending &p = heap.top();
        auto &st = dirs_[p.dir].stats;
        int out = fd[p.dir == 0 ? 1 : 0];
        if (write(out, p.data.data(), p.data.size()) == ssize_t(p.data.size())) {
          st.out++;
          st.out_bytes += p.data.size();
          int64_t late = now - p.due;
          st.late_sum_ns += late;
          if (late > st.late_max_ns) st.late_max_ns = late;
        } else {
          st.write_errors++;
        }
        heap.pop();
      }
      int64_t wake = INT64_MAX;
      if (!heap.empty()) wake = heap.top().due;
      if (next_change < schedule.size()) wake = std::min(wake, schedule[next_change].at_ns + start);
      pollfd pfd[3] = {{fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}, {control, POLLIN, 0}};
      timespec ts, *tsp = nullptr;
      if (wake != INT64_MAX) {
        int64_t wait = std::max<int64_t>(0, wake - now_ns());
        ts = {time_t(wait / 1000000000), long(wait % 1000000000)};
        tsp = &ts;
      }
      int n = ppoll(pfd, control >= 0 ? 3 : 2, tsp, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        die(std::string("ppoll: ") + strerror(errno));
      }
      for (int side = 0; side < 2; side++) {
        if (!(pfd[side].revents & POLLIN)) continue;
        // Drain the device: everything that came in now is stamped with its own arrival time.
        for (int k = 0; k < 256; k++) {
          ssize_t len = read(fd[side], buf.data(), buf.size());
          if (len <= 0) break;
          int64_t due = 0, at = now_ns();
          if (nat.params.enabled &&
              !(side == 0 ? nat.outbound(buf.data(), size_t(len), at)
                          : nat.inbound(buf.data(), size_t(len), at)))
            continue;
          if (dirs_[side].admit(at, size_t(len), &due) == pcnet::Verdict::Pass)
            heap.push({due, seq++, side, std::vector<uint8_t>(buf.begin(), buf.begin() + len)});
        }
      }
      if (control >= 0 && (pfd[2].revents & POLLIN)) serve_control();
    }
  }
};

std::vector<Change> read_schedule(const std::string &path)
{
  std::ifstream f(path);
  if (!f) die("cannot read schedule " + path);
  std::vector<Change> out;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    lineno++;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream in(line);
    double at;
    Change c;
    if (!(in >> at)) continue;
    in >> c.dir;
    std::getline(in, c.settings);
    pcnet::Params probe;
    std::string err = pcnet::apply_settings(probe, c.settings);
    if (c.dir != "a2b" && c.dir != "b2a" && c.dir != "both")
      err = "direction must be a2b, b2a or both";
    if (!err.empty()) die(path + ":" + std::to_string(lineno) + ": " + err);
    c.at_ns = int64_t(at * 1e9);
    out.push_back(c);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Change &x, const Change &y) { return x.at_ns < y.at_ns; });
  return out;
}

void on_signal(int)
{
  g_stop = 1;
}

} // namespace

int main(int argc, char **argv)
{
  std::string a, b, control_path, schedule_path, nat_settings;
  std::vector<std::pair<std::string, std::string>> initial;
  uint64_t seed = uint64_t(now_ns());
  bool realtime = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--a")
      a = value();
    else if (arg == "--b")
      b = value();
    else if (arg == "--a2b" || arg == "--b2a" || arg == "--both")
      initial.push_back({arg.substr(2), value()});
    else if (arg == "--schedule")
      schedule_path = value();
    else if (arg == "--control")
      control_path = value();
    else if (arg == "--seed")
      seed = std::stoull(value());
    else if (arg == "--realtime")
      realtime = true;
    else if (arg == "--nat")
      nat_settings = value();
    else if (arg == "--help" || arg == "-h") {
      std::puts("usage: pcnet-router --a NETNS:DEV --b NETNS:DEV [--a2b|--b2a|--both SETTINGS]... "
                "[--schedule FILE] [--control SOCKET] [--seed N] [--realtime] "
                "[--nat \"type=cone|symmetric ip=PUBLIC [filter=none|address|port] "
                "[timeout=S] [tcp-timeout=S] [ports=LO-HI] [udp=pass|block]\"]");
      return 0;
    } else
      die("unknown argument " + arg);
  }
  if (a.empty() || b.empty()) die("--a and --b are required (NETNS:DEV)");

  Router r(seed);
  for (auto &[dir, settings] : initial) {
    std::string err = r.set(dir, settings);
    if (!err.empty()) die("--" + dir + ": " + err);
  }
  if (!nat_settings.empty()) {
    std::string err = pcnet::apply_nat_settings(r.nat.params, nat_settings);
    if (!err.empty()) die("--nat: " + err);
  }
  if (!schedule_path.empty()) r.schedule = read_schedule(schedule_path);
  r.fd[0] = open_tun(a);
  r.fd[1] = open_tun(b);
  if (!control_path.empty()) {
    r.control = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (control_path.size() >= sizeof addr.sun_path) die("control socket path too long");
    std::strcpy(addr.sun_path, control_path.c_str());
    unlink(control_path.c_str());
    if (bind(r.control, (sockaddr *)&addr, sizeof addr) != 0 || listen(r.control, 8) != 0)
      die("control socket " + control_path + ": " + strerror(errno));
  }
  if (realtime) {
    // Packet timing should not depend on the load of a shared machine; fall back if refused.
    sched_param sp{};
    sp.sched_priority = 10;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      std::fprintf(stderr, "pcnet-router: no realtime priority (%s), timing may drift under load\n",
                   strerror(errno));
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // A test killed with SIGKILL cannot stop us: we live outside its namespaces, which the next
  // run sweeps, so we go with our parent.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 0;
  signal(SIGPIPE, SIG_IGN);
  // The schedule's clock starts now; t0 (CLOCK_MONOTONIC ns) lets a test line it up.
  const int64_t t0 = now_ns();
  std::printf("ready seed=%llu t0=%lld\n", (unsigned long long)seed, (long long)t0);
  std::fflush(stdout);
  r.run(t0);
  if (!control_path.empty()) unlink(control_path.c_str());
  std::fprintf(stderr, "pcnet-router: a2b %s\npcnet-router: b2a %s\n",
               stats_json(r.dirs_[0]).c_str(), stats_json(r.dirs_[1]).c_str());
  if (r.nat.params.enabled)
    std::fprintf(stderr, "pcnet-router: nat %s\n", r.nat.json(now_ns()).c_str());
  return 0;
}
