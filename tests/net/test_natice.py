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
  cone_browser_firefox  the same with the page in headless Firefox ESR (puppeteer-core, BiDi)
  symmetric_turn_browser_firefox  the page in Firefox behind a symmetric NAT with a TURN server
                  (?turn=&turn-username=&turn-credential=), rtcpeer behind another with STUN
                  only: it plays, through the page's relay (symmetric_turn_browser: Chromium)
  udp_blocked_tcp both NATs drop all UDP (udp=block: a corporate network letting TCP out only),
                  rtcpeers with turn-server=turn://...?transport=tcp: every message arrives over
                  relay candidates, the allocations are plain TCP, the NATs saw no UDP through
  udp_blocked_udp the same NATs with a UDP TURN URL only: a warning naming the server, then
                  "no candidate pair works" within ICE_FAIL_BOUND s
  udp_blocked_tls the same with turns:// (coturn's self-signed certificate given in
                  turn-tls-ca): every message arrives, every allocation is TLS
  cone_flush      the cone NATs with STUN, and a's NAT forgets its mappings mid-stream (a home
                  router rebooting): rtcpeer finds the dead path and connects again within
                  REBIND_BOUND s, every message arrives once, in order, and each side posts
                  rtcpeer-ice-pair again with a's new public port
  cone_video      the ball loop (video a -> b, detections back) through the cone NATs with STUN:
                  scored as through one plain router, over a server-reflexive pair
  cone_flush_udp  the cone NATs with STUN, and a's NAT forgets only its UDP mappings mid-stream
                  (timed out; the signaling connection through it lives on, so nobody registers
                  again): rtcpeer's consent check (gst/rtc/pathwatch.cpp) finds the silent path
                  and connects again within UDP_REBIND_BOUND s, every message arrives once, in
                  order, each side posts rtcpeer-ice-pair again with a's new public port, and
                  the signaling's TCP mapping is the one from before
  cone_video_flush_udp  the ball loop through the cone NATs, a's UDP mappings forgotten 4 s in:
                  detections (video a -> b, data back) again within VIDEO_GAP_BOUND s, and
                  still scoring at the end
  cone_silent_removed  the cone NATs with STUN, a's UDP mappings forgotten again after every new
                  connection to b (a NAT that drops mappings faster than traffic refreshes them),
                  while the signaling lives on: the sender removes that peer after its 4th
                  connection in a row went silent (kMaxSilentLosses new ones within 60 s), with
                  a warning naming the cause, and goes on for another receiver beside it
  cone_idle       the negative case: a healthy connection through the cone NATs that carries a
                  message only every 12.5 s (longer than the consent bound with nothing sent or
                  received): never rebuilt, one pair per side, every message

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


def browser_plays(lab, net, page_ice, rtcpeer_ice, browser):
    """The viewer page in headless BROWSER in b (page parameters PAGE_ICE, e.g. "&stun=..."),
    rtcpeer's ball video from a (RTCPEER_ICE properties): the page must play 60 frames within
    45 s. Returns rtcpeer's selected pairs."""
    missing = browser_missing(browser)
    if missing:
        netlab.skip(missing)
    loops.start_daemon(lab, net.t, netlab.PUBLIC_SERVER,
                       extra=["--web-root", os.path.join(loops.ROOT, "signaling", "web")])
    ws = f"ws://{netlab.PUBLIC_SERVER}:{loops.SIGNALING_PORT}/ws"
    url = f"http://{netlab.PUBLIC_SERVER}:{loops.SIGNALING_PORT}/?room=natb&connect=1{page_ice}"
    profile = os.path.join(lab.workdir, "profile")
    os.makedirs(profile)
    page = lab.popen(net.b, ["node", os.path.join(loops.ROOT, "tests", "web", "watch_page.mjs"),
                             url, profile, browser],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=open(lab.logpath("page"), "w"), text=True)
    last, seen = {}, {}

    def read():
        for line in page.stdout:
            last.update(json.loads(line))
            if last.get("peers"):
                seen.setdefault("peer", time.monotonic())
            if last.get("videoFrames"):
                seen.setdefault("frame", time.monotonic())
    threading.Thread(target=read, daemon=True).start()
    t0 = time.monotonic()
    tx = lab.popen(net.a, ["gst-launch-1.0", "-e", "-m", "ballsrc", "mark=true", "!",
                           "video/x-raw,format=I420,width=320,height=240,framerate=30/1", "!",
                           "queue", "!", "rtc.video_0", "rtcpeer", "name=rtc", f"signaling={ws}",
                           "room=natb", "peer-id=tx-natb", "wait-for-peers=1",
                           *rtcpeer_ice.split()], log="tx")
    deadline = time.monotonic() + 45
    while last.get("videoFrames", 0) < 60 and time.monotonic() < deadline and tx.poll() is None:
        time.sleep(0.1)
    took = time.monotonic() - t0
    frames = last.get("videoFrames", 0)
    page.stdin.close()
    page.wait(20)
    # The browser's start-up (10-20 s on a loaded machine) is not the network's: time the first
    # frame from the moment the page saw the sender.
    first = seen["frame"] - seen["peer"] if "frame" in seen and "peer" in seen else None
    check(frames >= 60, f"the page in {browser} behind a NAT played {frames} frames from rtcpeer "
          f"behind another ({took:.1f} s after the sender started; first frame "
          + (f"{first:.2f} s after the page saw the sender)" if first is not None else "never)")
          + ("" if frames >= 60 else f": {last}\nsender: {lab.read_log('tx')[-1500:]}"))
    return ice_pairs(lab, "tx")


def cone_browser(lab, browser):
    net = lab.nat_pair("cone", "cone")
    pairs = browser_plays(lab, net, f"&stun=stun:{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}",
                          f"stun-server={net.stun}", browser)
    check(pairs and pairs[0]["local-type"] in ("srflx", "prflx")
          and pairs[0]["local-address"].startswith(net.public_a + ":")
          and pairs[0]["remote-address"].startswith(net.public_b + ":"),
          f"over the two NATs' mappings: {pairs}")
    check("ALLOCATE" not in lab.read_log("turnserver"), "no TURN allocation was made")


def case_cone_browser(lab):
    cone_browser(lab, "chromium")


def case_cone_browser_firefox(lab):
    cone_browser(lab, "firefox")


def symmetric_turn_browser(lab, browser):
    # Both behind carrier NATs, where STUN's mappings are useless to the other side (net-nat-ice-
    # symmetric). rtcpeer has STUN only: the page's own TURN server, from its URL, is the way.
    net = lab.nat_pair("symmetric", "symmetric")
    from urllib.parse import quote
    page_ice = (f"&stun=stun:{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}"
                f"&turn={quote(f'turn:{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}')}"
                f"&turn-username={netlab.TURN_USER}&turn-credential={netlab.TURN_PASSWORD}")
    pairs = browser_plays(lab, net, page_ice, f"stun-server={net.stun}", browser)
    check(pairs and pairs[-1]["remote-type"] == "relay"
          and pairs[-1]["remote-address"].startswith(netlab.PUBLIC_SERVER + ":"),
          f"through the page's relay on coturn: {pairs}")


def case_symmetric_turn_browser(lab):
    symmetric_turn_browser(lab, "chromium")


def case_symmetric_turn_browser_firefox(lab):
    symmetric_turn_browser(lab, "firefox")


# The signaling connection through the rebooted NAT is cut too: rtcpeer reconnects (0.5-2.5 s
# back-off), finds the peer registered again on a connection that draws nothing for 5 s
# (gst/rtc/pathwatch.cpp check_rejoined), then ICE + DTLS + SCTP again: 12.2-13.3 s in our runs
# on a loaded machine; the bound leaves room for more load.
REBIND_BOUND = 20.0


def flush_during(at, act, limit):
    """A points_stream `during`: after 40 messages run ACT, then wait (at most LIMIT s) for 20
    more; AT gets the count, the time and how long the stream took to go on ("back")."""
    def during(received):
        while received() < 40:
            time.sleep(0.05)
        at["count"], at["t"] = received(), time.monotonic()
        act()
        while received() < at["count"] + 20 and time.monotonic() - at["t"] < limit:
            time.sleep(0.05)
        at["back"] = time.monotonic() - at["t"]
    return during


def check_a_moved(lab, net, r):
    """Each side reported one ICE pair per connection, and a's end moved to a new mapping of
    NAT a."""
    tx, rx = ice_pairs(lab, r["tx_log_name"]), ice_pairs(lab, r["rx_log_name"])
    check(len(tx) == 2 and len(rx) == 2, f"each side reported a pair per connection: {tx} {rx}")
    for pairs, end in ((tx, "local-address"), (rx, "remote-address")):
        check(pairs[0][end] != pairs[1][end] and all(p[end].startswith(net.public_a + ":")
                                                     for p in pairs),
              f"a's end moved to NAT a's new mapping: {pairs[0][end]} -> {pairs[1][end]}")


def case_cone_flush(lab):
    # The sender's home router reboots mid-stream (its NAT forgets every mapping): the receiver's
    # packets to the old public port are dropped, the sender's leave from a new one. rtcpeer must
    # notice, connect again over new mappings and say so in a second rtcpeer-ice-pair.
    net = lab.nat_pair("cone", "cone")
    n, at = 200, {}

    def act():
        at["flushed"] = net.nat_a.command("nat flush")
    r = loops.points_stream(lab, net, n=n, rate=20, points=50, timeout=60,
                            during=flush_during(at, act, 30),
                            sender_props=f"stun-server={net.stun}",
                            receiver_props=f"stun-server={net.stun}", messages=True)
    check(at.get("flushed", "").startswith("ok ") and int(at["flushed"].split()[1]) >= 1,
          f"NAT a flushed its mappings after {at.get('count')} messages: {at.get('flushed')}")
    back = at.get("back", 99)
    check(back <= REBIND_BOUND, f"the stream went on {back:.1f} s later (bound {REBIND_BOUND} s)"
          + ("" if back <= REBIND_BOUND else f": {r['delivered']}/{n}, {r['tx_problems']}"))
    ok = r["tx_rc"] == 0 and r["delivered"] == n and r["intact"] and r["in_order"]
    check(ok, f"{r['delivered']}/{n} messages, byte-identical, in order, once each"
          + ("" if ok else f": {r['tx_problems']}"))
    # Both ends send (data, and the receiver's acknowledgements), so either may find it first.
    rebuilt = [who for who, name in (("sender", r["tx_log_name"]), ("receiver", r["rx_log_name"]))
               if "Lost the connection to peer" in lab.read_log(name)
               and "making a new connection" in lab.read_log(name)]
    check(rebuilt, f"the {' and the '.join(rebuilt) or 'nobody'} said it lost the connection and "
          "made a new one")
    check_a_moved(lab, net, r)


# Consent (gst/rtc/pathwatch.cpp kConsentUs): 10 s of silence after sending, checked every
# 0.5 s, then ICE + DTLS + SCTP over new mappings (2-4 s on a loaded machine).
UDP_REBIND_BOUND = 20.0
# The ball loop's longest gap between detections: the same, plus a keyframe for the decoder.
VIDEO_GAP_BOUND = 20.0


def signaling_mappings(nat):
    """The NAT's TCP mappings that have sent to the signaling daemon."""
    daemon = f"{netlab.PUBLIC_SERVER}:{loops.SIGNALING_PORT}"
    return sorted(m["public"] for m in nat.stats()["nat"]["mappings"]
                  if m["proto"] == "tcp" and daemon in m["remotes"])


def flush_udp(net):
    """`nat flush udp` on a's NAT, checking that the signaling (TCP) mappings live on."""
    before = signaling_mappings(net.nat_a)
    reply = net.nat_a.command("nat flush udp")
    check(reply.startswith("ok ") and int(reply.split()[1]) >= 1 and before,
          f"NAT a forgot its UDP mappings ({reply}), kept the signaling's TCP one: {before}")
    return before


def consent_rebuilt(lab, logs):
    """Which of LOGS (name: log) said it lost the connection for want of consent and made a new
    one."""
    out = []
    for who, name in logs:
        log = lab.read_log(name)
        # gst-launch prints the warning's text and its details on separate lines.
        if re.search(r"Lost the connection to peer .{0,400}?nothing came back for [\d.]+ s after "
                     r"sending \(no consent.{0,300}?making a new connection", log, re.S):
            out.append(who)
    return out


def case_cone_flush_udp(lab):
    net = lab.nat_pair("cone", "cone")
    n, at = 400, {}

    def act():
        at["tcp"] = flush_udp(net)
    r = loops.points_stream(lab, net, n=n, rate=20, points=50, timeout=90,
                            during=flush_during(at, act, 40),
                            sender_props=f"stun-server={net.stun}",
                            receiver_props=f"stun-server={net.stun}", messages=True)
    back = at.get("back", 99)
    check(back <= UDP_REBIND_BOUND,
          f"the stream went on {back:.1f} s after the flush (bound {UDP_REBIND_BOUND} s)"
          + ("" if back <= UDP_REBIND_BOUND else f": {r['delivered']}/{n}, {r['tx_problems']}"))
    ok = r["tx_rc"] == 0 and r["delivered"] == n and r["intact"] and r["in_order"]
    check(ok, f"{r['delivered']}/{n} messages, byte-identical, in order, once each"
          + ("" if ok else f": {r['tx_problems']}"))
    rebuilt = consent_rebuilt(lab, (("sender", r["tx_log_name"]), ("receiver", r["rx_log_name"])))
    check(rebuilt, f"the {' and the '.join(rebuilt) or 'nobody'} said nothing came back (no "
          "consent) and made a new connection")
    after = signaling_mappings(net.nat_a)
    check(after == at["tcp"], f"the signaling connection lived on (no new one through NAT a): "
          f"{at['tcp']} -> {after}")
    for name in (r["tx_log_name"], r["rx_log_name"]):
        check("registered again" not in lab.read_log(name), f"{name}: no re-registration seen")
    check_a_moved(lab, net, r)


def case_cone_video_flush_udp(lab):
    net = lab.nat_pair("cone", "cone")
    stun = f"role=auto stun-server={net.stun}"
    at = {}

    def flush():
        at["tcp"] = flush_udp(net)
    r = loops.ball_loop(lab, net, seconds=30, sender_replace=[("role=auto", stun)],
                        tracker_replace=[("role=auto", stun)], messages=True,
                        actions=[(4, flush)])
    rows = r.pop("rows")
    t = loops.timeline(rows)
    print("\n".join(line for line in r["report"].splitlines() if not line.startswith("Got message")))
    print(f"  {t}")
    check(at.get("tcp") and signaling_mappings(net.nat_a) == at["tcp"],
          "the flush ran, and the signaling connection lived on")
    last = max(n for n, _, _ in rows)
    check(last >= r["sent"] - 60, f"scoring again, and at the end (frame {last} of {r['sent']})")
    check(t["longest_gap_s"] <= VIDEO_GAP_BOUND,
          f"longest gap between detections {t['longest_gap_s']} s (bound {VIDEO_GAP_BOUND} s)")
    check(t["longest_gap_s"] >= 5, f"and there was one ({t['longest_gap_s']} s): the flush cut "
          "the path")
    rebuilt = consent_rebuilt(lab, (("sender", r["sender_log"]), ("tracker", r["tracker_log"])))
    check(rebuilt, f"the {' and the '.join(rebuilt) or 'nobody'} said nothing came back (no "
          "consent) and made a new connection")


# Four connections, each cut 2 s after connecting: consent 10-10.5 s, then ICE + DTLS (2-4 s).
SILENT_REMOVED_BOUND = 100


def connected_count(lab, log, peer):
    return len(re.findall(r"rtcpeer-peer-connected, peer-id=\(string\)" + re.escape(peer) + r"[;,]",
                          lab.read_log(log)))


def case_cone_silent_removed(lab):
    net = lab.nat_pair("cone", "cone")
    uri_a, uri_b = loops.signaling(lab, net)
    env = {"POINTCAST_ROOM": "silent"}
    stun = f"stun-server={net.stun}"
    rdirs = {}
    rxs = []
    for name, ns, uri in (("far", net.b, uri_b), ("near", net.a, uri_a)):
        rdirs[name] = os.path.join(lab.workdir, name + "-recv")
        os.makedirs(rdirs[name])
        # The near receiver shares a's namespace: its connection never crosses NAT a.
        rxs.append(lab.popen(ns, ["gst-launch-1.0", "-e", "-m", "rtcpeer", "name=rtc", stun,
                                  "rtc.data_points", "!", "queue", "!", "multifilesink",
                                  f"location={rdirs[name]}/%06d.npy"],
                             log="rx-" + name,
                             env=dict(env, POINTCAST_PEER_ID="points-" + name,
                                      POINTCAST_SIGNALING=uri)))
    time.sleep(1.0)
    t0 = time.monotonic()
    tx = lab.popen(net.a, ["gst-launch-1.0", "-e", "-m", "pointsrc", "pattern=counter", "rate=20",
                           "points=50", "num-buffers=4000", "!", "npypack", "!",
                           "rtc.data_points", "rtcpeer", "name=rtc", "wait-for-peers=1", stun],
                   log="tx", env=dict(env, POINTCAST_PEER_ID="points-tx", POINTCAST_SIGNALING=uri_a))
    removed = r"Could not keep a connection to peer 'points-far'"
    flushed, removed_at = 0, None
    while time.monotonic() - t0 < SILENT_REMOVED_BOUND and tx.poll() is None:
        if re.search(removed, lab.read_log("tx")):
            removed_at = time.monotonic()
            break
        # Each new connection to the far peer gets 2 s (messages flow), then its UDP is cut.
        if connected_count(lab, "tx", "points-far") > flushed:
            time.sleep(2.0)
            flush_udp(net)
            flushed += 1
            print(f"  {time.monotonic() - t0:5.1f} s: connection {flushed} to points-far cut")
        time.sleep(0.2)
    log = lab.read_log("tx")
    check(removed_at is not None,
          f"the sender removed points-far within {SILENT_REMOVED_BOUND} s ({flushed} connections "
          f"cut): {[line for line in log.splitlines() if 'WARNING' in line or 'Lost' in line][-8:]}")
    print(f"  removed {removed_at - t0:.1f} s after the sender started, after {flushed} cuts")
    check(re.search(removed + r".{0,400}?4 connections in a row went silent within 60 s of "
                    r"connecting; removing this peer only", log, re.S),
          "the warning names the cause (connections that keep going silent)")
    losses = len(re.findall(r"nothing came back for [\d.]+ s after sending \(no consent", log))
    check(flushed == 4, f"four connections were made and cut before the removal: {flushed} "
          f"({losses} consent losses in the sender's own log)")
    # Longer than a rebuild's attempt (10 s) and a connection: the far side, counting the same
    # losses, gives up too, and its offers would not be answered if it did not.
    near = len(os.listdir(rdirs["near"]))
    time.sleep(12.0)
    later = len(os.listdir(rdirs["near"]))
    check(tx.poll() is None, "the sender goes on after removing the peer")
    check(later - near >= 120, f"the near receiver still gets the stream: {near} -> {later} "
          "messages in the 12 s after the removal")
    check(connected_count(lab, "tx", "points-far") == flushed,
          "and the far peer was not connected again")
    far = re.findall(r"Could not (?:keep a connection|reconnect) to peer 'points-tx'",
                     lab.read_log("rx-far"))
    print(f"  the far receiver: {far or 'no removal of its own yet'}")


def case_cone_idle(lab):
    # One message every 12.5 s: between them nothing is sent (SCTP heartbeats come every 30 s)
    # and nothing arrives for longer than the consent bound; a healthy connection stays.
    net = lab.nat_pair("cone", "cone")
    n = 3
    t0 = time.monotonic()
    r = loops.points_stream(lab, net, n=n, rate=0.08, points=50, timeout=60, settle=3,
                            sender_props=f"stun-server={net.stun}",
                            receiver_props=f"stun-server={net.stun}", messages=True)
    took = time.monotonic() - t0
    check(took >= 25, f"the stream took {took:.1f} s (two idle stretches of 12.5 s)")
    check(r["tx_rc"] == 0 and r["delivered"] == n and r["intact"] and r["in_order"],
          f"{r['delivered']}/{n} messages: {r['tx_problems']}")
    for name in (r["tx_log_name"], r["rx_log_name"]):
        log = lab.read_log(name)
        check("Lost the connection" not in log and "making a new connection" not in log,
              f"{name}: the idle connection was not rebuilt")
    tx, rx = ice_pairs(lab, r["tx_log_name"]), ice_pairs(lab, r["rx_log_name"])
    check(len(tx) == 1 and len(rx) == 1, f"one connection each: {tx} {rx}")


def coturn_allocations(lab):
    """coturn's "new session" line of each session whose allocation succeeded."""
    log = lab.read_log("turnserver")
    sessions = dict(re.findall(r"session (\d+): new, (.*)", log))
    return [sessions.get(sid, "") for sid in
            dict.fromkeys(re.findall(r"session (\d+): .*ALLOCATE processed, success", log))]


def udp_blocked(lab, listen=("udp", "tcp")):
    """Both peers behind cone NATs that drop all UDP (a corporate network that lets TCP out)."""
    return lab.nat_pair("cone udp=block", "cone udp=block", listen=listen)


def relayed_over_tcp(lab, net, transport, props=""):
    """The points stream a -> b with both rtcpeers on coturn over TRANSPORT (tcp or tls) through
    the UDP-blocking NATs: every message, over relay candidates, no UDP through either NAT."""
    uri = netlab.turn_uri(netlab.PUBLIC_SERVER, transport)
    t0 = time.monotonic()
    r = stream(lab, net, f"turn-server={uri} {props}")
    print(f"  stream of {N} messages took {time.monotonic() - t0:.1f} s")
    delivered(r, f"through two UDP-blocking NATs over TURN/{transport}")
    tx, rx = selected(lab, r)
    for me in (tx, rx):
        check(me["local-type"] == "relay" and me["local-address"].startswith(netlab.PUBLIC_SERVER + ":"),
              f"{me['peer-id']}: local {me['local-type']} {me['local-address']}: its relay on coturn")
    for side in ("a", "b"):
        nat = getattr(net, "nat_" + side).stats()["nat"]
        protos = {m["proto"] for m in nat["mappings"]}
        check(nat["stats"]["blocked"] > 0 and protos == {"tcp"},
              f"NAT {side}: {nat['stats']['blocked']} UDP packets blocked, "
              f"only TCP mappings: {protos}")
    return coturn_allocations(lab)


def case_udp_blocked_tcp(lab):
    net = udp_blocked(lab)
    allocs = relayed_over_tcp(lab, net, "tcp")
    tcp_from = set(re.findall(r"tcp or tls connected to: ([\d.]+):", lab.read_log("turnserver")))
    check(len(allocs) >= 2 and not any("cipher=" in a for a in allocs)
          and tcp_from == {net.public_a, net.public_b},
          f"{len(allocs)} allocations, not TLS, over TCP connections from both NATs: {tcp_from}")


def case_udp_blocked_udp(lab):
    # The same network with only a UDP TURN URL: nothing gets out; said, and bounded.
    net = udp_blocked(lab)
    took = ice_fails(lab, net, "turn-server=" + netlab.turn_uri(netlab.PUBLIC_SERVER, "udp"))
    log = lab.read_log("tx")
    check(f"TURN server turn://{netlab.PUBLIC_SERVER}:{netlab.TURN_PORT}?transport=udp gave no "
          "relay candidate" in log, "a warning names the TURN server that gave no relay")
    check(not coturn_allocations(lab), "coturn made no allocation")
    print(f"  ICE failed after {took:.1f} s")


def case_udp_blocked_tls(lab):
    net = udp_blocked(lab, listen=("udp", "tcp", "tls"))
    allocs = relayed_over_tcp(lab, net, "tls", f"turn-tls-ca={net.turn_cert}")
    # coturn with TCP and TLS listeners negotiates TLS 1.2 here (1.3 when it has TLS alone).
    check(len(allocs) >= 2 and all(re.search(r"cipher=\S+, method=TLSv1\.[23]", a) for a in allocs),
          f"{len(allocs)} allocations, all over TLS 1.2 or 1.3: {allocs[:2]}")


def main():
    return netlab.run_cases(globals(), sys.argv[1:], need_turn=True)


if __name__ == "__main__":
    sys.exit(main())
