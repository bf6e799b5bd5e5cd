# SPDX-License-Identifier: LGPL-2.1-or-later
"""Data channel benchmark: rtcpeer -> rtcpeer next to two bare webrtcbins and two aiortc peers,
all in one run on this machine, each in one process over loopback.

usage: /usr/bin/python3 run.py --dcbench PATH [--seconds S] [--reps R] [--latency SECONDS]
(meson test -C build --benchmark --suite datachannel --verbose, or ./pointcast bench)

Prints each measurement, then the ratios against the targets of TARGETS.md:
rtcpeer/bare >= 0.9x (1 KiB msg/s, 64 KiB MB/s), rtcpeer/aiortc >= 3x, rtcpeer 1 MiB MB/s >= 0.8x
its 64 KiB MB/s; and rtcpeer's one-way latency p50/p99 at 4 Hz. Exit status 1 only when rtcpeer
could not be measured; figures below target are reported, not failed (the machine is shared)."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [1024, 65536, 1048576]


def measure(cmd, timeout):
    """Runs one benchmark process; returns {impl: {size: record, "latency": record}}."""
    out = {}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        lines = proc.stdout.splitlines()
        if proc.returncode not in (0, 1) and not lines:
            return {"?": {"error": "exit %d: %s" % (proc.returncode, proc.stderr[-400:])}}
    except subprocess.TimeoutExpired as e:
        lines = (e.stdout or b"").decode(errors="replace").splitlines()
        out["?"] = {"error": "timed out after %d s" % timeout}
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        mine = out.setdefault(rec.get("impl", "?"), {})
        if rec.get("latency"):
            mine["latency"] = rec
        elif "size" in rec:
            mine[rec["size"]] = rec
        elif "error" in rec:
            mine["error"] = rec["error"]
    return out


def merge(best, new):
    """Keeps the better figure per size (the least disturbed run on a shared machine)."""
    for key, rec in new.items():
        old = best.get(key)
        if key in SIZES and isinstance(old, dict) and "error" not in old:
            if "error" in rec or rec["seconds"] / rec["messages"] >= old["seconds"] / old["messages"]:
                continue
        best[key] = rec


def fmt(rec, size):
    if rec is None:
        return "-"
    if "error" in rec:
        return "n/a (%s)" % rec["error"][:48]
    if size <= 4096:
        return "%.0f msg/s" % rec["msg_per_s"]
    return "%.2f MB/s" % rec["mb_per_s"]


def value(rec, size):
    if not rec or "error" in rec:
        return None
    return rec["msg_per_s"] if size <= 4096 else rec["mb_per_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dcbench", required=True)
    p.add_argument("--seconds", default="1.0")
    p.add_argument("--reps", default="5")
    p.add_argument("--latency", default="20")
    p.add_argument("--rounds", type=int, default=2,
                   help="implementations run in turn this many times; the best figure counts")
    p.add_argument("--skip", default="", help="comma list of bare,aiortc,rtcpeer to leave out")
    a = p.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    sizes = ",".join(str(s) for s in SIZES)
    common = ["--sizes", sizes, "--seconds", a.seconds, "--reps", a.reps]
    results = {}
    print("data channel benchmark on loopback: bare webrtcbin and rtcpeer in one process, runs"
          " alternating; aiortc in another; %d rounds; each size best of %s runs of ~%s s"
          % (a.rounds, a.reps, a.seconds), flush=True)
    gst_impls = ",".join(n for n in ("bare", "rtcpeer") if n not in skip)
    for rnd in range(a.rounds):
        last = rnd == a.rounds - 1
        if gst_impls:
            cmd = [a.dcbench, "--impl", gst_impls] + common
            if last:
                cmd += ["--latency", a.latency]
            for name, rec in measure(cmd, 600).items():
                merge(results.setdefault(name, {}), rec)
        if "aiortc" not in skip:
            cmd = [sys.executable, os.path.join(HERE, "aiortc_pair.py")] + common
            for name, rec in measure(cmd, 400).items():
                merge(results.setdefault(name, {}), rec)

    names = [n for n in ("rtcpeer", "bare", "aiortc") if n in results]
    print("\n%-10s %-22s %-22s %-22s" % ("", "1 KiB", "64 KiB", "1 MiB"))
    for n in names:
        r = results[n]
        if "error" in r and not any(s in r for s in SIZES):
            print("%-10s n/a: %s" % (n, r["error"]))
            continue
        print("%-10s %-22s %-22s %-22s" % (n, fmt(r.get(SIZES[0]), SIZES[0]),
                                           fmt(r.get(SIZES[1]), SIZES[1]),
                                           fmt(r.get(SIZES[2]), SIZES[2])))

    rt = results.get("rtcpeer", {})
    verdicts = []

    def ratio(label, num, den, target):
        if num is None or den is None or den == 0:
            print("%-44s n/a" % label)
            return
        r = num / den
        ok = r >= target
        verdicts.append(ok)
        print("%-44s %6.2fx  (target >= %.1fx: %s)" % (label, r, target, "met" if ok else "BELOW"))

    print()
    for size, unit in ((SIZES[0], "1 KiB msg/s"), (SIZES[1], "64 KiB MB/s")):
        ratio("rtcpeer / bare webrtcbin, %s" % unit, value(rt.get(size), size),
              value(results.get("bare", {}).get(size), size), 0.9)
    for size, unit in ((SIZES[0], "1 KiB msg/s"), (SIZES[1], "64 KiB MB/s")):
        ratio("rtcpeer / aiortc, %s" % unit, value(rt.get(size), size),
              value(results.get("aiortc", {}).get(size), size), 3.0)
    ratio("rtcpeer 1 MiB MB/s / rtcpeer 64 KiB MB/s", value(rt.get(SIZES[2]), SIZES[2]),
          value(rt.get(SIZES[1]), SIZES[1]), 0.8)
    for n in names:
        lat = results[n].get("latency")
        if lat and "error" not in lat:
            print("%s one-way latency at 4 Hz, %d-byte messages: p50 %.2f ms, p99 %.2f ms "
                  "(%d/%d arrived, %d over 10 ms)" % (
                      n, lat["size"], lat["latency_p50_ms"], lat["latency_p99_ms"],
                      lat["samples"], lat["sent"], lat.get("over_10ms", -1)))
        elif lat:
            print("%s latency: n/a (%s)" % (n, lat["error"]))
    if "rtcpeer" in results and not any(isinstance(rt.get(s), dict) and "error" not in rt[s]
                                        for s in SIZES):
        print("rtcpeer could not be measured: %s" % rt.get("error", "no figures"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
