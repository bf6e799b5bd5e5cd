#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rtcpeer across two daemons of a cluster: a points receiver registered on daemon A, a sender on
daemon B (both daemons on one redis-server started here); the peers find each other and
negotiate through Redis, and every message arrives once, in order, byte for byte.

Usage: test_cluster_rtcpeer.py   (uses the rtc suite's helpers, tests/rtc/test_e2e.py)
"""
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rtc"))
import test_e2e  # noqa: E402
from test_e2e import Daemon, check_same, ok_exit, receiver, sender, wait_count  # noqa: E402

sys.path.insert(0, HERE)
from test_cluster import Redis  # noqa: E402


def main():
    work = tempfile.mkdtemp(prefix="cluster-rtcpeer-")
    r = Redis()
    a = b = rx = None
    try:
        a = Daemon(work, args=["--redis", r.url]).start()
        b = Daemon(work, args=["--redis", r.url]).start()
        time.sleep(0.5)  # both connected to Redis
        rx, rdir = receiver(work, "rx", a, "pts")
        time.sleep(1)
        tx, sdir = sender(work, "tx", b, "pts", n=200, rate=100)
        ok_exit(tx, 60)
        wait_count(rdir, 200, 15, "receiver on the other daemon")
        time.sleep(0.3)
        check_same(sdir, rdir, 50)
        assert "WARNING" not in rx.text(), rx.text()[-2000:]
        print("rtcpeer across two daemons: 200 of 200 messages, in order, byte for byte")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    except Exception:
        for d in (a, b):
            if d:
                sys.stderr.write("---- daemon log ----\n" + d.text()[-4000:])
        if rx:
            sys.stderr.write("---- rx log ----\n" + rx.text()[-3000:])
        raise
    finally:
        if rx:
            rx.stop()
        for d in (a, b):
            if d:
                d.kill()
        r.stop()


if __name__ == "__main__":
    sys.exit(main())
