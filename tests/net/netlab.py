# SPDX-License-Identifier: LGPL-2.1-or-later
"""netlab: network namespaces joined by pcnet-router (an impairment router over TUN devices) or
by plain veth pairs, a TURN server, and commands run inside the namespaces; everything is torn
down on exit, on failure, and on SIGTERM (meson's timeout). Names carry the pid and a random
tag, so parallel runs do not clash, and namespaces left by a run that was SIGKILLed are removed
by the next one.

    with netlab.Lab() as lab:
        net = lab.direct(both="loss=2% delay=25")      # a <-> router <-> b
        lab.popen(net.b, ["some", "server"], log="server")
        lab.run(net.a, ["some", "client", net.addr_b])
        net.router.set("a2b", "down=1")                # at runtime
        print(net.router.stats())

Tests need root: call require_root() first (exits 77, meson's "skipped", with the reason).
"""
import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PREFIX = "pcnet"
BUILD = os.environ.get("POINTCAST_BUILD_ROOT",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
ROUTER = os.environ.get("PCNET_ROUTER", os.path.join(BUILD, "tests", "net", "pcnet-router"))
SKIP = 77

TURN_USER, TURN_PASSWORD, TURN_PORT, TURN_TLS_PORT = "pointcast", "netlab-secret", 3478, 5349
# NAT topologies: servers on the public side, and the gateway every private side sees.
PUBLIC_SERVER, NAT_GATEWAY = "192.0.2.1", "192.168.1.1"


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)



def check(cond, msg):
    """A test assertion that also prints what held (the net tests' logs read as a checklist)."""
    if not cond:
        raise AssertionError(msg)
    print("  ok:", msg)


def run_cases(cases, names, need_turn=False):
    """Runs each named test case (`cases["case_" + name](lab)`) in a lab of its own."""
    require_root(need_turn=need_turn)
    for name in names:
        print(f"{name}:")
        with Lab() as lab:
            cases[f"case_{name}"](lab)
    return 0


def require_root(need_turn=False):
    """Exits with meson's skip status, saying why, when this machine cannot run the lab."""
    if os.geteuid() != 0:
        skip("network namespaces and TUN devices need root (run the net suite as root)")
    if not shutil.which("ip"):
        skip("iproute2's ip is not installed")
    if not os.path.exists("/dev/net/tun"):
        skip("/dev/net/tun is missing")
    if not os.access(ROUTER, os.X_OK):
        skip(f"{ROUTER} is not built")
    if need_turn and not shutil.which("turnserver"):
        skip("coturn (turnserver) is not installed: ./pointcast setup installs it")
    # Root in a container without CAP_NET_ADMIN cannot make namespaces: say so, do not fail.
    probe = f"{PREFIX}-{os.getpid()}-probe-x"
    r = _sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        skip(f"cannot create a network namespace here ({r.stderr.strip()}): needs CAP_NET_ADMIN")
    _sh("ip", "netns", "del", probe, check=False)


def _sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _delete_netns(name):
    # Processes still inside keep the namespace alive: end them (they are the lab's), then delete.
    pids = _sh("ip", "netns", "pids", name, check=False).stdout.split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(int(p), sig)
            except (ProcessLookupError, ValueError):
                pass
        if pids:
            time.sleep(0.2)
        pids = _sh("ip", "netns", "pids", name, check=False).stdout.split()
        if not pids:
            break
    _sh("ip", "netns", "del", name, check=False)


def sweep_stale():
    """Removes the namespaces and work directories of earlier runs whose process is gone
    (e.g. SIGKILLed)."""
    for line in _sh("ip", "netns", "list", check=False).stdout.splitlines():
        m = re.match(rf"({PREFIX}-(\d+)-\w+-\w+)", line)
        if m and not _pid_alive(int(m.group(2))):
            _delete_netns(m.group(1))
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.match(rf"{PREFIX}-(\d+)-[0-9a-f]{{6}}-", name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35  # Linux; the socket module does not export it


class InNetns:
    """`with InNetns(name):` makes this thread's new sockets belong to namespace NAME."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {self.name}")
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        _libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)


class Router:
    """A running pcnet-router; settings change at runtime through its control socket. t0: when
    its schedule's clock started (time.monotonic_ns())."""

    def __init__(self, lab, proc, control, log):
        self.lab, self.proc, self.control, self.log = lab, proc, control, log

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.control)
            s.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()

    def set(self, direction, settings):
        reply = self.command(f"set {direction} {settings}")
        if reply != "ok":
            raise ValueError(f"router: {reply}")

    def stats(self):
        return json.loads(self.command("stats"))

    def get(self):
        return json.loads(self.command("get"))


class Net:
    """A topology: its namespaces and addresses by role."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Lab:
    def __init__(self, keep_logs=False):
        sweep_stale()
        self.tag = f"{PREFIX}-{os.getpid()}-{random.getrandbits(24):06x}"
        self.namespaces = []
        self.procs = []
        self.routers = 0
        self.workdir = tempfile.mkdtemp(prefix=self.tag + "-")
        self.keep_logs = keep_logs
        self.closed = False
        atexit.register(self.close)
        # meson's timeout sends SIGTERM: turn it into an exception so that finally/with run.
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        # PCNET_KEEP_FAILED=1: a failed case's logs (sender, routers, viewers) stay for a look,
        # under a name the next lab's sweep_stale leaves alone.
        keep = exc_type is not None and bool(os.environ.get("PCNET_KEEP_FAILED"))
        self.keep_logs |= keep
        self.close()
        if keep:
            kept = self.workdir.replace(f"{PREFIX}-", f"{PREFIX}-failed-", 1)
            os.rename(self.workdir, kept)
            print(f"  logs kept in {kept}", file=sys.stderr)

    # -- building blocks ------------------------------------------------------------------------
    def netns(self, short):
        name, n = f"{self.tag}-{short}", 1
        while name in self.namespaces:   # a second topology in the same lab
            n += 1
            name = f"{self.tag}-{short}{n}"
        _sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        _sh("ip", "-n", name, "link", "set", "lo", "up")
        # A new namespace copies the host's IPv4 forwarding setting (on where Docker runs):
        # none of ours forwards, so only the router and the TURN relay join them.
        _sh("ip", "netns", "exec", name, "sh", "-c",
            "echo 0 > /proc/sys/net/ipv4/conf/all/forwarding")
        return name

    def tun(self, ns, dev, addr, peer):
        """A point-to-point TUN device in NS: ADDR here, PEER on the other side of the router."""
        _sh("ip", "-n", ns, "tuntap", "add", "dev", dev, "mode", "tun")
        _sh("ip", "-n", ns, "addr", "add", f"{addr}/32", "peer", f"{peer}/32", "dev", dev)
        _sh("ip", "-n", ns, "link", "set", dev, "up")

    def veth(self, ns_a, dev_a, cidr_a, ns_b, dev_b, cidr_b):
        """A plain (unimpaired) cable between two namespaces."""
        _sh("ip", "link", "add", "name", dev_a, "netns", ns_a, "type", "veth",
            "peer", "name", dev_b, "netns", ns_b)
        for ns, dev, cidr in ((ns_a, dev_a, cidr_a), (ns_b, dev_b, cidr_b)):
            _sh("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "up")

    def router(self, a, b, a2b="", b2a="", both="", schedule=None, seed=None, nat=None):
        """Starts pcnet-router between the TUN devices A and B ("NETNS:DEV"); returns when ready.
        NAT: pcnet-router's --nat settings (A is then the private side)."""
        self.routers += 1
        name = f"router{self.routers}"
        control = os.path.join(self.workdir, name + ".sock")
        args = [ROUTER, "--a", a, "--b", b, "--control", control, "--realtime"]
        for flag, value in (("--both", both), ("--a2b", a2b), ("--b2a", b2a)):
            if value:
                args += [flag, value]
        if schedule:
            path = os.path.join(self.workdir, name + ".schedule")
            with open(path, "w") as f:
                f.write(schedule)
            args += ["--schedule", path]
        if seed is not None:
            args += ["--seed", str(seed)]
        if nat:
            args += ["--nat", nat]
        log = os.path.join(self.workdir, name + ".log")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        self.procs.append(proc)
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.wait(5)
            raise RuntimeError(f"pcnet-router did not start: {open(log).read()}")
        router = Router(self, proc, control, log)
        router.t0 = int(re.search(r"t0=(\d+)", line).group(1))   # CLOCK_MONOTONIC ns
        # The kernel turns a TUN device's carrier on when the router attaches, but activates its
        # queue only when linkwatch gets to it (up to ~1 s later): a packet sent before that is
        # dropped without an error (a NAT test's first packet, 1 run in 3). Wait for "state UP".
        for ns, dev in (spec.split(":", 1) for spec in (a, b)):
            cmd = ["ip", "-o", "link", "show", "dev", dev] if ns == "-" else \
                ["ip", "-n", ns, "-o", "link", "show", "dev", dev]
            deadline = time.monotonic() + 5
            while "state UP" not in _sh(*cmd, check=False).stdout and time.monotonic() < deadline:
                time.sleep(0.02)
        return router

    def popen(self, ns, cmd, log=None, env=None, **kw):
        """Starts CMD inside NS (ip netns exec replaces itself by CMD: the pid is CMD's)."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        if log is not None:
            kw.setdefault("stdout", open(self.logpath(log), "w"))
            kw.setdefault("stderr", subprocess.STDOUT)
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + list(cmd), env=full_env, **kw)
        self.procs.append(proc)
        return proc

    def run(self, ns, cmd, timeout=60, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", ns] + list(cmd), timeout=timeout, **kw)

    def logpath(self, name):
        return os.path.join(self.workdir, name + ".log")

    def read_log(self, name):
        with open(self.logpath(name), errors="replace") as f:
            return f.read()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in reversed(self.namespaces):
            _delete_netns(ns)
        if not self.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- topologies -----------------------------------------------------------------------------
    def direct(self, a2b="", b2a="", both="", schedule=None, seed=None):
        """a <-> pcnet-router <-> b: the only path between a (10.99.0.1) and b (10.99.0.2)."""
        a, b = self.netns("a"), self.netns("b")
        addr_a, addr_b = "10.99.0.1", "10.99.0.2"
        self.tun(a, "pcn0", addr_a, addr_b)
        self.tun(b, "pcn0", addr_b, addr_a)
        r = self.router(f"{a}:pcn0", f"{b}:pcn0", a2b=a2b, b2a=b2a, both=both,
                        schedule=schedule, seed=seed)
        return Net(a=a, b=b, addr_a=addr_a, addr_b=addr_b, router=r)

    def star(self, *links):
        """One sender s and a viewer per entry of LINKS (router settings for both directions),
        each behind its own pcnet-router: viewer i (10.99.1i.2) reaches s only at 10.99.1i.1.
        Returns Net(s=, viewers=[Net(ns=, addr=, s_addr=, router=)])."""
        s = self.netns("s")
        viewers = []
        for i, settings in enumerate(links):
            v = self.netns(f"v{i}")
            addr_s, addr_v = f"10.99.{10 + i}.1", f"10.99.{10 + i}.2"
            self.tun(s, f"pcn{i}", addr_s, addr_v)
            self.tun(v, "pcn0", addr_v, addr_s)
            r = self.router(f"{s}:pcn{i}", f"{v}:pcn0", both=settings)
            viewers.append(Net(ns=v, addr=addr_v, s_addr=addr_s, router=r))
        return Net(s=s, viewers=viewers)

    def turn_only(self, impair_a=None, turn=True, listen=("udp", "tcp")):
        """a and b each see only namespace t (10.99.1.0/24 and 10.99.2.0/24, their default route),
        which does not forward between them (forwarding is switched off in every lab namespace):
        a and b can talk only through the TURN server in t. With IMPAIR_A (router settings), a's
        cable to t is pcnet-router. TURN=False: no TURN server (no path at all); LISTEN: the
        client transports coturn listens on (udp, tcp on TURN_PORT; tls on TURN_TLS_PORT)."""
        a, b, t = self.netns("a"), self.netns("b"), self.netns("t")
        if impair_a is None:
            self.veth(a, "pcn0", "10.99.1.2/24", t, "pcna", "10.99.1.1/24")
            router = None
        else:
            self.tun(a, "pcn0", "10.99.1.2", "10.99.1.1")
            self.tun(t, "pcna", "10.99.1.1", "10.99.1.2")
            router = self.router(f"{a}:pcn0", f"{t}:pcna", both=impair_a)
        self.veth(b, "pcn0", "10.99.2.2/24", t, "pcnb", "10.99.2.1/24")
        # Default routes into t: a relay address on t's other side must be able to answer
        # (coturn picks relay addresses round-robin), and a or b sending to the other's host
        # address only reaches t, which does not forward it.
        _sh("ip", "-n", a, "route", "add", "default", "via", "10.99.1.1")
        _sh("ip", "-n", b, "route", "add", "default", "via", "10.99.2.1")
        net = Net(a=a, b=b, t=t, addr_a="10.99.1.2", addr_b="10.99.2.2",
                  turn_a="10.99.1.1", turn_b="10.99.2.1", router=router)
        net.turn = self.turnserver(t, ["10.99.1.1", "10.99.2.1"], listen) if turn else None
        net.turn_cert = os.path.join(self.workdir, "turn.crt") if "tls" in listen else None
        return net

    def public(self, servers=(PUBLIC_SERVER,)):
        """The public side ("the internet"): namespace pub holding the SERVERS addresses, which
        forwards between the NATs' public addresses (routes are added per NAT by nat_side)."""
        pub = self.netns("pub")
        _sh("ip", "netns", "exec", pub, "sh", "-c",
            "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding")
        for addr in servers[1:]:
            _sh("ip", "-n", pub, "addr", "add", f"{addr}/32", "dev", "lo")
        # Like the internet, it drops what it cannot route (private addresses: ICE's host
        # candidates) without an error: coturn ends an allocation whose relay socket got
        # "Network is unreachable" sending to such a peer ("closed ... reason: general"). The
        # default route leads to namespace void, which does not forward (and so sends no ICMP).
        void = self.netns("void")
        self.veth(pub, "pcnvoid", "100.127.255.1/30", void, "pcn0", "100.127.255.2/30")
        _sh("ip", "-n", pub, "route", "add", "default", "via", "100.127.255.2")
        return pub

    def nat_side(self, pub, short, nat, private, public, both="", timeout=None):
        """Namespace SHORT at PRIVATE (gateway NAT_GATEWAY, its default route) behind
        pcnet-router's NAT (NAT: cone or symmetric, optionally with more settings such as
        "filter=address") whose public address PUBLIC is routed to it from PUB. Returns
        Net(ns=, addr=, public=, router=)."""
        ns = self.netns(short)
        self.tun(ns, "pcn0", private, NAT_GATEWAY)
        _sh("ip", "-n", ns, "route", "add", "default", "via", NAT_GATEWAY)
        dev = f"pcn{short}"
        self.tun(pub, dev, PUBLIC_SERVER, public)
        settings = ("type=" + nat if "=" not in nat.split()[0] else nat) + f" ip={public}"
        if timeout is not None:
            settings += f" timeout={timeout}"
        r = self.router(f"{ns}:pcn0", f"{pub}:{dev}", both=both, nat=settings)
        return Net(ns=ns, addr=private, public=public, router=r)

    def nat_pair(self, nat_a="cone", nat_b="cone", turn=True, both="", listen=("udp", "tcp")):
        """a (192.168.1.10) and b (192.168.1.20), each behind a NAT of its own (NAT_A, NAT_B:
        cone or symmetric, optionally with more settings, e.g. "cone udp=block"; public
        198.51.100.11 and 203.0.113.22), and the public namespace t (192.0.2.1) with coturn
        (STUN and TURN on udp and tcp/3478, LISTEN as for turn_only; TURN=False: none) that the
        signaling daemon also uses. The private addresses are routed nowhere beyond the NAT, so
        a and b reach each other only through the NATs' mappings (or the relay)."""
        t = self.public()
        side_a = self.nat_side(t, "a", nat_a, "192.168.1.10", "198.51.100.11", both=both)
        side_b = self.nat_side(t, "b", nat_b, "192.168.1.20", "203.0.113.22", both=both)
        net = Net(a=side_a.ns, b=side_b.ns, t=t, addr_a=side_a.addr, addr_b=side_b.addr,
                  public_a=side_a.public, public_b=side_b.public, nat_a=side_a.router,
                  nat_b=side_b.router, turn_a=PUBLIC_SERVER, turn_b=PUBLIC_SERVER, router=None)
        net.turn = self.turnserver(t, [PUBLIC_SERVER], listen) if turn else None
        net.turn_cert = os.path.join(self.workdir, "turn.crt") if turn and "tls" in listen else None
        net.stun = f"stun://{PUBLIC_SERVER}:{TURN_PORT}"
        return net

    def turn_only_v6(self, keep_family=True):
        """The TURN-only topology over IPv6 alone (ULA addresses, no IPv4 between the
        namespaces): a (fd99:1::2) and b (fd99:2::2) see only t (fd99:1::1, fd99:2::1), which
        does not forward; coturn in t listens and relays on both v6 addresses (udp/tcp 3478).
        libnice 0.1.21 never sends REQUESTED-ADDRESS-FAMILY, so by RFC 6156 it asks for an IPv4
        relay: KEEP_FAMILY gives coturn --allocation-default-address-family=keep (a relay of the
        family the client came over); without it coturn answers 440."""
        a, b, t = self.netns("a"), self.netns("b"), self.netns("t")
        for ns in (a, b, t):
            _sh("ip", "netns", "exec", ns, "sh", "-c",
                "echo 0 > /proc/sys/net/ipv6/conf/all/forwarding")
        for ns, dev, addr, tdev, taddr in ((a, "pcn0", "fd99:1::2", "pcna", "fd99:1::1"),
                                           (b, "pcn0", "fd99:2::2", "pcnb", "fd99:2::1")):
            _sh("ip", "link", "add", "name", dev, "netns", ns, "type", "veth",
                "peer", "name", tdev, "netns", t)
            for n, d, ad in ((ns, dev, addr), (t, tdev, taddr)):
                _sh("ip", "-n", n, "addr", "add", f"{ad}/64", "dev", d, "nodad")
                _sh("ip", "-n", n, "link", "set", d, "up")
            _sh("ip", "-n", ns, "-6", "route", "add", "default", "via", taddr)
        net = Net(a=a, b=b, t=t, addr_a="fd99:1::2", addr_b="fd99:2::2",
                  turn_a="fd99:1::1", turn_b="fd99:2::1", router=None)
        keep = ["--allocation-default-address-family=keep"] if keep_family else []
        net.turn = self.turnserver(t, [net.turn_a, net.turn_b], extra=keep)
        return net

    def certificate(self, name, addresses):
        """A self-signed certificate for the IP ADDRESSES and its key, made here with the openssl
        CLI: (cert path, key path)."""
        cert, key = (os.path.join(self.workdir, f"{name}.{x}") for x in ("crt", "key"))
        san = ",".join(f"IP:{a}" for a in addresses)
        _sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={addresses[0]}", "-addext",
            f"subjectAltName={san}", "-keyout", key, "-out", cert)
        return cert, key

    def turnserver(self, ns, addresses, listen=("udp", "tcp"), extra=()):
        """coturn with long-term credentials (TURN_USER/TURN_PASSWORD) listening for clients on
        the transports in LISTEN (udp/tcp on TURN_PORT, tls on TURN_TLS_PORT with a self-signed
        certificate) and relaying over UDP on ADDRESSES in NS; its own config, nothing from /etc."""
        db = os.path.join(self.workdir, "turndb")
        args = ["turnserver", "-n", "--no-dtls", "--no-cli", "--lt-cred-mech",
                "--user", f"{TURN_USER}:{TURN_PASSWORD}", "--realm", "pointcast",
                "--listening-port", str(TURN_PORT), "--min-port", "49152", "--max-port", "49999",
                "--userdb", db, "--pidfile", os.path.join(self.workdir, "turn.pid"),
                "--log-file", self.logpath("turnserver"), "--simple-log", "--verbose", "--no-software-attribute"]
        args += [] if "udp" in listen else ["--no-udp"]
        args += [] if "tcp" in listen else ["--no-tcp"]
        if "tls" in listen:
            cert, key = self.certificate("turn", addresses)
            args += ["--tls-listening-port", str(TURN_TLS_PORT), "--cert", cert, "--pkey", key]
        else:
            args += ["--no-tls"]
        for a in addresses:
            args += ["--listening-ip", a, "--relay-ip", a]
        args += list(extra)
        proc = self.popen(ns, args, log="turnserver-out")
        want = [("-lun", TURN_PORT)] if "udp" in listen else []
        want += [("-ltn", TURN_PORT)] if "tcp" in listen else []
        want += [("-ltn", TURN_TLS_PORT)] if "tls" in listen else []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver ended: {self.read_log('turnserver')[-2000:]}")
            if all(f"{f'[{a}]' if ':' in a else a}:{port}" in self.run(ns, ["ss", flag]).stdout
                   for a in addresses for flag, port in want):
                return proc
            time.sleep(0.1)
        raise RuntimeError(f"turnserver did not listen: {self.read_log('turnserver')[-2000:]}")

    def listening(self, ns):
        """(proto, address:port) of every listening UDP and TCP socket in NS."""
        out = set()
        for flag, proto in (("-lun", "udp"), ("-ltn", "tcp")):
            for line in self.run(ns, ["ss", "-H", flag]).stdout.splitlines():
                cols = line.split()
                if len(cols) >= 4:
                    out.add((proto, cols[3]))
        return out


def turn_uri(host, transport=None, password=TURN_PASSWORD):
    """rtcpeer's turn-server for coturn at HOST: transport None/udp/tcp (turn://) or tls (turns://)."""
    host = f"[{host}]" if ":" in host else host
    if transport == "tls":
        return f"turns://{TURN_USER}:{password}@{host}:{TURN_TLS_PORT}"
    uri = f"turn://{TURN_USER}:{password}@{host}:{TURN_PORT}"
    return uri + (f"?transport={transport}" if transport else "")


def wait_tcp(ns, host, port, timeout=10):
    """Waits until HOST:PORT accepts TCP connections from namespace NS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with InNetns(ns):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            s.settimeout(0.5)
            s.connect((host, port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise AssertionError(f"nothing listens on {host}:{port} (seen from {ns}) after {timeout} s")


class Probe:
    """UDP probes from namespace SRC to DST: each packet carries its sequence number and send
    time; the receiver takes the kernel's arrival timestamp (SO_TIMESTAMPNS), so the receiving
    thread's scheduling on a loaded machine does not count as network delay."""

    def __init__(self, src_ns, src_addr, dst_ns, dst_addr, port=47000):
        with InNetns(dst_ns):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.rx.bind((dst_addr, port))
        with InNetns(src_ns):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.bind((src_addr, 0))
        self.dst = (dst_addr, port)

    def close(self):
        self.rx.close()
        self.tx.close()

    def run(self, count, interval, size=100, linger=1.0):
        """Sends COUNT packets of SIZE bytes (UDP payload), one per INTERVAL s, and collects
        what arrives until LINGER s after the last. Returns (sent send-times in ns by seq,
        arrivals [(seq, send_ns, recv_ns)] in arrival order)."""
        import threading
        import struct
        arrivals = []
        done = threading.Event()

        def realtime():
            # Both threads SCHED_FIFO (below the router): the sender must not wait for the GIL
            # behind a receiver thread preempted by the machine's load.
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
            except OSError:
                pass

        def receive():
            realtime()
            self.rx.settimeout(0.1)
            while True:
                try:
                    data, anc, _, _ = self.rx.recvmsg(65536, socket.CMSG_SPACE(16))
                except socket.timeout:
                    if done.is_set():
                        return
                    continue
                recv_ns = time.time_ns()
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", raw[:16])
                        recv_ns = sec * 1_000_000_000 + nsec
                seq, send_ns = struct.unpack_from("<qq", data)
                arrivals.append((seq, send_ns, recv_ns))

        t = threading.Thread(target=receive)
        t.start()
        sent = []
        pad = b"\0" * max(0, size - 16)
        policy = os.sched_getscheduler(0)
        realtime()
        try:
            start = time.monotonic()
            for seq in range(count):
                # Paced against the start so that a late wake-up does not slow the whole train.
                delay = start + seq * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                now = time.time_ns()
                sent.append(now)
                self.tx.sendto(struct.pack("<qq", seq, now) + pad, self.dst)
        finally:
            os.sched_setscheduler(0, policy, os.sched_param(0))
        time.sleep(linger)
        done.set()
        t.join()
        return sent, arrivals


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="netlab.py", description="the network test harness by hand")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a topology, print how to use it, tear it down on Ctrl-C")
    up.add_argument("topology", choices=["direct", "turn", "nat"])
    for flag in ("--both", "--a2b", "--b2a"):
        up.add_argument(flag, default="", help="router settings (direct), e.g. 'loss=2%% delay=25'")
    up.add_argument("--listen", default="udp,tcp",
                    help="turn, nat: the client transports coturn listens on (udp,tcp,tls)")
    for flag in ("--nat-a", "--nat-b"):
        up.add_argument(flag, default="cone", help="nat: cone, symmetric or pcnet-router --nat "
                        "settings such as 'type=cone filter=address' or 'cone udp=block'")
    ctl = sub.add_parser("ctl", help="send one command to a running pcnet-router")
    ctl.add_argument("socket")
    ctl.add_argument("command", nargs="+", help="set a2b|b2a|both SETTINGS | get | stats")
    args = ap.parse_args(argv)
    if args.cmd == "ctl":
        print(Router(None, None, args.socket, None).command(" ".join(args.command)))
        return 0
    require_root(need_turn=args.topology in ("turn", "nat"))
    with Lab() as lab:
        if args.topology == "nat":
            net = lab.nat_pair(args.nat_a, args.nat_b, listen=tuple(args.listen.split(",")))
            for side in ("a", "b"):
                ns, addr = getattr(net, side), getattr(net, "addr_" + side)
                router = getattr(net, "nat_" + side)
                print(f"{side}: ip netns exec {ns} ...   ({addr} behind "
                      f"{getattr(net, 'public_' + side)}; NAT: {sys.argv[0]} ctl {router.control} "
                      "nat [flush [udp|tcp]])")
            print(f"t: ip netns exec {net.t} ...   (public side: coturn at {PUBLIC_SERVER})")
            print(f"rtcpeer: stun-server={net.stun} turn-server={turn_uri(PUBLIC_SERVER)}"
                  + (f" (turns: turn-tls-ca={net.turn_cert})" if net.turn_cert else ""))
        elif args.topology == "direct":
            net = lab.direct(both=args.both, a2b=args.a2b, b2a=args.b2a)
            print(f"a: ip netns exec {net.a} ...   ({net.addr_a})")
            print(f"b: ip netns exec {net.b} ...   ({net.addr_b})")
            print(f"router: {sys.argv[0]} ctl {net.router.control} stats | set both loss=5%")
        else:
            listen = tuple(args.listen.split(","))
            net = lab.turn_only(listen=listen)
            for ns, addr, turn in ((net.a, net.addr_a, net.turn_a), (net.b, net.addr_b, net.turn_b)):
                uris = " ".join(turn_uri(turn, None if x == "udp" and "tcp" in listen else x)
                                for x in listen if not (x == "tcp" and "udp" in listen))
                print(f"{ns[-1]}: ip netns exec {ns} ...   ({addr}; TURN at {uris})")
            print(f"t: ip netns exec {net.t} ...   (coturn; {net.turn_a} and {net.turn_b}"
                  + (f"; certificate {net.turn_cert}, for turn-tls-ca)" if net.turn_cert else ")"))
        print("Ctrl-C tears it all down.", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
