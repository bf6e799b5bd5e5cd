#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes a minimal Janus configuration for pointcast into a folder: only the VideoRoom plugin and
the WebSocket transport are loaded, ICE is limited to one address and no STUN server is used.
Janus never gathers loopback candidates (it skips IFF_LOOPBACK interfaces), so on one host the
address is the host's own first global IPv4 address: traffic still never leaves the machine.
The tests and the fan-out benchmark generate theirs with it; deploy/janus/etc/ is its output
for a server (`janusconf.py etc --ws-ip 0.0.0.0 --ice-ip eth0 --configs-folder /etc/janus`).

Usage: janusconf.py DIR [--ws-ip IP] [--ws-port PORT] [--ice-ip IP|IFACE] [--configs-folder D]
"""
import argparse
import glob
import os
import subprocess

LIB = "/usr/lib/x86_64-linux-gnu/janus"


def others(kind, keep):
    # Janus loads every .so in a folder unless listed in `disable`.
    names = [os.path.basename(p) for p in glob.glob(f"{LIB}/{kind}/*.so")]
    return ",".join(sorted(n for n in names if n != keep))


def local_ipv4():
    """The host's first global IPv4 address, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def write(folder, ws_ip="127.0.0.1", ws_port=8188, ice_ip=None, debug_level=4, configs_folder=None):
    ice_ip = ice_ip or local_ipv4() or "127.0.0.1"
    os.makedirs(folder, exist_ok=True)
    head = "# SPDX-License-Identifier: LGPL-2.1-or-later\n# Written by deploy/janus/janusconf.py\n"
    with open(os.path.join(folder, "janus.jcfg"), "w") as f:
        f.write(head + f"""general: {{
\tconfigs_folder = "{configs_folder or folder}"
\tplugins_folder = "{LIB}/plugins"
\ttransports_folder = "{LIB}/transports"
\tevents_folder = "{LIB}/events"
\tloggers_folder = "{LIB}/loggers"
\tdebug_level = {debug_level}
\t# idle sessions go after this; rtcpeer sends a keepalive every 25 s
\tsession_timeout = 60
}}
nat: {{
\tnice_debug = false
\tice_enforce_list = "{ice_ip}"
\t# candidates are trickled to rtcpeer as Janus finds them
\tfull_trickle = true
}}
plugins: {{
\tdisable = "{others('plugins', 'libjanus_videoroom.so')}"
}}
transports: {{
\tdisable = "{others('transports', 'libjanus_websockets.so')}"
}}
loggers: {{
\tdisable = "{others('loggers', '')}"
}}
events: {{
\tbroadcast = false
\tdisable = "{others('events', '')}"
}}
""")
    with open(os.path.join(folder, "janus.transport.websockets.jcfg"), "w") as f:
        f.write(head + f"""general: {{
\tjson = "compact"
\tws = true
\tws_ip = "{ws_ip}"
\tws_port = {ws_port}
\twss = false
}}
admin: {{
\tadmin_ws = false
}}
""")
    with open(os.path.join(folder, "janus.plugin.videoroom.jcfg"), "w") as f:
        # Rooms are created on demand by rtcpeer (request "create"); room 1234 is there from the
        # start for clients that cannot create one.
        f.write(head + """general: {
}
room-1234: {
\tdescription = "pointcast"
\tpublishers = 16
\tvideocodec = "vp8"
\taudiocodec = "opus"
}
""")
    return os.path.join(folder, "janus.jcfg")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--ws-ip", default="127.0.0.1")
    ap.add_argument("--ws-port", type=int, default=8188)
    ap.add_argument("--ice-ip", help="address or interface for media (default: the first global "
                    "IPv4 address)")
    ap.add_argument("--configs-folder", help="where Janus will read these files (default: DIR)")
    a = ap.parse_args()
    print(write(os.path.abspath(a.dir), a.ws_ip, a.ws_port, a.ice_ip,
                configs_folder=a.configs_folder))
