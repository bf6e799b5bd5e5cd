#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ICE across NAT (issue 13): rtcpeers in a (192.168.1.10) and b (192.168.1.20), each behind a
NAT of pcnet-router's own (public 198.51.100.11 and 203.0.113.22), coturn (STUN and TURN) and the
signaling daemon at 192.0.2.1 on the public side. The points counter stream goes from a to b.

  cone            both NATs cone (endpoint-independent mapping, port-restricted filtering), both
                  rtcpeers with stun-server: every message arrives byte-identical and in order,
                  and the selected candidate pair (rtcpeer-ice-pair, from webrtcbin's stats) is
                  server-reflexive on both ends: the NATs' public addresses, neither host nor relay
  cone_nostun     the same NATs without stun-server: only host candidates, which the other side
                  cannot reach: "ICE failed" within ICE_FAIL_BOUND s, nothing delivered
  symmetric       both NATs symmetric (a mapping per destination), stun-server only: the
                  server-reflexive candidates are mappings toward the STUN server that the other
                  peer cannot use: "no candidate pair works" within ICE_FAIL_BOUND s, no hang
  cone_symmetric  a cone NAT (a home router) and a symmetric one (LTE), stun-server only: no pair
                  works either ("no candidate pair works"): such a pair needs TURN
  symmetric_turn  the same NATs with turn-server: every message arrives through the relay, and
                  the selected pair is a relay candidate
  turn_v6         TURN over IPv6 only (coturn on ULA addresses, the peers reach only it): an
                  RFC 6156 server refuses libnice's allocation (440: it asks for no address family,
                  so IPv4, and there is none), said in a warning; with coturn's
                  allocation-default-address-family=keep every message arrives over IPv6 relays
  cone_browser    the viewer page in headless Chromium (?stun=) behind one cone NAT, rtcpeer's
                  video from behind the other: the page plays it, over the NATs' mappings
  cone_video      the ball loop (video a -> b, detections back) through the cone NATs with STUN:
                  scored as through one plain router, over a server-reflexive pair

Usage: test_natice.py CASE...
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loops  # noqa: E402
import netlab  # noqa: E402
from test_ifdown import browser_missing  # noqa: E402

check = netlab.check
N = 40
# From the sender's start: the receiver's rtcpeer is already registered, the sender gathers
# (host, srflx; STUN answers within milliseconds here) and libnice gives up on its checks after
# its retransmissions: 7.5-10.5 s in our runs (test_smoke's turn_nopath measures the same).
ICE_FAIL_BOUND = 20


def ice_pairs(lab, log):
    """The rtcpeer-ice-pair messages gst-launch -m printed into LOG: [{peer-id, local-type, ...}]."""
    out = []
    for line in lab.read_log(log).splitlines():
        if "rtcpeer-ice-pair" in line:
            fields = re.findall(r"([\w-]+)=\(string\)\"?([^,\";]+)", line)
            out.append({k: v.replace("\\", "") for k, v in fields})  # gst escapes [ and ]
    return out


def stream(lab, net, props, n=N, timeout=60):
    return loops.points_stream(lab, net, n=n, rate=20, points=50, timeout=timeout,
                               sender_props=props, receiver_props=props, messages=True)


def selected(lab, r):
    tx, rx = ice_pairs(lab, r["tx_log_name"]), ice_pairs(lab, r["rx_log_name"])
    check(len(tx) == 1 and len(rx) == 1, f"each side reported its selected pair once: {tx} {rx}")
    print(f"  a: {tx[0]}\n  b: {rx[0]}")
    return tx[0], rx[0]


def delivered(r, how):
    check(r["tx_rc"] == 0, f"sender exited {r['tx_rc']}: {r['tx_problems']}")
    check(r["delivered"] == N and r["intact"] and r["in_order"],
          f"{how}: {r['delivered']}/{N} points messages, byte-identical, in order")


def nat_counts(net):
    return {side: getattr(net, "nat_" + side).stats()["nat"]["stats"] for side in ("a", "b")}


def case_cone(lab):
    net = lab.nat_pair("cone", "cone")
    r = stream(lab, net, f"stun-server={net.stun}")
    delivered(r, "through two cone NATs with STUN")
    tx, rx = selected(lab, r)
    reflexive = {"srflx", "prflx"}
    for me, peer, mine, theirs in ((tx, rx, net.public_a, net.public_b),
                                  (rx, tx, net.public_b, net.public_a)):
        check(me["local-type"] in reflexive and me["remote-type"] in reflexive,
              f"{me['peer-id']}: local {me['local-type']}, remote {me['remote-type']}: "
              "server-reflexive, not host, not relay")
        check(me["local-address"].startswith(mine + ":") and
              me["remote-address"].startswith(theirs + ":"),
              f"{me['peer-id']}: {me['local-address']} -> {me['remote-address']}: the NATs' "
              "public addresses")
    # Each pair's ends are the same two mappings seen from both sides.
    check(tx["local-address"] == rx["remote-address"] and tx["remote-address"] == rx["local-address"],
          "both sides name the same pair")
    print(f"  NAT counters: {nat_counts(net)}")
    check("ALLOCATE" not in lab.read_log("turnserver"), "no TURN allocation was made")


def ice_fails(lab, net, props):
    """rtcpeers in a (sending points) and b that cannot connect: the sender must say so within
    ICE_FAIL_BOUND s of the receiver's start and keep running; returns the seconds it took."""
    uri_a, uri_b = loops.signaling(lab, net)
    env = {"POINTCAST_ROOM": "fails"}
    rx = lab.popen(net.b, ["gst-launch-1.0", "-e", "-m", "rtcpeer", "name=rtc", *props.split(),
                           "rtc.data_points", "!", "fakesink"],
                   log="rx", env=dict(env, POINTCAST_PEER_ID="points-rx", POINTCAST_SIGNALING=uri_b))
    t0 = time.monotonic()
    time.sleep(1.0)
    tx = lab.popen(net.a, ["gst-launch-1.0", "-e", "-m", "pointsrc", "pattern=counter", "rate=20",
                           "points=50", "!", "npypack", "!", "rtc.data_points", "rtcpeer", "name=rtc",
                           "wait-for-peers=1", *props.split()],
                   log="tx", env=dict(env, POINTCAST_PEER_ID="points-tx", POINTCAST_SIGNALING=uri_a))
    loops.wait_for(lab, "tx", r"ICE failed with peer 'points-rx'", ICE_FAIL_BOUND, (tx, rx))
    took = time.monotonic() - t0
    log = lab.read_log("tx")
    check("no candidate pair works" in log, "the sender says 'no candidate pair works'")
    check(took <= ICE_FAIL_BOUND,
          f"ICE failed {took:.1f} s after the receiver started (bound {ICE_FAIL_BOUND} s)")
    time.sleep(0.5)
    check(tx.poll() is None, "the sender goes on (only that peer is removed)")
    check("rtcpeer-session-created" in log and "rtcpeer-peer-connected" not in log
          and "rtcpeer-peer-connected" not in lab.read_log("rx"),
          "a session was made and removed, and neither side ever connected")
    return took


def case_cone_nostun(lab):
    net = lab.nat_pair("cone", "cone", turn=False)
    ice_fails(lab, net, "")


def case_symmetric(lab):
    net = lab.nat_pair("symmetric", "symmetric")
    ice_fails(lab, net, f"stun-server={net.stun}")
    # The failure is the NATs', not a missing candidate: a's checks went to b's server-reflexive
    # address (a mapping of a's NAT toward it) and b's NAT filtered what arrived from a.
    stun = f"{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}"
    b_srflx = [m["public"] for m in net.nat_b.stats()["nat"]["mappings"]
               if m["proto"] == "udp" and stun in m["remotes"]]
    toward = [m for m in net.nat_a.stats()["nat"]["mappings"]
              if m["proto"] == "udp" and set(b_srflx) & set(m["remotes"])]
    check(b_srflx and toward,
          f"a's checks went to b's server-reflexive address {b_srflx} (b's NAT's mapping toward "
          f"the STUN server), from a mapping of a's NAT of its own: {toward[:1]}")
    counts = nat_counts(net)
    check(counts["b"]["filtered"] > 0 and counts["a"]["filtered"] > 0,
          f"and each NAT filtered the other's checks: {counts}")


def case_cone_symmetric(lab):
    # A home router on one side, an LTE carrier's NAT on the other: b's checks leave from new
    # mappings that a's port-restricted NAT has never sent to, and a's checks go to b's mapping
    # toward the STUN server, which b's NAT keeps for the server alone.
    net = lab.nat_pair("cone", "symmetric")
    ice_fails(lab, net, f"stun-server={net.stun}")
    counts = nat_counts(net)
    check(counts["a"]["filtered"] > 0 and counts["b"]["filtered"] > 0,
          f"each NAT filtered the other's checks: {counts}")


def case_symmetric_turn(lab):
    net = lab.nat_pair("symmetric", "symmetric")
    r = stream(lab, net, f"stun-server={net.stun} turn-server={netlab.turn_uri(netlab.PUBLIC_SERVER)}")
    delivered(r, "through two symmetric NATs with TURN")
    tx, rx = selected(lab, r)
    for me in (tx, rx):
        check("relay" in (me["local-type"], me["remote-type"]),
              f"{me['peer-id']}: local {me['local-type']} {me['local-address']}, remote "
              f"{me['remote-type']} {me['remote-address']}: through the relay")
    peers = set(re.findall(r"peer (\d+\.\d+\.\d+\.\d+) lifetime updated", lab.read_log("turnserver")))
    check(peers, f"coturn opened permissions for {sorted(peers)}")


def case_cone_video(lab):
    net = lab.nat_pair("cone", "cone")
    stun = f"role=auto stun-server={net.stun}"
    r = loops.ball_loop(lab, net, seconds=6, sender_replace=[("role=auto", stun)],
                        tracker_replace=[("role=auto", stun)], messages=True)
    print("\n".join(line for line in r["report"].splitlines() if not line.startswith("Got message")))
    # The same bounds as net-smoke-ball (the loop through one router): NATs add no loss.
    check(r["pct"] >= 90, f"{r['pct']} % of the frames sent were scored")
    check(r["outliers"] == 0 and r["err_p99"] <= 1.0, f"error p99 {r['err_p99']} px, no outliers")
    check(r["lat_p50"] <= 30, f"latency p50 {r['lat_p50']} ms")
    tx = ice_pairs(lab, r["sender_log"])
    check(tx and tx[0]["local-type"] in ("srflx", "prflx") and tx[0]["remote-type"] in ("srflx", "prflx"),
          f"the video goes over a server-reflexive pair: {tx}")


def case_turn_v6(lab):
    # An RFC 6156 server gives an IPv4 relay unless asked otherwise, and has none here.
    net = lab.turn_only_v6(keep_family=False)
    r = loops.points_stream(lab, net, n=10, rate=20, points=50, timeout=15,
                            sender_props="turn-server=" + netlab.turn_uri(net.turn_a),
                            receiver_props="turn-server=" + netlab.turn_uri(net.turn_b))
    told = [w for w in r["tx_problems"] if "TURN server turn://[fd99:1::1]:3478 gave no relay"
            in w and "440 Unsupported address family" in w]
    check(r["delivered"] == 0 and told, f"without an IPv4 relay the warning says why: {told}")
    with netlab.Lab() as lab2:  # a lab of its own: the same addresses, daemon and coturn log
        turn_v6_keep(lab2)


def turn_v6_keep(lab):
    net = lab.turn_only_v6()
    r = loops.points_stream(lab, net, n=N, rate=20, points=50, timeout=60, messages=True,
                            sender_props="turn-server=" + netlab.turn_uri(net.turn_a),
                            receiver_props="turn-server=" + netlab.turn_uri(net.turn_b))
    delivered(r, "through coturn on IPv6 only")
    tx, rx = selected(lab, r)
    for me in (tx, rx):
        check("relay" in (me["local-type"], me["remote-type"]) and "[fd99:" in me["local-address"],
              f"{me['peer-id']}: {me['local-type']} {me['local-address']} -> {me['remote-type']} "
              f"{me['remote-address']}: an IPv6 relay")


def case_cone_browser(lab):
    missing = browser_missing("chromium")
    if missing:
        netlab.skip(missing)
    net = lab.nat_pair("cone", "cone")
    loops.start_daemon(lab, net.t, netlab.PUBLIC_SERVER,
                       extra=["--web-root", os.path.join(loops.ROOT, "signaling", "web")])
    ws = f"ws://{netlab.PUBLIC_SERVER}:{loops.SIGNALING_PORT}/ws"
    url = (f"http://{netlab.PUBLIC_SERVER}:{loops.SIGNALING_PORT}/?room=natb&connect=1"
           f"&stun=stun:{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}")
    profile = os.path.join(lab.workdir, "profile")
    os.makedirs(profile)
    page = lab.popen(net.b, ["node", os.path.join(loops.ROOT, "tests", "web", "watch_page.mjs"),
                             url, profile, "chromium"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=open(lab.logpath("page"), "w"), text=True)
    last = {}

    def read():
        for line in page.stdout:
            last.update(json.loads(line))
    threading.Thread(target=read, daemon=True).start()
    tx = lab.popen(net.a, ["gst-launch-1.0", "-e", "-m", "ballsrc", "mark=true", "!",
                           "video/x-raw,format=I420,width=320,height=240,framerate=30/1", "!",
                           "queue", "!", "rtc.video_0", "rtcpeer", "name=rtc", f"signaling={ws}",
                           "room=natb", "peer-id=tx-natb", "wait-for-peers=1",
                           f"stun-server={net.stun}"], log="tx")
    deadline = time.monotonic() + 45
    while last.get("videoFrames", 0) < 60 and time.monotonic() < deadline and tx.poll() is None:
        time.sleep(0.1)
    frames = last.get("videoFrames", 0)
    page.stdin.close()
    page.wait(20)
    check(frames >= 60, f"the page behind a NAT played {frames} frames from rtcpeer behind another"
          + ("" if frames >= 60 else f": {last}\nsender: {lab.read_log('tx')[-1500:]}"))
    pairs = ice_pairs(lab, "tx")
    check(pairs and pairs[0]["local-type"] in ("srflx", "prflx")
          and pairs[0]["local-address"].startswith(net.public_a + ":")
          and pairs[0]["remote-address"].startswith(net.public_b + ":"),
          f"over the two NATs' mappings: {pairs}")


def main():
    return netlab.run_cases(globals(), sys.argv[1:], need_turn=True)


if __name__ == "__main__":
    sys.exit(main())
