#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""netlab leaves nothing behind: a lab whose test raises, one stopped by SIGTERM (meson's
timeout) and one SIGKILLed (swept by the next lab) all end with their namespaces deleted and
their processes (router, commands inside the namespaces) gone; two labs at once do not clash."""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netlab  # noqa: E402

# A child that builds a topology, starts a command inside it, prints its tag, then misbehaves.
CHILD = r"""
import sys, time
sys.path.insert(0, %r)
import netlab
lab = netlab.Lab()
net = lab.direct(both="delay=5")
lab.popen(net.b, ["sleep", "600"])
print(lab.tag, net.router.proc.pid, flush=True)
if sys.argv[1] == "raise":
    with lab:
        raise RuntimeError("a failing test")
time.sleep(600)
""" % HERE


def namespaces(tag):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(tag)]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def start_child(mode):
    p = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True)
    tag, router = p.stdout.readline().split()
    assert len(namespaces(tag)) == 2, namespaces(tag)
    return p, tag, int(router)


def check_gone(tag, router, how):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (namespaces(tag) or alive(router)):
        time.sleep(0.1)
    assert not namespaces(tag), f"{how}: namespaces left: {namespaces(tag)}"
    assert not alive(router), f"{how}: router {router} still running"
    print(f"  ok: {how}: namespaces and router gone")


def main():
    netlab.require_root()
    p, tag, router = start_child("raise")
    p.wait(30)
    check_gone(tag, router, "exception")

    p, tag, router = start_child("sleep")
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    check_gone(tag, router, "SIGTERM")

    p, tag, router = start_child("sleep")
    other, other_tag, _ = start_child("sleep")   # a second lab at the same time
    assert other_tag != tag
    p.kill()
    p.wait()
    with netlab.Lab():   # sweeps what the killed run left
        pass
    check_gone(tag, router, "SIGKILL, then the next lab")
    import tempfile
    left = [d for d in os.listdir(tempfile.gettempdir()) if d.startswith(tag + "-")]
    assert not left, f"work directory left: {left}"
    print("  ok: and its work directory")
    assert len(namespaces(other_tag)) == 2, "the sweep must leave a live run's namespaces alone"
    print("  ok: a live lab's namespaces survive the sweep")
    other.send_signal(signal.SIGTERM)
    other.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
