#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pointcast on impaired links (tests/net: two network namespaces joined by pcnet-router),
next to issue 13's targets: the ball loop (ball-sender + ball-tracker; with --aiortc also
ball-sender + tests/ball/aiortc_tracker.py, aiortc's NACK/PLI/REMB on the receiving side) and
the points counter stream (1,000 x 3 float32 at 20 Hz, 200 messages; with --aiortc also between
two aiortc peers, bench/net/aiortc_points.py, outside the TURN scenarios), scenario by scenario.
Prints one table. Figures only: a target not met is reported, not a failure (exit 1 only when
the harness itself fails).

Usage: bench_net.py [--seconds N] [--aiortc] [--points-only] [--scenario NAME]... [--json FILE]
Scenarios (default: all): none, delay25, loss2+delay25, ge4+delay25, rate1M, rate300k, for
the ball loop only outage3s, noisy-rate1M, noisy-drop4M-0.5M, and for the points only through
the TURN topology turn-udp+loss2+delay25, turn-tls+loss2+delay25 (coturn relaying both peers).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "net"))
import loops  # noqa: E402
import netlab  # noqa: E402

# name: (router settings for both directions, RTT in ms, changes [(seconds after the first
# detection, settings for both directions)])
SCENARIOS = {
    "none": ("", 0, None),
    "delay25": ("delay=25", 50, None),
    "loss2+delay25": ("loss=2% delay=25", 50, None),
    "ge4+delay25": ("ge=0.01:0.24 delay=25", 50, None),   # 0.01 / 0.25 = 4.0 %, bursts of ~4
    "rate1M": ("rate=1M queue-ms=100", 0, None),
    "rate300k": ("rate=300k queue-ms=100", 0, None),
    # 3 s outage 4 s into the run (each way) and a 4 -> 0.5 Mbit/s drop: ball loop only.
    "outage3s": ("delay=25", 50, [(4, "down=1"), (7, "down=0")]),
    # Noisy video (VP8 at rtcpeer's 2 Mbit/s) into a link that cannot carry it.
    "noisy-rate1M": ("rate=1M queue-ms=100", 0, None),
    "noisy-drop4M-0.5M": ("rate=4M queue-ms=100", 0, [(4, "rate=500")]),
}
BALL_ONLY = {"outage3s", "noisy-rate1M", "noisy-drop4M-0.5M"}
# Points only, through coturn in the TURN topology (a and b reach only t), the settings on a's
# cable to t (each way), both rtcpeers relayed over the transport named.
TURN = {
    "turn-udp+loss2+delay25": ("loss=2% delay=25", "udp"),
    "turn-tls+loss2+delay25": ("loss=2% delay=25", "tls"),
}
for _name, (_settings, _transport) in TURN.items():
    SCENARIOS[_name] = (_settings, 50, None)


def ball_target(name, r, rtt):
    """Issue 13's target for the ball loop in scenario NAME: (met or None, what it asks)."""
    if name == "loss2+delay25":
        return (r["pct"] >= 99.5 and r["lat_p99"] <= rtt + 100 and r["outliers"] == 0,
                f">= 99.5 %, p99 <= {rtt + 100} ms, no outliers")
    if name == "ge4+delay25":
        return r["pct"] >= 99, ">= 99 %"
    if name == "outage3s":
        return r["longest_gap_s"] - 3 <= 0.5, "video <= 0.5 s after the link returns"
    if name == "noisy-rate1M":
        return (r["after_pct"] >= 95 and (r["after_p99"] or 1e9) <= 200,
                ">= 95 % after 3 s, p99 <= 200 ms")
    if name == "noisy-drop4M-0.5M":
        return (r["after_pct"] >= 95 and (r["after_p99"] or 1e9) <= 200,
                "p99 < 200 ms within 2 s (and the frames delivered)")
    return None, ""


def run_ball(name, settings, rtt, actions, seconds, tracker):
    with netlab.Lab() as lab:
        net = lab.direct(both=settings)
        start = time.monotonic()
        r = loops.ball_loop(lab, net, seconds=seconds, tracker=tracker, actions=actions,
                            noise=0.12 if name.startswith("noisy") else 0)
        r["wall"] = time.monotonic() - start
        r["router"] = net.router.stats()
        rows = r.pop("rows")
        if actions:
            r.update(loops.timeline(rows))
        if name.startswith("noisy") and rows:
            # Issue 13 gives the encoder 3 s to adapt (after the start or after the change).
            first = min(n for n, _, _ in rows)
            last = first + r["expected"] - 1
            start = first + 90 + (30 * (actions[-1][0] + 1) if actions else 0)
            r["after_pct"], r["after_p99"] = loops.window(rows, start, last)
        return r


AIORTC_POINTS = os.path.join(HERE, "aiortc_points.py")


def arrival_tail(lab, sent, recv):
    """Seconds from the last message made to the last one received (the drain at EOS)."""
    def last(pattern):
        files = glob.glob(os.path.join(lab.workdir, pattern))
        return max(os.path.getmtime(f) for f in files) if files else None
    a, b = last(sent), last(recv)
    return None if a is None or b is None else round(b - a, 2)


def compare(sdir, rdir):
    """delivered / intact / in_order of what arrived in RDIR against what was sent (SDIR)."""
    sent = [open(os.path.join(sdir, f), "rb").read() for f in sorted(os.listdir(sdir))]
    got = [open(os.path.join(rdir, f), "rb").read() for f in sorted(os.listdir(rdir))]
    index = {data: i for i, data in enumerate(sent)}
    pos = [index.get(data, -1) for data in got]
    return dict(sent=len(sent), delivered=len(got), intact=all(p >= 0 for p in pos),
                in_order=pos == sorted(pos) and len(set(pos)) == len(pos))


def run_points_aiortc(settings, n=200, rate=20, points=1000, timeout=240):
    """The same stream between two aiortc peers (bench/net/aiortc_points.py) on the same link."""
    with netlab.Lab() as lab:
        net = lab.direct(both=settings)
        sdir, rdir = os.path.join(lab.workdir, "aio-sent"), os.path.join(lab.workdir, "aio-recv")
        os.makedirs(sdir)
        os.makedirs(rdir)
        port = "47123"
        start = time.monotonic()
        tx = lab.popen(net.a, ["/usr/bin/python3", AIORTC_POINTS, "send", net.addr_a, port, sdir,
                               str(n), str(rate), str(points), str(timeout)],
                       log="aio-tx", stderr=open(os.path.join(lab.workdir, "aio-tx.err"), "w"))
        lab.popen(net.b, ["/usr/bin/python3", AIORTC_POINTS, "recv", net.addr_a, port, rdir],
                  log="aio-rx")
        try:
            tx.wait(timeout + 60)
        except subprocess.TimeoutExpired:
            tx.kill()
        last, stable = -1, time.monotonic()
        while time.monotonic() - stable < 5 and last < n:
            count = len(os.listdir(rdir))
            if count != last:
                last, stable = count, time.monotonic()
            time.sleep(0.2)
        r = compare(sdir, rdir)
        r.update(seconds=time.monotonic() - start, tail_s=arrival_tail(lab, "aio-sent/*", "aio-recv/*"))
        out = lab.read_log("aio-tx").strip().splitlines()
        try:
            r.update(json.loads(out[-1]))
        except (IndexError, ValueError):
            r["sender_failed"] = open(os.path.join(lab.workdir, "aio-tx.err")).read()[-300:]
        return r


def run_points(name, settings, rtt):
    with netlab.Lab() as lab:
        props = {}
        if name in TURN:
            transport = TURN[name][1]
            net = lab.turn_only(impair_a=settings,
                                listen=("tls",) if transport == "tls" else ("udp", "tcp"))
            ca = f" turn-tls-ca={net.turn_cert}" if net.turn_cert else ""
            props = dict(sender_props=f"turn-server={netlab.turn_uri(net.turn_a, transport)}{ca}",
                         receiver_props=f"turn-server={netlab.turn_uri(net.turn_b, transport)}{ca}")
        else:
            net = lab.direct(both=settings)
        r = loops.points_stream(lab, net, n=200, rate=20, points=1000, settle=5, timeout=300,
                                **props)
        r["tail_s"] = arrival_tail(lab, "points*-sent/*", "points*-recv/*")
        r.pop("tx_log", None)
        r["errors"] = [line for line in r.pop("tx_problems", []) if line.startswith("ERROR")]
        return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--aiortc", action="store_true", help="also the ball loop with the aiortc tracker")
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    ap.add_argument("--points-only", action="store_true", help="only the points stream")
    ap.add_argument("--json")
    args = ap.parse_args()
    names = args.scenario or list(SCENARIOS)
    netlab.require_root(need_turn=any(name in TURN for name in names))
    results, failed = {}, False
    for name in names:
        settings, rtt, schedule = SCENARIOS[name]
        res = results[name] = {}
        trackers = ["rtcpeer"] + (["aiortc"] if args.aiortc else [])
        if args.points_only or name in TURN:
            trackers = []
        for tracker in trackers:
            try:
                secs = max(args.seconds, 12) if schedule else args.seconds
                res["ball-" + tracker] = run_ball(name, settings, rtt, schedule, secs, tracker)
            except loops.NoConnection:
                res["ball-" + tracker] = {"error": "no detection came back within 60 s"}
            except Exception as e:  # noqa: BLE001 - one scenario failing must not hide the others
                traceback.print_exc()
                res["ball-" + tracker] = {"error": str(e).splitlines()[0][:120]}
                failed = True
            print(f"[{name}] ball/{tracker}: {summary_ball(res['ball-' + tracker])}", flush=True)
        if name not in BALL_ONLY:
            try:
                res["points"] = run_points(name, settings, rtt)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                res["points"] = {"error": str(e).splitlines()[0][:120]}
                failed = True
            print(f"[{name}] points: {summary_points(res['points'])}", flush=True)
            if args.aiortc and name not in TURN:
                try:
                    res["points-aiortc"] = run_points_aiortc(settings)
                except Exception as e:  # noqa: BLE001
                    traceback.print_exc()
                    res["points-aiortc"] = {"error": str(e).splitlines()[0][:120]}
                    failed = True
                print(f"[{name}] points/aiortc: {summary_points(res['points-aiortc'])}", flush=True)
    print_table(results, names, args.aiortc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 1 if failed else 0


def summary_ball(r):
    if "error" in r:
        return "error: " + r["error"]
    text = (f"{r['pct']:.1f} % scored ({r['scored']}/{r['expected']}), latency p50 {r['lat_p50']:.0f} / "
            f"p99 {r['lat_p99']:.0f} / max {r['lat_max']:.0f} ms, outliers {r['outliers']}")
    if "after_pct" in r:
        p99 = "-" if r["after_p99"] is None else f"{r['after_p99']:.0f} ms"
        text += f"; 3 s after the start/change: {r['after_pct']:.1f} % scored, p99 {p99}"
    if "longest_gap_s" in r:
        rec = "never" if r["recover_s"] is None else f"{r['recover_s']:.0f} s"
        text += f"; longest gap {r['longest_gap_s']:.2f} s, p99 back < 200 ms after {rec}"
    return text


def summary_points(r):
    if "error" in r:
        return "error: " + r["error"]
    text = (f"{r['delivered']}/{r['sent']} delivered{'' if r['intact'] and r['in_order'] else ' (CORRUPT/REORDERED)'}"
            f" in {r['seconds']:.0f} s")
    if r.get("tail_s") is not None:
        text += f", last {r['tail_s']:.1f} s after it was made"
    for e in r.get("errors", []):
        text += "; " + e.split(": ", 2)[-1][:100]
    if r.get("sender_failed") is not None:
        text += "; the sender failed: " + r["sender_failed"].strip().splitlines()[-1:][0][:100] \
            if r["sender_failed"].strip() else "; the sender printed nothing"
    if r.get("all_acked") is False:
        text += f"; not all acknowledged after {r.get('drain_s')} s"
    return text


def points_ratios(b, a):
    """rtcpeer's points figures over the aiortc system's: share delivered, last-arrival delay."""
    if not b or not a or "error" in b or "error" in a:
        return ""
    share = (b["delivered"] / b["sent"]) / (a["delivered"] / a["sent"]) if a["delivered"] else None
    tail = b["tail_s"] / a["tail_s"] if b.get("tail_s") and a.get("tail_s") else None
    return (f"{share:.2f}x" if share else "-") + ", " + (f"{tail:.2f}x" if tail else "-")


def ratios(b, a):
    """rtcpeer's figures over aiortc's from the same run (TARGETS.md reports ratios): share of the
    frames scored (higher is better), latency p50 and p99 (lower is better)."""
    if not b or not a or "error" in b or "error" in a:
        return ""
    def r(x, y):
        return f"{x / y:.2f}x" if y else "-"
    return f"{r(b['pct'], a['pct'])}, {r(b['lat_p50'], a['lat_p50'])}, {r(b['lat_p99'], a['lat_p99'])}"


def print_table(results, names, aiortc):
    yes_no = {True: "yes", False: "**no**", None: ""}
    head = ["scenario (each way)", "ball loop, rtcpeer", "issue 13 target", "met"]
    if aiortc:
        head.append("ball loop, rtcpeer sender + aiortc tracker")
        head.append("rtcpeer / aiortc (scored, p50, p99)")
    head += ["points, 200 x 1000 @ 20 Hz (target: all)", "met"]
    if aiortc:
        head += ["points, the aiortc system", "rtcpeer / aiortc (delivered, last-arrival delay)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        settings, rtt, _ = SCENARIOS[name]
        res = results[name]
        b = res.get("ball-rtcpeer", {})
        met, target = ball_target(name, b, rtt) if b and "error" not in b else (None, "")
        label = ("noisy 2 Mbit/s video; " if name.startswith("noisy") else "") + (settings or "no impairment")
        for at, change in SCENARIOS[name][2] or ():
            label += f"; {change} at +{at} s"
        row = [f"{name}: {label}", summary_ball(b) if b else "", target,
               yes_no[met]]
        if aiortc:
            a = res.get("ball-aiortc")
            row.append(summary_ball(a) if a else "")
            row.append(ratios(b, a))
        p = res.get("points")
        pmet = None if not p or "error" in p else (p["delivered"] == p["sent"] and p["intact"]
                                                   and p["in_order"])
        row += [summary_points(p) if p else "", yes_no[pmet]]
        if aiortc:
            a = res.get("points-aiortc")
            row += [summary_points(a) if a else "", points_ratios(p, a)]
        lines.append("| " + " | ".join(row) + " |")
    print("\nNetwork benchmark (tests/net harness; the settings apply to each direction):")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
