# SPDX-License-Identifier: LGPL-2.1-or-later
"""The two pointcast workloads run across a netlab topology: the ball-tracking loop
(pipelines/ball-sender.pipeline in namespace a, with the signaling daemon; the tracker in b) and
the points counter stream (pointsrc pattern=counter in a, a receiver in b). Both return what a
user would look at: ballscore's report, or how many messages arrived intact."""
import os
import re
import signal
import threading
import time

import netlab

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = netlab.BUILD
DAEMON = os.path.join(BUILD, "signaling", "pointcast-signaling")
SIGNALING_PORT = 8765
# Run from a checkout without meson's test environment: the plugin of the build next to it.
os.environ.setdefault("GST_PLUGIN_PATH", os.path.join(BUILD, "gst"))


def pipeline(name, replace=()):
    with open(os.path.join(ROOT, "pipelines", name + ".pipeline")) as f:
        words = " ".join(line for line in f if not line.lstrip().startswith("#")).split()
    for old, new in replace:
        words = [new if w == old else w for w in words]
    return words


class NoConnection(AssertionError):
    """The peers did not get a working loop within the time allowed (a result, not a bug of
    the harness)."""


def wait_for(lab, log, pattern, timeout, procs=(), error=AssertionError):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, lab.read_log(log), re.M)
        if m:
            return m
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args[3:6]} ended early ({p.returncode}):\n"
                                     + lab.read_log(log)[-2000:])
        time.sleep(0.2)
    raise error(f"no {pattern!r} in {log} within {timeout} s:\n" + lab.read_log(log)[-2000:])


def ws_host(addr):
    return f"[{addr}]" if ":" in addr else addr


def start_daemon(lab, ns, addr, extra=()):
    """pointcast-signaling in NS on ADDR:8765 (one per namespace; EXTRA: more of its flags);
    returns its ws:// URI."""
    uri = f"ws://{ws_host(addr)}:{SIGNALING_PORT}/ws"
    if uri not in lab.__dict__.setdefault("daemons", {}):
        lab.daemons[uri] = lab.popen(ns, [DAEMON, "--host", "::" if ":" in addr else "0.0.0.0", "--port", str(SIGNALING_PORT), *extra],
                                     log=f"daemon{len(lab.daemons)}")
        netlab.wait_tcp(ns, addr, SIGNALING_PORT)
    return uri


def signaling(lab, net):
    """The daemon for NET and the ws:// URIs side a and side b use: in t for the TURN topology
    (reachable from both without the peers reaching each other), else in a."""
    if getattr(net, "t", None):
        start_daemon(lab, net.t, net.turn_a)
        return tuple(f"ws://{ws_host(h)}:{SIGNALING_PORT}/ws" for h in (net.turn_a, net.turn_b))
    uri = start_daemon(lab, net.a, net.addr_a)
    return uri, uri


def parse_ballscore(text):
    report = text[text.rindex("ballscore report"):]
    m = re.search(r"sent (\d+), received (\d+), scored (\d+) \(([\d.]+)% of the (\d+) sent", report)
    out = dict(sent=int(m.group(1)), received=int(m.group(2)), scored=int(m.group(3)),
               pct=float(m.group(4)), expected=int(m.group(5)))
    out["outliers"] = int(re.search(r"outliers > \d+ px (\d+)", report).group(1))
    out["err_mean"], out["err_p99"] = map(float, re.search(
        r"error px: mean ([\d.]+), p50 [\d.]+, p99 ([\d.]+)", report).groups())
    out["lat_p50"], out["lat_p99"], out["lat_max"] = map(float, re.search(
        r"latency ms: p50 ([-\d.]+), p99 ([-\d.]+), max ([-\d.]+)", report).groups())
    out["report"] = report.strip()
    return out


def ball_loop(lab, net, seconds=10, tracker="rtcpeer", sender_props=(), tracker_props=(),
              sender_replace=(),
              connect_timeout=60, actions=(), noise=0.0, diag=False, tracker_replace=(),
              messages=False):
    """Runs the ball loop for SECONDS from the first scored detection and returns ballscore's
    report as a dict (sent, scored, pct, outliers, err_*, lat_p50/p99/max, report, and rows:
    (frame, error_px, latency_ms) per scored frame from ballscore's CSV). ACTIONS: (seconds
    after the first detection, router settings for both directions, or a function to call)
    applied on the way. NOISE:
    alpha of videotestsrc snow mixed over the ball (0.12 makes VP8 use its whole 2 Mbit/s; the
    mark and the ball still read in every frame). TRACKER_REPLACE: (word, new words) changes to
    ball-tracker.pipeline, as pipeline() takes them (SENDER_REPLACE: the same for ball-sender). DIAG: run both pipelines through
    bench/net/diag_launch.py and add its counters as out["diag"] = {"sender": ..., "tracker": ...}.
    MESSAGES: gst-launch prints the bus messages (-m) into out["sender_log"] / out["tracker_log"]
    (lab.read_log names)."""
    tag = f"ball{len(lab.procs)}"
    env = {"POINTCAST_ROOM": tag}
    csv = lab.logpath(tag + "-score")
    sender_words = pipeline("ball-sender", replace=[("source=ball", f"source=ball report={csv}")]
                            + list(sender_replace))
    sender_words = " ".join(sender_words).split() + list(sender_props)
    if noise:
        caps = next(w for w in sender_words if w.startswith("video/x-raw"))
        at = sender_words.index(caps) + 1
        sender_words[at:at] = ["!", "comp.sink_0", "videotestsrc", "pattern=snow", "is-live=true",
                               "!", caps, "!", "comp.sink_1", "compositor", "name=comp",
                               f"sink_1::alpha={noise}", "!", caps.split(",framerate")[0]]
    env_b = {}
    launch = ["gst-launch-1.0", "-e"] + (["-m"] if messages else [])
    diag_out = {}
    if diag:
        launch = ["/usr/bin/python3", os.path.join(ROOT, "bench", "net", "diag_launch.py")]
        diag_out = {k: lab.logpath(f"{tag}-diag-{k}") for k in ("sender", "tracker")}
    if tracker == "rtcpeer":
        env["POINTCAST_SIGNALING"], env_b["POINTCAST_SIGNALING"] = signaling(lab, net)
        # A replacement may be several words ("role=auto stun-server=..."): one argument each.
        tracker_cmd = (launch + " ".join(pipeline("ball-tracker", tracker_replace)).split()
                       + list(tracker_props))
    else:
        # aiortc's TcpSocketSignaling: the offerer (our sender) listens, the tracker connects.
        port = 9999
        env["POINTCAST_SIGNALING"] = f"tcp://{net.addr_a}:{port}"
        sender_words = ["role=offerer" if w == "role=auto" else w for w in sender_words]
        tracker_cmd = ["/usr/bin/python3", os.path.join(ROOT, "tests", "ball", "aiortc_tracker.py"),
                       "--host", net.addr_a, "--port", str(port)]
    sender = lab.popen(net.a, launch + sender_words, log=tag + "-sender",
                       env=dict(env, POINTCAST_PEER_ID="ball-sender",
                                **({"PCDIAG_OUT": diag_out["sender"]} if diag else {})))
    time.sleep(1.0)
    trk = lab.popen(net.b, tracker_cmd, log=tag + "-tracker",
                    env=dict(env, POINTCAST_PEER_ID="ball-tracker", **env_b,
                             **({"PCDIAG_OUT": diag_out["tracker"]} if diag else {})))
    wait_for(lab, tag + "-sender", r"^ballscore: ", connect_timeout, (sender, trk), NoConnection)
    t0 = time.monotonic()
    for at, settings in sorted(actions or ()):
        time.sleep(max(0, t0 + at - time.monotonic()))
        settings() if callable(settings) else net.router.set("both", settings)
    time.sleep(max(0, t0 + seconds - time.monotonic()))
    sender.send_signal(signal.SIGINT)
    wait_for(lab, tag + "-sender", r"^  latency ms:", 30)
    trk.terminate()
    for p in (sender, trk):
        try:
            p.wait(10)
        except Exception:
            p.kill()
    out = parse_ballscore(lab.read_log(tag + "-sender"))
    out["sender_log"], out["tracker_log"] = tag + "-sender", tag + "-tracker"
    with open(csv) as f:
        next(f)
        out["rows"] = [(int(float(c[0])), float(c[5]), float(c[6]))
                       for c in (line.split(",") for line in f if line.strip())]
    if diag:
        import json
        out["diag"] = {}
        for k, path in diag_out.items():
            try:
                with open(path) as f:
                    out["diag"][k] = json.load(f)
            except (OSError, ValueError) as e:
                out["diag"][k] = {"error": str(e)}
    return out


def window(rows, first_frame, last_frame):
    """Share of the frames FIRST_FRAME..LAST_FRAME that were scored, and their p99 latency."""
    lats = sorted(lat for n, _, lat in rows if first_frame <= n <= last_frame)
    total = last_frame - first_frame + 1
    return (100.0 * len(lats) / total if total > 0 else 0.0,
            lats[min(len(lats) - 1, int(0.99 * len(lats)))] if lats else None)


def timeline(rows, fps=30):
    """What a freeze or a bandwidth drop did to the loop, from ballscore's rows: the longest gap
    between detections arriving (frame n arrives n/fps + latency after the start), and how long
    after the first frame later than 200 ms the per-second p99 latency went back under 200 ms
    for good (recover_s) and for two seconds in a row at all (back_under_s) (None: never within
    the run; 0: never above)."""
    rows = sorted(rows)
    arrivals = sorted(n / fps + lat / 1000 for n, _, lat in rows)
    gap = max((b - a for a, b in zip(arrivals, arrivals[1:])), default=0)
    late = [n for n, _, lat in rows if lat > 200]
    recover = 0.0
    if late:
        first = late[0]
        windows = {}
        for n, _, lat in rows:
            if n >= first:
                windows.setdefault((n - first) // fps, []).append(lat)
        p99 = {w: sorted(v)[min(len(v) - 1, int(0.99 * len(v)))] for w, v in windows.items()}
        bad = [w for w, v in p99.items() if v > 200]
        last_bad = max(bad) if bad else -1
        recover = None if last_bad == max(p99) else float(last_bad + 1)
        # Back under at all: the first two good seconds in a row (a lone late frame afterwards,
        # which in a 30-frame window is its p99, is a new event, not a failure to recover).
        back = next((float(w) for w in sorted(p99) if p99[w] <= 200 and p99.get(w + 1, 1e9) <= 200),
                    None)
    else:
        back = 0.0
    return {"longest_gap_s": round(gap, 3), "recover_s": recover, "back_under_s": back}


def points_stream(lab, net, n=200, rate=20, points=1000, sender_props="", receiver_props="",
                  settle=3.0, timeout=120, during=None, messages=False):
    """Streams N counter arrays (POINTS x 3 float32) at RATE Hz from a to b and returns
    {"sent", "delivered", "intact", "in_order", "seconds"}: delivered counts the messages that
    arrived; intact that each is byte-identical to one sent, in_order that they came in order.
    DURING(received) runs in a thread while the sender runs; received() is the count so far.
    MESSAGES: gst-launch prints the bus messages (-m) into the logs, e.g. rtcpeer-ice-pair;
    tx_log_name / rx_log_name say where (lab.read_log)."""
    tag = f"points{len(lab.procs)}"
    uri_a, uri_b = signaling(lab, net)
    env = {"POINTCAST_ROOM": tag}
    sdir, rdir = os.path.join(lab.workdir, tag + "-sent"), os.path.join(lab.workdir, tag + "-recv")
    os.makedirs(sdir)
    os.makedirs(rdir)
    launch = ["gst-launch-1.0", "-e"] + (["-m"] if messages else [])
    rx = lab.popen(net.b, launch + ["rtcpeer", "name=rtc"] + receiver_props.split()
                   + ["rtc.data_points", "!", "queue", "!", "multifilesink", f"location={rdir}/%06d.npy"],
                   log=tag + "-rx", env=dict(env, POINTCAST_PEER_ID="points-rx", POINTCAST_SIGNALING=uri_b))
    time.sleep(1.0)
    start = time.monotonic()
    tx = lab.popen(net.a, launch + ["pointsrc", "pattern=counter", f"rate={rate}",
                           f"points={points}", f"num-buffers={n}", "!", "npypack", "!", "tee",
                           "name=t", "!", "queue", "!", "rtc.data_points", "t.", "!", "queue", "!",
                           "multifilesink", f"location={sdir}/%06d.npy", "rtcpeer", "name=rtc",
                           "wait-for-peers=1"] + sender_props.split(),
                   log=tag + "-tx", env=dict(env, POINTCAST_PEER_ID="points-tx", POINTCAST_SIGNALING=uri_a))
    if during:
        helper = threading.Thread(target=during, args=(lambda: len(os.listdir(rdir)),), daemon=True)
        helper.start()
    try:
        tx.wait(timeout)
    except Exception:
        tx.kill()
    # What was still in flight when the sender ended gets SETTLE s to land.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < settle:
        count = len(os.listdir(rdir))
        if count != last:
            last, stable_since = count, time.monotonic()
        if count >= n:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - start
    rx.terminate()
    sent = [open(os.path.join(sdir, f), "rb").read() for f in sorted(os.listdir(sdir))]
    got = [open(os.path.join(rdir, f), "rb").read() for f in sorted(os.listdir(rdir))]
    index = {data: i for i, data in enumerate(sent)}
    positions = [index.get(data, -1) for data in got]
    return dict(sent=len(sent), delivered=len(got), intact=all(p >= 0 for p in positions),
                in_order=positions == sorted(positions) and len(set(positions)) == len(positions),
                seconds=seconds, tx_rc=tx.returncode, tx_log_name=tag + "-tx",
                rx_log_name=tag + "-rx", tx_log=lab.read_log(tag + "-tx")[-1500:],
                tx_problems=[line for line in lab.read_log(tag + "-tx").splitlines()
                             if line.startswith(("WARNING", "ERROR"))])
