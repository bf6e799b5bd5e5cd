#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rtcpeer's loss recovery and congestion control through the harness (issue 13), each case the
ball loop (ball-sender in namespace a, ball-tracker in b) on an impaired link, asserting what a
viewer notices, with room for a loaded machine; bench/net/ has the figures next to aiortc's:

  noisy_rate1M  noisy 2 Mbit/s video into a 1 Mbit/s link (100 ms queue): the encoder comes
                down to the link within 3 s; from then on the frames arrive, quickly
  drop          the same noisy video on 4 Mbit/s dropping to 0.5 Mbit/s: the video goes on
  outage        a 3 s outage (25 ms each way): video again soon after the link returns
  loss2         2 % random loss + 25 ms each way: losses repaired (NACK + RTX), detections on
                time (unordered channel, each message repeating the last three frames')
  bursty        Gilbert-Elliott bursts, ~4 % loss, + 25 ms each way: the same
  jitter_loss2  2 % random loss + 25 ms each way with 8 ms of delay jitter (order kept): jitter
                is no congestion, the sender keeps every frame at its rate; losses repaired
  loss2_partial  2 % random loss + 25 ms each way, detections on `max-retransmits=0` (partially
                reliable): a lost detection message is not retransmitted, so rtcpeer sends each
                small one twice, 6 ms apart (pointcast-ack3): detection messages lost for
                good, counted per frame, ~0 (sent once: ~2 %)
  answerer_loss2  2 % random loss + 25 ms each way to a tracker that only receives and answers
                the sender's offer (its video linked when it comes, no video_0 sink requested):
                its answer takes the offer's NACK and RTX, its jitterbuffer asks, the sender
                retransmits (FEC off: RTX alone repairs)

Usage: test_adapt.py CASE...
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loops  # noqa: E402
import netlab  # noqa: E402


check = netlab.check


def after(r, rows, seconds):
    """Share of the frames scored from SECONDS after the first detection on, and their p99."""
    first = min(n for n, _, _ in rows)
    return loops.window(rows, first + 30 * seconds, first + r["expected"] - 1)


def case_noisy_rate1M(lab):
    net = lab.direct(both="rate=1M queue-ms=100")
    r = loops.ball_loop(lab, net, seconds=10, noise=0.12)
    rows = r.pop("rows")
    print(r["report"])
    pct, p99 = after(r, rows, 3)
    # Before congestion control: 0.3-0.7 %, none from 3 s on. Issue 13: >= 95 %, p99 <= 200 ms.
    check(pct >= TARGETS["noisy_pct"], f"{pct:.1f} % of the frames from 3 s on scored")
    check(p99 is not None and p99 <= TARGETS["noisy_p99"], f"their latency p99 {p99} ms")
    check(r["outliers"] == 0, "no outliers")


def case_drop(lab):
    net = lab.direct(both="rate=4M queue-ms=100")
    r = loops.ball_loop(lab, net, seconds=12, noise=0.12, actions=[(4, "rate=500")])
    rows = r.pop("rows")
    print(r["report"])
    pct, p99 = after(r, rows, 7)  # from 3 s after the drop
    t = loops.timeline(rows)
    print(f"  from 3 s after the drop: {pct:.1f} %, p99 {p99} ms; {t}")
    # Before: none from 3 s after the drop on (5.9-35 % of the whole run).
    check(pct >= TARGETS["drop_pct"], f"{pct:.1f} % of the frames from 3 s after the drop scored")
    back = t["back_under_s"]
    check(back is not None and back <= TARGETS["drop_back_s"],
          f"p99 latency back under 200 ms within {TARGETS['drop_back_s']} s ({back} s)")


def case_outage(lab):
    net = lab.direct(both="delay=25")
    r = loops.ball_loop(lab, net, seconds=12, actions=[(4, "down=1"), (7, "down=0")])
    rows = r.pop("rows")
    t = loops.timeline(rows)
    print(r["report"], t)
    # Issue 13: video within 0.5 s of the link returning (3.10-3.29 s measured; before the
    # keyframe sent when feedback resumes: 3.27-3.58).
    check(t["longest_gap_s"] <= TARGETS["outage_gap_s"],
          f"longest gap {t['longest_gap_s']} s for a 3 s outage")
    last = max(n for n, _, _ in rows)
    check(last >= r["sent"] - 30, f"still scoring at the end (frame {last} of {r['sent']})")


def unscored_runs(r):
    """Lengths of the runs of consecutive frames not scored, longest first: a video packet never
    repaired costs the frames until the keyframe it asks for (9-25 under load), a lost detection
    message one."""
    scored = {n for n, _, _ in r["rows"]}
    first, out, run = min(scored), [], 0
    for n in range(first, first + r["expected"]):
        if n in scored:
            out, run = out + [run] if run else out, 0
        else:
            run += 1
    return sorted(out + [run] if run else out, reverse=True)


def lossy_loop(lab, settings, pct, p99=None):
    net = lab.direct(both=settings)
    r = loops.ball_loop(lab, net, seconds=10)
    print(r["report"])
    runs = unscored_runs(r)
    check(r["pct"] >= pct, f"{r['pct']} % scored (frames not scored in runs of {runs[:8]})")
    check(r["outliers"] == 0, "no outliers")
    if p99 is not None:
        # A lost detection waits for no retransmission (SCTP's, 150 ms to 1.3 s here before).
        check(r["lat_p99"] <= p99, f"latency p99 {r['lat_p99']} ms")
    lost = net.router.stats()
    check(lost["a2b"]["lost"] > 0 and lost["b2a"]["lost"] > 0,
          "the router dropped packets both ways")


def case_loss2(lab):
    lossy_loop(lab, "loss=2% delay=25", TARGETS["loss2_pct"], TARGETS["loss2_p99_ms"])


def case_bursty(lab):
    # 0.01 / 0.25: 4 %, bursts of ~4 packets. No p99: bursts on the way back delay detections
    # (reliable channel) by up to ~400 ms (p99 156-216 ms over 9 runs with FEC). Every frame
    # counts: until the RTX budget started with 16 KiB (2026-12-02) the longest run of unscored
    # frames was left out; since, 6 of 6 runs passed counting all (98.4-100 %; before, 3 of 8
    # had a run of ~10 frames: 96.8 %).
    lossy_loop(lab, "ge=0.01:0.24 delay=25", TARGETS["bursty_pct"])


def lost_messages(diag):
    """Detection messages the tracker sent that never reached the sender, between the first and
    the last that did (diag_launch's per-frame probes: balldetect's src, npyunpack's src)."""
    sent = {n for n, _ in diag["tracker"].get("frames", {}).get("detect", [])}
    got = {n for n, _ in diag["sender"].get("frames", {}).get("detections-in", [])}
    lo, hi = min(got), max(got)
    return sorted(n for n in sent - got if lo <= n <= hi)


def case_loss2_partial(lab):
    net = lab.direct(both="loss=2% delay=25")
    r = loops.ball_loop(lab, net, seconds=10, diag=True, tracker_replace=[
        ("data_detections::ordered=false",
         "data_detections::ordered=false data_detections::max-retransmits=0")])
    print(r["report"])
    lost = lost_messages(r.pop("diag"))
    stats = net.router.stats()
    print(f"  detection messages lost: {len(lost)} {lost[:12]}; the router dropped "
          f"{stats['b2a']['lost']} of {stats['b2a']['in']} packets on the way back")
    check(r["outliers"] == 0, "no outliers")
    # Sent once, 2 % of ~300 messages were lost (3-11 a run, 24 runs of old main); twice, both
    # copies are lost together about once in 2,500, and the first messages, before the receiver's
    # first acknowledgement arrived, go once (0-2 a run, 24 runs). Not the p99 (target RTT + 40
    # = 90 ms): it was met in 10 of those 24 runs, the rest of its tail being the forward path and
    # the machine's load (237 ms once at load 14), nor the share scored (net-adapt-loss2's).
    check(len(lost) <= TARGETS["partial_lost"], f"{len(lost)} detection messages lost")
    check(stats["b2a"]["lost"] > 0, "the router dropped packets on the way back")


def case_jitter_loss2(lab):
    # rtcpeer-cc logs each feedback's targets (LOG) and each encoder reconfiguration (DEBUG).
    os.environ["GST_DEBUG"] = ",".join(x for x in (os.environ.get("GST_DEBUG"), "rtcpeer-cc:6")
                                       if x)
    net = lab.direct(both="loss=2% delay=25 jitter=8 reorder=0")
    r = loops.ball_loop(lab, net, seconds=15)
    rows = r.pop("rows")
    print(r["report"])
    log = lab.read_log(r["sender_log"])
    kept = [float(k) for k in re.findall(r"bit/s \(\d+ viewers\), frames kept ([\d.]+)", log)]
    # The controller's own estimate (the encoder's rate is also divided by the FEC share).
    targets = [min(int(d), int(s)) for d, s in re.findall(r"target delay (\d+) loss (\d+)", log)]
    low = min(targets, default=None)
    print(f"  controller target: lowest {low}, last {targets[-1] if targets else None}")
    scored = {n for n, _, _ in rows}
    first = min(scored)
    never = sum(1 for n in range(first, first + r["expected"]) if n not in scored)
    # Before (delay guards on the raw delay above the 10 s minimum): 81-85 % scored, 25-47
    # frames never detected, the target cut to 100 kbit/s and frames skipped below the floor.
    check(kept and all(k >= 1.0 for k in kept), "the sender skipped no frames (frames kept 1.00)")
    check(low is not None and low >= TARGETS["jitter_target_bps"],
          f"the controller's target stayed at or above {TARGETS['jitter_target_bps']} bit/s "
          f"(lowest {low})")
    check(r["pct"] >= TARGETS["jitter_pct"], f"{r['pct']} % scored, {never} frames never")
    check(r["outliers"] == 0, "no outliers")
    lost = net.router.stats()
    check(lost["a2b"]["lost"] > 0 and lost["b2a"]["lost"] > 0,
          "the router dropped packets both ways")


def case_answerer_loss2(lab):
    # `rtc.video_0 ! ...` in gst-launch also requests a sink pad video_0 (a send transceiver with
    # NACK, which hid the bare answer); `rtc. !` links the received video when it comes.
    net = lab.direct(both="loss=2% delay=25")
    r = loops.ball_loop(lab, net, seconds=10, diag=True, noise=0.12,
                        sender_replace=[("role=auto", "role=auto fec-percentage=0")],
                        tracker_replace=[("rtc.video_0", "rtc.")])
    print(r["report"])
    diag = r.pop("diag")
    jbs = [j for j in diag["tracker"].get("jitterbuffer", []) if j.get("num-pushed", 0) > 100]
    asked = sum(j.get("rtx-count", 0) for j in jbs)
    repaired = sum(j.get("rtx-success-count", 0) for j in jbs)
    lost = sum(j.get("num-lost", 0) for j in jbs)
    resent = sum(x.get("num-rtx-packets", 0) for x in diag["sender"].get("rtprtxsend", []))
    print(f"  tracker: {asked} retransmissions asked, {repaired} repaired, {lost} lost; "
          f"sender: {resent} retransmitted")
    # Before (webrtcbin's bare answer): no generic NACK, no RTX; 0 asked, every loss lost.
    check(asked > 0 and resent > 0, f"the tracker asked ({asked}) and the sender resent ({resent})")
    check(repaired >= 10, f"{repaired} packets repaired by RTX")
    check(lost <= max(3, repaired // 5), f"{lost} packets lost for good ({repaired} repaired)")
    check(r["pct"] >= TARGETS["loss2_pct"], f"{r['pct']} % scored")
    stats = net.router.stats()
    check(stats["a2b"]["lost"] > 0, "the router dropped video packets")


# What the cases require, with room for a loaded machine: measured 2026-12-01 at load average
# 5-9 from other work (docs/networks.md "Loss recovery and congestion control"): noisy 82-100 % from 3 s on
# (p99 up to 241 ms), drop 95-101 % from 3 s after it, back under 200 ms after 1 s (once 3 s),
# outage gap 3.10-3.29 s. The outage bound is issue 13's target itself.
# loss2 and bursty, with RED/ULPFEC (docs/networks.md "RED/ULPFEC"), 2026-12-01 21:00-21:15 at load
# average 2-6: loss2 100 % in 7 of 7 runs, p99 90-151 ms; bursty 100 % in 9 of 9 (FEC off, same
# minutes: 97.1 % in 2 of 3). A packet never repaired still costs the frames until the next
# keyframe (~3 %), and a sender stalled by the machine's load 100-260 ms (seen at load average
# 4-6: 94-99 % at 2 %), so the thresholds allow about one such event. At bursty loss under load
# such a wait is 9-25 frames (2.9-8 %: a burst took the retransmission too; 2026-12-02, 35
# loaded runs, docs/networks.md); bursty counted the rest without its longest one until the
# RTX budget's start (docs/networks.md), and counts every frame since. After merging
# main at 21:45 (the data channel acknowledgements), the last 2-3 frames' detections of a run
# often do not arrive before it ends (98.7-99.35 %, the missing frames the run's last): room for
# that too.
TARGETS = {"noisy_pct": 75, "noisy_p99": 275, "drop_pct": 85, "drop_back_s": 3.0,
           "outage_gap_s": 3.5, "loss2_pct": 98.0, "bursty_pct": 97.0, "loss2_p99_ms": 200,
           "jitter_pct": 97.0, "jitter_target_bps": 500_000,
           "partial_lost": 2}


def main():
    return netlab.run_cases(globals(), sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
