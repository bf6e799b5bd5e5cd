#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pcnet-router measured against its settings with UDP probes between two namespaces: random and
Gilbert-Elliott loss (per direction), delay, jitter with and without reordering, the rate cap's
throughput and queue bound, and a scheduled outage's length. Tolerances allow for the sampling
error of the probe counts and for a loaded 2-core machine (the router runs SCHED_FIFO; arrival
times are the kernel's).

Usage: test_router.py [CASE ...]   (default: all)
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402


def delays_ms(arrivals):
    return [(r - s) / 1e6 for _, s, r in arrivals]


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q / 100 * len(v)))]


def reordered(arrivals):
    """Packets that arrive after one with a higher sequence number."""
    top, n = -1, 0
    for seq, _, _ in arrivals:
        if seq < top:
            n += 1
        top = max(top, seq)
    return n


check = netlab.check


class Bench:
    def __init__(self, lab):
        self.net = lab.direct(seed=1)
        self.a2b = netlab.Probe(self.net.a, self.net.addr_a, self.net.b, self.net.addr_b)
        self.b2a = netlab.Probe(self.net.b, self.net.addr_b, self.net.a, self.net.addr_a)

    def set(self, settings):
        self.net.router.set("both", "clear " + settings)


def case_loss(b):
    """10 % random loss on a->b only; b->a stays clean."""
    b.set("")
    b.net.router.set("a2b", "loss=10%")
    n = 3000
    _, got = b.a2b.run(n, 0.001)
    loss = 1 - len(got) / n
    # binomial sd = sqrt(.1 * .9 / 3000) = 0.55 %: +-2 % is > 3.5 sd
    check(abs(loss - 0.10) < 0.02, f"a->b loss {loss:.3f} for loss=10%")
    _, back = b.b2a.run(1000, 0.001)
    check(len(back) == 1000, f"b->a untouched: {len(back)}/1000 arrived")


def case_gilbert_elliott(b):
    """ge=0.01:0.25: mean loss 0.01/0.26 = 3.85 %, in bursts of 1/0.25 = 4 packets on average."""
    b.set("ge=0.01:0.25")
    n = 8000
    _, got = b.a2b.run(n, 0.0005)
    arrived = {seq for seq, _, _ in got}
    lost = [seq not in arrived for seq in range(n)]
    loss = sum(lost) / n
    bursts = sum(1 for i in range(n) if lost[i] and (i == 0 or not lost[i - 1]))
    mean_burst = sum(lost) / max(1, bursts)
    # Bursts make the estimate noisier than binomial: ~60 bursts of 4 -> sd ~ 0.5 %.
    check(abs(loss - 0.0385) < 0.02, f"GE loss {loss:.4f} (expected 0.0385)")
    check(2.5 <= mean_burst <= 6.5, f"GE mean burst {mean_burst:.2f} packets (expected 4)")


def case_delay(b):
    """delay=25: every packet 25 ms late (over the unimpaired baseline), none much later."""
    b.set("")
    _, base = b.a2b.run(300, 0.002)
    base50 = pct(delays_ms(base), 50)
    b.set("delay=25")
    _, got = b.a2b.run(500, 0.002)
    d = delays_ms(got)
    check(len(got) == 500, f"{len(got)}/500 arrived")
    check(abs(pct(d, 50) - base50 - 25) < 1.0, f"delay p50 {pct(d, 50):.2f} ms (baseline {base50:.2f})")
    check(min(d) >= 24.9 and pct(d, 99) < 35, f"delay min {min(d):.2f} p99 {pct(d, 99):.2f} ms")


def case_jitter_reorder(b):
    """delay=25 jitter=5 reorder=1: normal around 25 ms, sd 5 ms; packets 1 ms apart overtake."""
    b.set("delay=25 jitter=5 reorder=1")
    _, got = b.a2b.run(3000, 0.001)
    d = delays_ms(got)
    mean, sd = statistics.mean(d), statistics.pstdev(d)
    check(abs(mean - 25) < 1.5, f"jitter mean {mean:.2f} ms (25)")
    check(abs(sd - 5) < 1.5, f"jitter sd {sd:.2f} ms (5)")
    check(reordered(got) > 300, f"{reordered(got)} of 3000 reordered with reorder=1")


def case_jitter_fifo(b):
    """delay=25 jitter=5 reorder=0: the same jitter but order kept (a late packet holds back
    the ones behind it, so delays are never below 25 - 3 sd and the mean rises)."""
    b.set("delay=25 jitter=5")
    _, got = b.a2b.run(3000, 0.001)
    d = delays_ms(got)
    check(reordered(got) == 0, f"{reordered(got)} reordered with reorder=0")
    check(len(got) == 3000, f"{len(got)}/3000 arrived")
    check(min(d) > 10 and statistics.pstdev(d) > 1.0,
          f"FIFO jitter: min {min(d):.2f} ms, sd {statistics.pstdev(d):.2f} ms")


def case_rate_queue(b):
    """rate=1M queue-ms=100, offered 2 Mbit/s: 1 Mbit/s comes out, nothing waits much over
    100 ms in the queue, the excess is dropped at the tail."""
    b.set("rate=1M queue-ms=100")
    size, n = 1222, 600   # + 28 bytes of IP/UDP = 1250 bytes = 10 ms at 1 Mbit/s
    before = b.net.router.stats()["a2b"]
    _, got = b.a2b.run(n, 0.005, size=size)   # 200 packets/s = 2 Mbit/s for 3 s
    after = b.net.router.stats()["a2b"]
    recv = sorted(r for _, _, r in got)
    # Throughput in the steady part (the first 100 ms fill the queue).
    steady = [r for r in recv if r > recv[0] + 0.2e9]
    kbit = (len(steady) - 1) * 1250 * 8 / ((steady[-1] - steady[0]) / 1e9) / 1000
    check(abs(kbit - 1000) < 60, f"rate cap throughput {kbit:.0f} kbit/s (1000)")
    d = delays_ms(got)
    check(max(d) < 100 + 10 + 15, f"queue bound: max delay {max(d):.1f} ms (100 ms queue + 10 ms send)")
    check(pct(d, 50) > 80, f"the queue is full in steady state: p50 {pct(d, 50):.1f} ms")
    drops = after["queue_drops"] - before["queue_drops"]
    check(abs(drops - (n - len(got))) <= 2 and drops > n / 3,
          f"{drops} tail drops counted by the router, {n - len(got)} probes missing")


def case_outage_schedule(lab):
    """A schedule file: down at 1.0 s, up at 2.0 s, then a 4 -> 0.5 Mbit/s drop at 3.0 s."""
    net = lab.direct(schedule="1.0 both down=1\n2.0 both down=0\n"
                              "0 a2b rate=4M queue-ms=50\n3.0 a2b rate=500 queue-ms=50\n")
    start = time.time_ns() - (time.monotonic_ns() - net.router.t0)   # the schedule's 0 s
    p = netlab.Probe(net.a, net.addr_a, net.b, net.addr_b, port=47100)
    sent, got = p.run(2100, 0.002, size=600)   # 2.4 Mbit/s for 4.2 s
    p.close()
    recv = sorted(r for _, _, r in got)
    gaps = [(recv[i + 1] - recv[i]) / 1e6 for i in range(len(recv) - 1)]
    gap = max(gaps)
    check(abs(gap - 1000) < 80, f"outage: longest gap in arrivals {gap:.0f} ms (1000)")
    at = (recv[gaps.index(gap)] - start) / 1e9
    check(0.98 < at < 1.1, f"outage starts {at:.3f} s after the router (1.0)")
    # Before the drop 4 Mbit/s carries the 2.4 offered: every probe sent then arrives.
    arrived = {seq for seq, _, _ in got}
    window = [seq for seq, t in enumerate(sent) if start + 2.3e9 < t < start + 2.9e9]
    passed = sum(seq in arrived for seq in window) / max(1, len(window))
    check(len(window) > 100 and passed > 0.98,
          f"before the drop: {passed:.1%} of the {len(window)} probes sent in 2.3-2.9 s pass")
    after = [r for r in recv if r > start + 3.3e9]
    rate_after = (len(after) - 1) * 628 * 8 / ((after[-1] - after[0]) / 1e9) / 1000
    check(350 < rate_after < 550, f"after the drop: {rate_after:.0f} kbit/s come out (500)")
    late = [(r - s) / 1e6 for _, s, r in got if s > start + 3.3e9]
    check(max(late) < 50 + 10 + 15, f"after the drop: max delay {max(late):.1f} ms (50 ms queue)")


CASES = ["loss", "gilbert_elliott", "delay", "jitter_reorder", "jitter_fifo", "rate_queue",
         "outage_schedule"]


def main():
    netlab.require_root()
    cases = sys.argv[1:] or CASES
    with netlab.Lab() as lab:
        b = Bench(lab)
        for name in cases:
            print(f"{name}:", globals()[f"case_{name}"].__doc__.split("\n")[0])
            fn = globals()[f"case_{name}"]
            fn(lab if name == "outage_schedule" else b)
        print("router stats:", b.net.router.stats())
    return 0


if __name__ == "__main__":
    sys.exit(main())
