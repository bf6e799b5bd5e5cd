// SPDX-License-Identifier: LGPL-2.1-or-later
#include "nat.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

namespace pcnet {

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17;

uint16_t get16(const uint8_t *p)
{
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t *p)
{
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void put16(uint8_t *p, uint16_t v)
{
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void put32(uint8_t *p, uint32_t v)
{
  put16(p, uint16_t(v >> 16));
  put16(p + 2, uint16_t(v));
}

uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
  for (size_t i = 0; i + 1 < n; i += 2) acc += get16(p + i);
  if (n & 1) acc += uint32_t(p[n - 1]) << 8;
  return acc;
}
uint16_t fold(uint32_t acc)
{
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(~acc);
}

std::string ip_str(uint32_t ip)
{
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                ip & 255);
  return buf;
}

// A parsed IPv4 UDP/TCP packet: where its fields are.
struct View {
  uint8_t *pkt;
  size_t len, ihl;
  uint8_t proto;
  uint32_t src, dst;
  uint16_t sport, dport;
};

bool parse(uint8_t *pkt, size_t len, View *v)
{
  if (len < 20 || (pkt[0] >> 4) != 4) return false;
  size_t ihl = size_t(pkt[0] & 15) * 4, total = get16(pkt + 2);
  if (ihl < 20 || total < ihl || total > len) return false;
  if (get16(pkt + 6) & 0x3fff) return false; // a fragment: no ports in most of them
  uint8_t proto = pkt[9];
  size_t need = proto == kTcp ? 20 : 8;
  if ((proto != kTcp && proto != kUdp) || total < ihl + need) return false;
  *v = {pkt,
        total,
        ihl,
        proto,
        get32(pkt + 12),
        get32(pkt + 16),
        get16(pkt + ihl),
        get16(pkt + ihl + 2)};
  return true;
}

// Writes the new addresses and ports and recomputes the IP and UDP/TCP checksums.
void rewrite(View &v, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport)
{
  uint8_t *ip = v.pkt, *l4 = v.pkt + v.ihl;
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(l4, sport);
  put16(l4 + 2, dport);
  put16(ip + 10, 0);
  put16(ip + 10, fold(sum16(ip, v.ihl, 0)));
  size_t l4len = v.len - v.ihl, csum_at = v.proto == kTcp ? 16 : 6;
  if (v.proto == kUdp && get16(l4 + 6) == 0) return; // sent without a checksum: keep it so
  put16(l4 + csum_at, 0);
  uint8_t pseudo[12];
  put32(pseudo, src);
  put32(pseudo + 4, dst);
  pseudo[8] = 0;
  pseudo[9] = v.proto;
  put16(pseudo + 10, uint16_t(l4len));
  uint16_t c = fold(sum16(l4, l4len, sum16(pseudo, 12, 0)));
  if (v.proto == kUdp && c == 0) c = 0xffff;
  put16(l4 + csum_at, c);
}

bool parse_seconds(const std::string &s, double *out)
{
  char *end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end || !(v > 0)) return false;
  *out = v;
  return true;
}

} // namespace

std::string apply_nat_settings(NatParams &p, const std::string &text)
{
  NatParams n = p;
  n.enabled = true;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos) return "expected key=value, got '" + word + "'";
    std::string key = word.substr(0, eq), val = word.substr(eq + 1);
    bool ok = true;
    if (key == "type") {
      if (val == "cone")
        n.mapping = NatMapping::EndpointIndependent;
      else if (val == "symmetric")
        n.mapping = NatMapping::AddressPortDependent;
      else
        ok = false;
    } else if (key == "filter") {
      if (val == "none")
        n.filter = NatFilter::EndpointIndependent;
      else if (val == "address")
        n.filter = NatFilter::AddressDependent;
      else if (val == "port")
        n.filter = NatFilter::AddressPortDependent;
      else
        ok = false;
    } else if (key == "ip") {
      in_addr a{};
      ok = inet_pton(AF_INET, val.c_str(), &a) == 1;
      n.public_ip = ntohl(a.s_addr);
    } else if (key == "timeout")
      ok = parse_seconds(val, &n.udp_timeout_s);
    else if (key == "tcp-timeout")
      ok = parse_seconds(val, &n.tcp_timeout_s);
    else if (key == "ports") {
      unsigned lo = 0, hi = 0;
      char dash = 0, extra = 0;
      ok = std::sscanf(val.c_str(), "%u%c%u%c", &lo, &dash, &hi, &extra) == 3 && dash == '-' &&
          lo >= 1 && lo <= hi && hi <= 65535;
      n.port_min = uint16_t(lo);
      n.port_max = uint16_t(hi);
    } else if (key == "udp") {
      ok = val == "pass" || val == "block";
      n.block_udp = val == "block";
    } else
      return "unknown NAT setting '" + key +
          "' (type, ip, filter, timeout, tcp-timeout, ports, udp)";
    if (!ok) return "bad value for " + key + ": '" + val + "'";
  }
  if (n.public_ip == 0) return "the NAT needs its public address: ip=A.B.C.D";
  p = n;
  return {};
}

std::string describe_nat(const NatParams &p)
{
  static const char *filters[] = {"none", "address", "port"};
  char buf[220];
  std::snprintf(buf, sizeof buf,
                "{\"type\":\"%s\",\"ip\":\"%s\",\"filter\":\"%s\",\"timeout\":%g,"
                "\"tcp_timeout\":%g,\"ports\":\"%u-%u\",\"udp\":\"%s\"}",
                p.mapping == NatMapping::EndpointIndependent ? "cone" : "symmetric",
                ip_str(p.public_ip).c_str(), filters[int(p.filter)], p.udp_timeout_s,
                p.tcp_timeout_s, p.port_min, p.port_max, p.block_udp ? "block" : "pass");
  return buf;
}

int64_t Nat::timeout_ns(uint8_t proto) const
{
  return int64_t((proto == kTcp ? params.tcp_timeout_s : params.udp_timeout_s) * 1e9);
}

void Nat::sweep(int64_t now_ns)
{
  for (auto it = by_private_.begin(); it != by_private_.end();) {
    Mapping &m = it->second;
    int64_t limit = timeout_ns(m.proto);
    if (now_ns - m.last_out > limit) {
      stats.expired++;
      by_public_.erase({m.proto, m.pub_port});
      it = by_private_.erase(it);
      continue;
    }
    for (auto r = m.remotes.begin(); r != m.remotes.end();)
      r = now_ns - r->second > limit ? m.remotes.erase(r) : std::next(r);
    ++it;
  }
  last_sweep_ = now_ns;
}

size_t Nat::live_mappings(int64_t now_ns)
{
  sweep(now_ns);
  return by_private_.size();
}

size_t Nat::flush(uint8_t proto)
{
  size_t n = 0;
  for (auto it = by_private_.begin(); it != by_private_.end();) {
    if (proto && it->second.proto != proto) {
      ++it;
      continue;
    }
    by_public_.erase({it->second.proto, it->second.pub_port});
    it = by_private_.erase(it);
    n++;
  }
  stats.flushed += n;
  return n;
}

bool Nat::allocate(uint8_t proto, uint16_t *port)
{
  unsigned span = unsigned(params.port_max) - params.port_min + 1;
  // Random ports, as carrier NATs give them; then a scan so that a full range is found out.
  for (int i = 0; i < 64; i++) {
    uint16_t p = uint16_t(params.port_min + rng_() % span);
    if (!by_public_.count({proto, p})) {
      *port = p;
      return true;
    }
  }
  for (unsigned i = 0; i < span; i++) {
    uint16_t p = uint16_t(params.port_min + i);
    if (!by_public_.count({proto, p})) {
      *port = p;
      return true;
    }
  }
  return false;
}

bool Nat::outbound(uint8_t *pkt, size_t len, int64_t now_ns)
{
  View v;
  if (!parse(pkt, len, &v)) {
    stats.unsupported++;
    return false;
  }
  if (v.proto == kUdp && params.block_udp) {
    stats.blocked++;
    return false;
  }
  if (v.dst == params.public_ip) { // hairpinning is not offered
    stats.hairpin++;
    return false;
  }
  if (now_ns - last_sweep_ > 1000000000) sweep(now_ns);
  bool cone = params.mapping == NatMapping::EndpointIndependent;
  Key key{v.proto, v.src, v.sport, cone ? 0 : v.dst, cone ? uint16_t(0) : v.dport};
  auto it = by_private_.find(key);
  if (it != by_private_.end() && now_ns - it->second.last_out > timeout_ns(v.proto)) {
    stats.expired++;
    by_public_.erase({v.proto, it->second.pub_port});
    by_private_.erase(it);
    it = by_private_.end();
  }
  if (it == by_private_.end()) {
    uint16_t port;
    if (!allocate(v.proto, &port)) {
      stats.ports_exhausted++;
      return false;
    }
    it = by_private_.emplace(key, Mapping{v.proto, v.src, v.sport, port, now_ns, {}}).first;
    by_public_[{v.proto, port}] = key;
    stats.mappings++;
  }
  Mapping &m = it->second;
  m.last_out = now_ns;
  m.remotes[{v.dst, v.dport}] = now_ns;
  rewrite(v, params.public_ip, m.pub_port, v.dst, v.dport);
  stats.out++;
  return true;
}

bool Nat::inbound(uint8_t *pkt, size_t len, int64_t now_ns)
{
  View v;
  if (!parse(pkt, len, &v) || v.dst != params.public_ip) {
    stats.unsupported++;
    return false;
  }
  if (v.proto == kUdp && params.block_udp) {
    stats.blocked++;
    return false;
  }
  auto pub = by_public_.find({v.proto, v.dport});
  auto it = pub == by_public_.end() ? by_private_.end() : by_private_.find(pub->second);
  int64_t limit = timeout_ns(v.proto);
  if (it == by_private_.end() || now_ns - it->second.last_out > limit) {
    stats.no_mapping++;
    return false;
  }
  Mapping &m = it->second;
  bool allowed = params.filter == NatFilter::EndpointIndependent;
  for (auto &[remote, when] : m.remotes) {
    if (allowed) break;
    if (now_ns - when > limit || remote.first != v.src) continue;
    allowed = params.filter == NatFilter::AddressDependent || remote.second == v.sport;
  }
  // A symmetric mapping belongs to one destination: only it may answer, whatever the filter.
  if (params.mapping == NatMapping::AddressPortDependent &&
      (std::get<3>(it->first) != v.src || std::get<4>(it->first) != v.sport))
    allowed = false;
  if (!allowed) {
    stats.filtered++;
    return false;
  }
  rewrite(v, v.src, v.sport, m.priv_ip, m.priv_port);
  stats.in++;
  return true;
}

std::string Nat::json(int64_t now_ns)
{
  sweep(now_ns);
  std::ostringstream o;
  const auto &s = stats;
  o << "{\"params\":" << describe_nat(params) << ",\"stats\":{\"out\":" << s.out
    << ",\"in\":" << s.in << ",\"mappings\":" << s.mappings << ",\"expired\":" << s.expired
    << ",\"filtered\":" << s.filtered << ",\"no_mapping\":" << s.no_mapping
    << ",\"hairpin\":" << s.hairpin << ",\"unsupported\":" << s.unsupported
    << ",\"ports_exhausted\":" << s.ports_exhausted << ",\"blocked\":" << s.blocked
    << ",\"flushed\":" << s.flushed << "},\"mappings\":[";
  bool first = true;
  for (auto &[key, m] : by_private_) {
    o << (first ? "" : ",") << "{\"proto\":\"" << (m.proto == kTcp ? "tcp" : "udp")
      << "\",\"private\":\"" << ip_str(m.priv_ip) << ":" << m.priv_port << "\",\"public\":\""
      << ip_str(params.public_ip) << ":" << m.pub_port << "\",\"remotes\":[";
    bool f2 = true;
    for (auto &[r, when] : m.remotes) {
      o << (f2 ? "" : ",") << "\"" << ip_str(r.first) << ":" << r.second << "\"";
      f2 = false;
    }
    o << "]}";
    first = false;
  }
  o << "]}";
  return o.str();
}

} // namespace pcnet
