// SPDX-License-Identifier: LGPL-2.1-or-later
// The NAT of pcnet-router, with no I/O: IPv4 UDP and TCP packets from the private side get the
// public address and a mapped port, packets to the public address get the private one back
// when the mapping exists and its filter lets them in (RFC 4787 terms):
//   mapping: endpoint-independent ("cone": one public port per private address and port) or
//            address-and-port-dependent ("symmetric": one per private endpoint and destination)
//   filter:  endpoint-independent (none), address-dependent, or address-and-port-dependent
//            (only from where the mapping has sent to; the default, "port-restricted")
// A mapping and each of its permissions live `timeout` seconds after the last outbound packet
// (inbound packets do not refresh them). No hairpinning: a packet from the private side to the
// public address is dropped. Anything else (ICMP, IPv6, fragments) is dropped and counted.
// udp=block drops all UDP both ways, as a corporate firewall that lets only TCP out does.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>

namespace pcnet {

enum class NatMapping { EndpointIndependent, AddressPortDependent };
enum class NatFilter { EndpointIndependent, AddressDependent, AddressPortDependent };

struct NatParams {
  bool enabled = false;
  uint32_t public_ip = 0; // host byte order
  NatMapping mapping = NatMapping::EndpointIndependent;
  NatFilter filter = NatFilter::AddressPortDependent;
  double udp_timeout_s = 120;  // RFC 4787 REQ-5: at least 2 min
  double tcp_timeout_s = 7440; // RFC 5382 REQ-5: at least 2 h 4 min
  uint16_t port_min = 1024, port_max = 65535;
  bool block_udp = false;
};

// "type=cone|symmetric ip=A.B.C.D filter=none|address|port timeout=S tcp-timeout=S ports=LO-HI
// udp=pass|block".
// Returns "" or the reason the text is invalid.
std::string apply_nat_settings(NatParams &p, const std::string &text);
std::string describe_nat(const NatParams &p);

struct NatStats {
  uint64_t out = 0, in = 0; // translated
  uint64_t mappings = 0;    // created
  uint64_t expired = 0;     // mappings that timed out
  uint64_t filtered = 0;    // inbound to a live mapping from an endpoint not allowed
  uint64_t no_mapping = 0;  // inbound to a public port with no (live) mapping
  uint64_t hairpin = 0;     // outbound to our own public address
  uint64_t unsupported = 0; // not IPv4 UDP/TCP, fragments, truncated, not to our address
  uint64_t ports_exhausted = 0;
  uint64_t blocked = 0; // UDP dropped by udp=block, either way
  uint64_t flushed = 0; // mappings forgotten by flush()
};

class Nat {
public:
  Nat(const NatParams &p, uint64_t seed) : params(p), rng_(seed) {}
  NatParams params;
  NatStats stats;
  // Rewrite the IPv4 packet in place (addresses, ports, checksums); false: drop it.
  bool outbound(uint8_t *pkt, size_t len, int64_t now_ns);
  bool inbound(uint8_t *pkt, size_t len, int64_t now_ns);
  // {"params":..., "stats":..., "mappings":[{proto, private, public, remotes:[...]}]}
  std::string json(int64_t now_ns);
  size_t live_mappings(int64_t now_ns);
  // Forgets every mapping of PROTO (6 TCP, 17 UDP; 0: all, as a rebooted NAT), or a NAT that
  // timed out its UDP mappings while TCP ones live on: later packets get new public ports.
  // Returns how many there were (counted in stats.flushed).
  size_t flush(uint8_t proto = 0);

private:
  struct Mapping {
    uint8_t proto;
    uint32_t priv_ip;
    uint16_t priv_port, pub_port;
    int64_t last_out;
    std::map<std::pair<uint32_t, uint16_t>, int64_t> remotes; // where it sent to, and when
  };
  // (proto, private ip, private port, remote ip, remote port): remote zero for cone mappings.
  using Key = std::tuple<uint8_t, uint32_t, uint16_t, uint32_t, uint16_t>;
  std::map<Key, Mapping> by_private_;
  std::map<std::pair<uint8_t, uint16_t>, Key> by_public_;
  std::mt19937_64 rng_;
  int64_t last_sweep_ = 0;

  int64_t timeout_ns(uint8_t proto) const;
  void sweep(int64_t now_ns);
  bool allocate(uint8_t proto, uint16_t *port);
};

} // namespace pcnet
