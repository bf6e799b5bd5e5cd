// SPDX-License-Identifier: LGPL-2.1-or-later
// The NAT of pcnet-router on a virtual clock, with packets made here: checksums that still verify
// after the rewrite (odd lengths, UDP without a checksum), a small port range running out and
// coming back when mappings expire, what is not translated, and settings parsing. Its behaviour
// against real sockets is net-nat (test_nat.py).
#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "check.h"
#include "nat.h"

using namespace pcnet;

static uint32_t ip(const char *s)
{
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
}

static void put16(uint8_t *p, unsigned v)
{
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
static void put32(uint8_t *p, uint32_t v)
{
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}
static unsigned get16(const uint8_t *p)
{
  return unsigned(p[0]) << 8 | p[1];
}

// The one's-complement sum over bytes (odd length padded), folded.
static unsigned sum(const uint8_t *p, size_t n, uint32_t acc = 0)
{
  for (size_t i = 0; i + 1 < n; i += 2) acc += get16(p + i);
  if (n & 1) acc += unsigned(p[n - 1]) << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc;
}

// An IPv4 packet of PROTO (17 UDP, 6 TCP) with PAYLOAD bytes, checksums filled in (UDP: or 0).
static std::vector<uint8_t> packet(int proto, const char *src, unsigned sport, const char *dst,
                                   unsigned dport, size_t payload, bool udp_checksum = true)
{
  size_t l4 = proto == 6 ? 20 : 8, total = 20 + l4 + payload;
  std::vector<uint8_t> p(total, 0);
  p[0] = 0x45;
  put16(&p[2], unsigned(total));
  p[8] = 64;
  p[9] = uint8_t(proto);
  put32(&p[12], ip(src));
  put32(&p[16], ip(dst));
  put16(&p[10], ~sum(p.data(), 20) & 0xffff);
  uint8_t *t = &p[20];
  put16(t, sport);
  put16(t + 2, dport);
  if (proto == 17) put16(t + 4, unsigned(l4 + payload));
  if (proto == 6) t[12] = 0x50;
  for (size_t i = 0; i < payload; i++) t[l4 + i] = uint8_t(i * 7 + 3);
  if (proto == 17 && !udp_checksum) return p;
  uint8_t pseudo[12];
  std::copy(&p[12], &p[20], pseudo);
  pseudo[8] = 0;
  pseudo[9] = uint8_t(proto);
  put16(pseudo + 10, unsigned(l4 + payload));
  unsigned c = ~sum(t, l4 + payload, sum(pseudo, 12)) & 0xffff;
  put16(t + (proto == 6 ? 16 : 6), c ? c : 0xffff);
  return p;
}

// Do the IP and UDP/TCP checksums of P verify?
static bool verifies(const std::vector<uint8_t> &p)
{
  if (sum(p.data(), 20) != 0xffff) return false;
  int proto = p[9];
  const uint8_t *t = &p[20];
  size_t l4len = p.size() - 20;
  if (proto == 17 && get16(t + 6) == 0) return true;
  uint8_t pseudo[12];
  std::copy(&p[12], &p[20], pseudo);
  pseudo[8] = 0;
  pseudo[9] = uint8_t(proto);
  put16(pseudo + 10, unsigned(l4len));
  return sum(t, l4len, sum(pseudo, 12)) == 0xffff;
}

static Nat make(const char *settings)
{
  NatParams p;
  std::string err = apply_nat_settings(p, settings);
  if (!err.empty()) {
    std::fprintf(stderr, "settings %s: %s\n", settings, err.c_str());
    std::exit(1);
  }
  return Nat(p, 11);
}

static void checksums()
{
  Nat nat = make("type=cone ip=198.51.100.11");
  for (int proto : {17, 6})
    for (size_t payload : {0, 1, 2, 33, 1200}) {
      auto p = packet(proto, "192.168.1.10", 40000, "192.0.2.1", 3478, payload);
      CHECK(verifies(p), "made packet verifies");
      CHECK(nat.outbound(p.data(), p.size(), 0), "outbound proto %d", proto);
      CHECK(verifies(p), "outbound proto %d payload %zu: checksums verify", proto, payload);
      unsigned pub = get16(&p[20]); // the mapped source port
      auto r = packet(proto, "192.0.2.1", 3478, "198.51.100.11", pub, payload);
      CHECK(nat.inbound(r.data(), r.size(), 1), "inbound proto %d", proto);
      CHECK(verifies(r), "inbound proto %d payload %zu: checksums verify", proto, payload);
      CHECK(get16(&r[22]) == 40000 && r[16] == 192 && r[19] == 10, "back to 192.168.1.10:40000");
    }
  auto p = packet(17, "192.168.1.10", 40001, "192.0.2.1", 3478, 10, false);
  CHECK(nat.outbound(p.data(), p.size(), 0), "UDP without checksum");
  CHECK(get16(&p[26]) == 0 && verifies(p), "stays without a checksum, IP header verifies");
}

static void exhaustion()
{
  // Four ports: the fifth private socket gets none until a mapping times out (1 s).
  Nat nat = make("type=cone ip=198.51.100.11 ports=5000-5003 timeout=1");
  std::set<unsigned> ports;
  for (unsigned i = 0; i < 4; i++) {
    auto p = packet(17, "192.168.1.10", 40000 + i, "192.0.2.1", 3478, 10);
    CHECK(nat.outbound(p.data(), p.size(), 0), "socket %u mapped", i);
    ports.insert(get16(&p[20]));
  }
  CHECK(ports == (std::set<unsigned>{5000, 5001, 5002, 5003}), "the four ports of the range");
  auto p = packet(17, "192.168.1.10", 40009, "192.0.2.1", 3478, 10);
  CHECK(!nat.outbound(p.data(), p.size(), 500000000), "no port left");
  CHECK(nat.stats.ports_exhausted == 1, "counted");
  p = packet(17, "192.168.1.10", 40009, "192.0.2.1", 3478, 10);
  CHECK(nat.outbound(p.data(), p.size(), 2100000000), "after the timeout a port is free again");
  CHECK(nat.stats.expired == 4 && nat.live_mappings(2100000000) == 1, "expired %llu",
        (unsigned long long)nat.stats.expired);
}

static void untranslated()
{
  Nat nat = make("type=symmetric ip=198.51.100.11");
  auto icmp = packet(17, "192.168.1.10", 1, "192.0.2.1", 1, 8);
  icmp[9] = 1;
  CHECK(!nat.outbound(icmp.data(), icmp.size(), 0), "ICMP dropped");
  auto frag = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 8);
  frag[6] = 0x20; // more fragments
  CHECK(!nat.outbound(frag.data(), frag.size(), 0), "a fragment dropped");
  std::vector<uint8_t> v6(60, 0);
  v6[0] = 0x60;
  CHECK(!nat.outbound(v6.data(), v6.size(), 0), "IPv6 dropped");
  auto other = packet(17, "192.0.2.1", 3478, "203.0.113.22", 5000, 8);
  CHECK(!nat.inbound(other.data(), other.size(), 0), "inbound to another address dropped");
  CHECK(nat.stats.unsupported == 4, "all four counted: %llu",
        (unsigned long long)nat.stats.unsupported);
  auto short_len = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 8);
  CHECK(!nat.outbound(short_len.data(), 24, 0), "a truncated packet dropped");
}

// udp=block: UDP dropped both ways and counted, TCP translated as before.
static void udp_block()
{
  Nat nat = make("type=cone ip=198.51.100.11 udp=block");
  auto u = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 20);
  CHECK(!nat.outbound(u.data(), u.size(), 0), "outbound UDP dropped");
  auto in = packet(17, "192.0.2.1", 3478, "198.51.100.11", 40000, 20);
  CHECK(!nat.inbound(in.data(), in.size(), 0), "inbound UDP dropped");
  CHECK(nat.stats.blocked == 2 && nat.stats.mappings == 0, "both counted as blocked, no mapping");
  auto t = packet(6, "192.168.1.10", 40000, "192.0.2.1", 3478, 20);
  CHECK(nat.outbound(t.data(), t.size(), 0) && verifies(t), "TCP still translated");
  auto r = packet(6, "192.0.2.1", 3478, "198.51.100.11", get16(&t[20]), 20);
  CHECK(nat.inbound(r.data(), r.size(), 1) && get16(&r[22]) == 40000, "and its answer comes back");
  CHECK(describe_nat(nat.params).find("\"udp\":\"block\"") != std::string::npos, "described");
}

// flush(): the mapping is gone (its port answers nothing) and the next packet gets a new one.
static void flush()
{
  Nat nat = make("type=cone ip=198.51.100.11 ports=5000-5001");
  auto p = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 10);
  CHECK(nat.outbound(p.data(), p.size(), 0), "mapped");
  unsigned before = get16(&p[20]);
  CHECK(nat.flush() == 1 && nat.stats.flushed == 1 && nat.live_mappings(1) == 0, "flushed");
  auto r = packet(17, "192.0.2.1", 3478, "198.51.100.11", before, 10);
  CHECK(!nat.inbound(r.data(), r.size(), 2) && nat.stats.no_mapping == 1,
        "old port answers nothing");
  int moved = 0;
  for (int i = 0; i < 8; i++) { // random ports in 5000-5001: a new one turns up
    nat.flush();
    p = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 10);
    CHECK(nat.outbound(p.data(), p.size(), 3), "mapped again");
    moved += get16(&p[20]) != before;
  }
  CHECK(moved > 0, "a new mapping may take another port (%d of 8 did)", moved);
}

// flush(17): UDP mappings go, a TCP one stays and still translates both ways.
static void flush_udp()
{
  Nat nat = make("type=cone ip=198.51.100.11");
  auto u = packet(17, "192.168.1.10", 40000, "192.0.2.1", 3478, 10);
  auto t = packet(6, "192.168.1.10", 40001, "192.0.2.1", 443, 20);
  CHECK(nat.outbound(u.data(), u.size(), 0) && nat.outbound(t.data(), t.size(), 0), "mapped");
  unsigned udp_port = get16(&u[20]), tcp_port = get16(&t[20]);
  CHECK(nat.flush(17) == 1 && nat.stats.flushed == 1 && nat.live_mappings(1) == 1,
        "only the UDP mapping forgotten");
  auto ur = packet(17, "192.0.2.1", 3478, "198.51.100.11", udp_port, 10);
  CHECK(!nat.inbound(ur.data(), ur.size(), 2), "the UDP port answers nothing");
  auto tr = packet(6, "192.0.2.1", 443, "198.51.100.11", tcp_port, 20);
  CHECK(nat.inbound(tr.data(), tr.size(), 2) && get16(&tr[22]) == 40001, "TCP still gets in");
  t = packet(6, "192.168.1.10", 40001, "192.0.2.1", 443, 20);
  CHECK(nat.outbound(t.data(), t.size(), 3) && get16(&t[20]) == tcp_port && nat.stats.mappings == 2,
        "and out, on the same mapping");
  CHECK(nat.flush(6) == 1 && nat.live_mappings(4) == 0, "flush(6): the TCP one");
}

static void settings()
{
  NatParams p;
  CHECK(!apply_nat_settings(p, "type=cone").empty(), "no ip= is refused");
  CHECK(!apply_nat_settings(p, "type=full ip=1.2.3.4").empty(), "unknown type refused");
  CHECK(!apply_nat_settings(p, "ip=1.2.3.4 ports=9-3").empty(), "reversed range refused");
  CHECK(!apply_nat_settings(p, "ip=1.2.3.4 timeout=0").empty(), "zero timeout refused");
  CHECK(!apply_nat_settings(p, "ip=1.2.3 filter=port").empty(), "bad address refused");
  CHECK(!apply_nat_settings(p, "ip=1.2.3.4 udp=drop").empty(), "unknown udp= value refused");
  CHECK(apply_nat_settings(p, "type=symmetric ip=1.2.3.4 filter=address timeout=30").empty() &&
            p.mapping == NatMapping::AddressPortDependent &&
            p.filter == NatFilter::AddressDependent && p.udp_timeout_s == 30,
        "a valid line applies");
  CHECK(describe_nat(p).find("\"type\":\"symmetric\"") != std::string::npos, "described");
}

int main()
{
  checksums();
  exhaustion();
  untranslated();
  udp_block();
  flush();
  flush_udp();
  settings();
  if (net_check_failures()) return 1;
  std::puts("nat model: all checks passed");
  return 0;
}
