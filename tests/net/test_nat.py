#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pcnet-router's NAT (tests/net/nat.h) measured from outside with real sockets: a client in a
private namespace (192.168.1.10) behind the NAT, servers on the public side (192.0.2.1 and
192.0.2.2) that record the address each packet came from.

  cone       one private socket to four destinations: one public address and port for all
             (endpoint-independent mapping); replies come back; an unsolicited packet from an
             address or port the mapping has not sent to is dropped (port-restricted filter),
             and with filter=address a new port of a known address gets through
  symmetric  the same four destinations get four public ports (address-and-port-dependent
             mapping); each destination reaches only its own mapping
  timeout    timeout=1: traffic every 0.4 s keeps the mapping (same port, replies pass); after
             1.5 s idle a reply is dropped and the next packet opens a new mapping
  hairpin    a packet to the NAT's own public address is dropped (no hairpinning), and the
             private addresses are routed nowhere on the public side
  tcp        TCP through the NAT (the signaling connections use it): the server sees the
             public address, data flows both ways; a connection from outside is not let in
  udp_block  udp=block: UDP dropped both ways (and counted), TCP still translated
  flush      `nat flush` on the control socket: the old mapping answers nothing, a new one is made
  flush_udp  `nat flush udp` (UDP mappings timed out, a TCP connection through the NAT lives on):
             the UDP mapping is forgotten as with `nat flush`, the TCP connection still carries
             data both ways on its old mapping

Usage: test_nat.py [CASE ...]   (default: all)
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402

check = netlab.check
SERVERS = (netlab.PUBLIC_SERVER, "192.0.2.2")
PUBLIC = "198.51.100.11"
CLIENT = "192.168.1.10"


def udp(ns, addr, port=0):
    with netlab.InNetns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.5)
    return s


def recv(sock, timeout=0.5):
    """(data, sender) or None when nothing came within TIMEOUT s."""
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(2048)
    except socket.timeout:
        return None


class Bench:
    """One NAT of the given settings; servers on every (address, port) in DESTS."""

    def __init__(self, lab, nat, dests, timeout=None):
        self.pub = lab.public(SERVERS)
        self.side = lab.nat_side(self.pub, "a", nat, CLIENT, PUBLIC, timeout=timeout)
        self.client = udp(self.side.ns, CLIENT, 40000)
        self.servers = {d: udp(self.pub, *d) for d in dests}

    def send(self, dest, data=b"x"):
        """From the client to DEST: the (address, port) the server saw it from, or None."""
        self.client.sendto(data, dest)
        got = recv(self.servers[dest])
        return got[1] if got else None

    def reply(self, src, to, data=b"r"):
        """From server SRC to public endpoint TO: did the client get it (from SRC)?"""
        self.servers[src].sendto(data, to)
        got = recv(self.client)
        return bool(got) and got[1] == src

    def nat(self):
        return self.side.router.stats()["nat"]


DESTS = [(SERVERS[0], 5001), (SERVERS[0], 5002), (SERVERS[1], 5001), (SERVERS[1], 5003)]


def case_cone(lab):
    b = Bench(lab, "cone", DESTS + [(SERVERS[0], 5999)])
    seen = [b.send(d) for d in DESTS]
    check(all(s and s[0] == PUBLIC for s in seen), f"every server sees the public address: {seen}")
    check(len(set(seen)) == 1, f"one mapping for every destination (endpoint-independent): {seen[0]}")
    mapped = seen[0]
    print(f"  private {CLIENT}:40000 -> public {mapped[0]}:{mapped[1]}")
    check(all(b.reply(d, mapped) for d in DESTS), "each destination's reply reaches the client")
    # Port-restricted: the known address from a port the mapping never sent to is dropped.
    check(not b.reply((SERVERS[0], 5999), mapped),
          f"{SERVERS[0]}:5999 (never sent to) is filtered")
    st = b.nat()
    check(st["stats"]["filtered"] == 1 and st["stats"]["mappings"] == 1,
          f"the NAT counted 1 mapping, 1 filtered: {st['stats']}")
    # Nothing goes to a public port without a mapping.
    check(not b.reply(DESTS[0], (PUBLIC, mapped[1] ^ 1)), "a port with no mapping: dropped")


def case_cone_address(lab):
    b = Bench(lab, "type=cone filter=address", DESTS[:1] + [(SERVERS[0], 5999), (SERVERS[1], 5999)])
    mapped = b.send(DESTS[0])
    check(b.reply((SERVERS[0], 5999), mapped), "filter=address: a new port of a known address passes")
    check(not b.reply((SERVERS[1], 5999), mapped), "an address never sent to is filtered")


def case_symmetric(lab):
    b = Bench(lab, "symmetric", DESTS)
    seen = [b.send(d) for d in DESTS]
    check(all(s and s[0] == PUBLIC for s in seen), f"every server sees the public address: {seen}")
    check(len(set(seen)) == len(DESTS),
          f"a mapping per destination (address-and-port-dependent): ports {[s[1] for s in seen]}")
    again = [b.send(d) for d in DESTS]
    check(again == seen, "the same destination keeps its mapping")
    check(all(b.reply(d, s) for d, s in zip(DESTS, seen)), "each destination's reply arrives")
    # What a STUN server tells a peer (its mapping toward the server) is useless to anyone else.
    check(not b.reply(DESTS[1], seen[0]), "another destination cannot use the first one's mapping")
    st = b.nat()["stats"]
    check(st["mappings"] == 4 and st["filtered"] == 1, f"4 mappings, 1 filtered: {st}")


def case_timeout(lab):
    b = Bench(lab, "cone", DESTS[:1], timeout=1)
    first = b.send(DESTS[0])
    later = []
    for _ in range(6):  # 2.4 s of traffic, every 0.4 s: each packet refreshes the mapping
        time.sleep(0.4)
        later.append(b.send(DESTS[0]))
    check(set(later) == {first}, f"refreshed by outbound traffic, the mapping stays {first}")
    check(b.reply(DESTS[0], first), "its replies still pass after 2.4 s")
    time.sleep(1.5)
    check(not b.reply(DESTS[0], first), "after 1.5 s idle (timeout=1) the reply is dropped")
    b.send(DESTS[0])
    st = b.nat()["stats"]
    check(st["expired"] >= 1 and st["mappings"] == 2 and st["no_mapping"] >= 1,
          f"the mapping expired and a new one was made: {st}")


def case_hairpin(lab):
    b = Bench(lab, "cone", DESTS[:1])
    mapped = b.send(DESTS[0])
    other = udp(b.side.ns, CLIENT, 40001)
    other.sendto(b"hairpin", mapped)
    check(recv(b.client) is None, "a packet to the NAT's own public address does not come back")
    check(b.nat()["stats"]["hairpin"] == 1, "and the NAT counted it as hairpin")
    # A private address means nothing on the public side: no route there.
    probe = udp(b.pub, SERVERS[0], 0)
    try:
        probe.sendto(b"in", (CLIENT, 40000))
        why = "sent"
    except OSError as e:
        why = e.strerror
    check(recv(b.client) is None, f"{CLIENT} is not reachable from the public side ({why})")


def case_tcp(lab):
    pub = lab.public(SERVERS)
    side = lab.nat_side(pub, "a", "cone", CLIENT, PUBLIC)
    with netlab.InNetns(pub):
        srv = socket.socket()
    srv.bind((SERVERS[0], 7000))
    srv.listen()
    srv.settimeout(3)
    with netlab.InNetns(side.ns):
        cli = socket.socket()
    cli.settimeout(3)
    cli.connect((SERVERS[0], 7000))
    conn, peer = srv.accept()
    check(peer[0] == PUBLIC, f"the server sees {peer[0]}:{peer[1]}")
    conn.sendall(b"x" * 100000)
    got = b""
    while len(got) < 100000:
        chunk = cli.recv(65536)
        if not chunk:
            break
        got += chunk
    cli.sendall(b"done")
    check(len(got) == 100000 and conn.recv(10) == b"done", "100 kB down and an answer up")
    with netlab.InNetns(pub):
        out = socket.socket()
    out.settimeout(1)
    try:
        out.connect((PUBLIC, peer[1]))  # the live mapping, from a port it never sent to
        ok = True
    except OSError:
        ok = False
    check(not ok, "a connection from outside to the live mapping is not let in")
    check(side.router.stats()["nat"]["stats"]["filtered"] >= 1, "the NAT filtered its SYN")


def tcp_through(b):
    """A TCP connection from B's inside host to the first public server, through the NAT:
    (listening socket, client socket, accepted socket, the address the server saw)."""
    with netlab.InNetns(b.pub):
        srv = socket.socket()
    srv.bind((SERVERS[0], 7000))
    srv.listen()
    srv.settimeout(3)
    with netlab.InNetns(b.side.ns):
        cli = socket.socket()
    cli.settimeout(3)
    cli.connect((SERVERS[0], 7000))
    conn, peer = srv.accept()
    return srv, cli, conn, peer


def case_udp_block(lab):
    # A corporate network letting TCP out only: no UDP leaves, TCP is translated as before.
    b = Bench(lab, "cone udp=block", DESTS[:1])
    check(b.send(DESTS[0]) is None, "a UDP packet to a public server does not arrive")
    b.servers[DESTS[0]].sendto(b"r", (PUBLIC, 40000))
    check(recv(b.client) is None, "nor does one from outside")
    srv, cli, conn, peer = tcp_through(b)
    conn.sendall(b"pong")
    check(peer[0] == PUBLIC and cli.recv(10) == b"pong", f"TCP gets through, from {peer[0]}")
    st = b.nat()
    protos = {m["proto"] for m in st["mappings"]}
    check(st["stats"]["blocked"] == 2 and protos == {"tcp"} and st["params"]["udp"] == "block",
          f"2 UDP packets counted as blocked, only a TCP mapping: {st['stats']}, {protos}")


def case_flush(lab):
    # `nat flush` (a rebooted router): the old mapping answers nothing, the next packet maps anew.
    b = Bench(lab, "cone", DESTS[:1])
    old = b.send(DESTS[0])
    reply = b.side.router.command("nat flush")
    check(reply == "ok 1", f"one mapping forgotten: {reply}")
    check(not b.reply(DESTS[0], old), f"a reply to the old mapping {old[1]} is dropped")
    new = b.send(DESTS[0])
    st = b.nat()["stats"]
    check(new and new[0] == PUBLIC and st["flushed"] == 1 and st["mappings"] == 2
          and st["no_mapping"] == 1, f"the next packet gets a new mapping ({new}): {st}")
    check(b.reply(DESTS[0], new), "and its reply gets in")


def case_flush_udp(lab):
    b = Bench(lab, "cone", DESTS[:1])
    old = b.send(DESTS[0])
    srv, cli, conn, peer = tcp_through(b)
    conn.settimeout(3)
    reply = b.side.router.command("nat flush udp")
    check(reply == "ok 1", f"one mapping (the UDP one) forgotten: {reply}")
    check(not b.reply(DESTS[0], old), f"a reply to the old UDP mapping {old[1]} is dropped")
    cli.sendall(b"ping")
    conn.sendall(b"pong")
    check(conn.recv(10) == b"ping" and cli.recv(10) == b"pong", "the TCP connection lives on")
    st = b.nat()
    tcp = [m for m in st["mappings"] if m["proto"] == "tcp"]
    check(len(tcp) == 1 and tcp[0]["public"] == f"{PUBLIC}:{peer[1]}",
          f"on its old mapping {peer[1]}: {tcp}")
    new = b.send(DESTS[0])
    check(new and new[0] == PUBLIC and b.reply(DESTS[0], new), f"UDP maps anew ({new}) and works")
    check(b.side.router.command("nat flush sctp").startswith("error:"), "unknown protocol refused")


def main():
    names = sys.argv[1:] or ["cone", "cone_address", "symmetric", "timeout", "hairpin", "tcp",
                             "udp_block", "flush", "flush_udp"]
    return netlab.run_cases(globals(), names)


if __name__ == "__main__":
    sys.exit(main())
