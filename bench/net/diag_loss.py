#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where the ball loop's frames go on a lossy link: runs the loop (tests/net/loops.py) with both
pipelines under diag_launch.py and accounts for every frame sent from the first detection on:
scored in time (<= RTT + 100 ms), scored late (forward path: detection left the tracker late;
return path: the detection message took long), not scored (never out of the jitterbuffer /
decoder, dropped by the tracker's queue, or detected but its message never arrived), with the
packet counts behind them (router losses, NACKs, RTX, jitterbuffer stats, keyframes).

Usage: diag_loss.py [--settings "loss=2% delay=25"] [--runs N] [--seconds S] [--rtt MS]
                    [--noise A] [--tracker-prop PROP]... [--sender-prop PROP]... [--json FILE]
                    [--tracker-detections PROPS] [--sender-rtcpeer PROPS] [--keep-logs]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "net"))
import loops  # noqa: E402
import netlab  # noqa: E402


def account(r, rtt):
    d = r["diag"]
    snd, trk = d["sender"], d["tracker"]
    sent_t = snd.get("times", {}).get("ballsrc", [])
    det = {}
    for n, t in trk.get("frames", {}).get("detect", []):
        det.setdefault(n, t)
    rows = {n: lat for n, _, lat in r["rows"]}
    first = min(rows)
    frames = range(first, first + r["expected"])
    cls = {}
    late_fwd = []
    for n in frames:
        if n in rows:
            lat = rows[n]
            if lat <= rtt + 100:
                k = "scored in time"
            else:
                fwd = (det[n] - sent_t[n]) * 1000 if n in det and n < len(sent_t) else None
                k = "late: forward" if fwd is None or fwd > lat - rtt / 2 - 30 else "late: return"
                late_fwd.append((n, round(lat), None if fwd is None else round(fwd)))
        elif n in det:
            k = "lost: detection message"
        else:
            k = "lost: never detected"
        cls[k] = cls.get(k, 0) + 1
    c = lambda side, key: side.get("counts", {}).get(key, 0)  # noqa: E731
    # Jitterbuffer: packets in (with retransmissions) and out; seqnums that never came out.
    jb_in = [s for s, _ in trk.get("frames", {}).get("jb-in", [])]
    jb_out = [s for s, _ in trk.get("frames", {}).get("jb-out", [])]
    out_set = set(jb_out)
    lo, hi = (min(jb_out), max(jb_out)) if jb_out else (0, -1)
    missing = [s for s in range(lo, hi + 1) if s not in out_set]
    # Per repaired packet: how long the jitterbuffer held the packets behind it.
    t_in = {}
    for s, t in trk.get("frames", {}).get("jb-in", []):
        t_in.setdefault(s, t)
    holds = sorted(round((t - t_in[s]) * 1000) for s, t in trk.get("frames", {}).get("jb-out", [])
                   if s in t_in)
    order_breaks = sum(1 for a, b in zip(jb_in, jb_in[1:]) if ((b - a) & 0xFFFF) > 0x8000)
    # Repairs: a seqnum arriving after a later one; how long after the gap showed (the next
    # seqnum's arrival) it came.
    first_in, repairs = {}, []
    for s, t in trk.get("frames", {}).get("jb-in", []):
        if s in first_in:
            continue
        first_in[s] = t
        nxt = first_in.get((s + 1) & 0xFFFF)
        if nxt is not None and nxt < t:
            repairs.append(round((t - nxt) * 1000))
    return {
        "frames": cls,
        "repair-ms (after the gap showed)": sorted(repairs),
        "late": late_fwd[:20],
        "router": {k: r["router"][k].get("lost") for k in ("a2b", "b2a")},
        "router_passed": {k: r["router"][k].get("passed", r["router"][k].get("forwarded"))
                          for k in ("a2b", "b2a")},
        "sender": {"ballsrc": c(snd, "ballsrc"), "vp8enc": c(snd, "vp8enc"),
                   "keyframes": c(snd, "vp8enc-key"), "detections-in": c(snd, "detections-in"),
                   "rtprtxsend": snd.get("rtprtxsend"),
                   "sources": snd.get("sources")},
        "tracker": {"jb-in": c(trk, "jb-in"), "jb-out": c(trk, "jb-out"),
                    "jb-never-out": len(missing), "jb-in-out-of-order": order_breaks,
                    "jb-hold-ms p50/p90/p99/max": [holds[int(q * (len(holds) - 1))] for q in
                                                   (0.5, 0.9, 0.99, 1.0)] if holds else None,
                    "depay": c(trk, "rtpvp8depay"), "decoded": c(trk, "vp8dec"),
                    "rtc-video-out": c(trk, "rtc-video-out"), "detected": c(trk, "detect"),
                    "jitterbuffer": trk.get("jitterbuffer"), "rtprtxreceive": trk.get("rtprtxreceive"),
                    "sources": trk.get("sources")},
        "score": {k: r[k] for k in ("pct", "sent", "received", "scored", "expected", "outliers",
                                   "lat_p50", "lat_p99", "lat_max")},
    }


def fec_counts(lab):
    """From the pipelines' logs (GST_DEBUG rtcpeer-fec:4, set by main): packets rebuilt from
    FEC in front of the tracker's jitterbuffer, and the sender's FEC level changes."""
    out = {"rebuilt": 0, "lost-fec-filled": 0, "levels": []}
    for name in sorted(os.listdir(lab.workdir)):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(lab.workdir, name), errors="replace") as f:
            for line in f:
                if "rebuilt seqnum" in line:
                    out["rebuilt"] += 1
                elif "lost FEC packet" in line:
                    out["lost-fec-filled"] += 1
                elif "FEC " in line and " -> " in line and "rtcpeer-fec" in line:
                    out["levels"].append(line.split("'", 1)[-1].strip()[:60])
    return out


def detections_props(text):
    """ball-tracker.pipeline's data_detections:: pad properties replaced by TEXT's."""
    if text is None:
        return ()
    words = loops.pipeline("ball-tracker")
    old = next(w for w in words if w.startswith("data_detections::"))
    return [(old, " ".join("data_detections::" + p for p in text.split()))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", default="loss=2% delay=25")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rtt", type=int, default=50)
    ap.add_argument("--tracker-prop", action="append", default=[])
    ap.add_argument("--sender-prop", action="append", default=[])
    ap.add_argument("--tracker-detections", help="ball-tracker's detections pad properties, e.g. "
                    "'ordered=false max-retransmits=0'")
    ap.add_argument("--noise", type=float, default=0.0,
                    help="snow mixed over the ball (0.12: the noisy 2 Mbit/s video of net-adapt-noisy)")
    ap.add_argument("--sender-rtcpeer", help="more rtcpeer properties for ball-sender, e.g. "
                    "'fec-percentage=0'")
    ap.add_argument("--json")
    ap.add_argument("--keep-logs", action="store_true", help="keep each run's logs (printed)")
    a = ap.parse_args()
    netlab.require_root()
    # FEC counts come from the pipelines' logs (fec_counts).
    if "rtcpeer-fec" not in os.environ.get("GST_DEBUG", ""):
        os.environ["GST_DEBUG"] = ",".join(x for x in (os.environ.get("GST_DEBUG"), "rtcpeer-fec:4")
                                           if x)
    results = []
    for i in range(a.runs):
        with netlab.Lab(keep_logs=a.keep_logs) as lab:
            if a.keep_logs:
                print("logs:", lab.workdir, flush=True)
            net = lab.direct(both=a.settings)
            try:
                r = loops.ball_loop(lab, net, seconds=a.seconds, diag=True, noise=a.noise,
                                    tracker_props=a.tracker_prop, sender_props=a.sender_prop,
                                    tracker_replace=detections_props(a.tracker_detections),
                                    sender_replace=[("peer-type=ball-sender",
                                                     "peer-type=ball-sender " + a.sender_rtcpeer)]
                                    if a.sender_rtcpeer else ())
            except loops.NoConnection as e:  # a result: count it, go on with the next run
                print(json.dumps({"no connection": str(e)[:300]}), flush=True)
                results.append({"no connection": str(e)})
                continue
            r["router"] = net.router.stats()
            acc = account(r, a.rtt)
            acc["fec"] = fec_counts(lab)
            results.append(dict(acc, raw=r["diag"], rows=r["rows"]))
            print(json.dumps({k: v for k, v in acc.items() if k not in ("sender", "tracker")}),
                  flush=True)
            t = acc["tracker"]
            print(json.dumps({k: v for k, v in t.items() if k != "sources"}), flush=True)
            print(json.dumps({k: v for k, v in acc["sender"].items() if k != "sources"}), flush=True)
            if a.json:  # after each run: a later one may not end
                with open(a.json, "w") as f:
                    json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
