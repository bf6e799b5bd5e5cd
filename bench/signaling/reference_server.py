#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reference room-protocol signaling server in Python `websockets` (the kind users run today),
used as the baseline in the signaling benchmark. Same protocol as pointcast-signaling's /ws:
register/registered (+peer types), offer/answer/ice_candidate relayed with from_id (broadcast
without target_id), peer_joined/peer_left, error replies.

Usage: reference_server.py [--host 127.0.0.1] [--port 0]; prints "listening on PORT" on stdout.
"""
import argparse
import asyncio
import json
import resource
import sys

import websockets

rooms = {}  # room -> {client_id: (websocket, client_type)}


def error(code, message):
    return json.dumps({"type": "error", "code": code, "message": message})


async def handler(ws, path=None):
    me = None
    room = None
    try:
        async for raw in ws:
            try:
                msg = json.loads(raw)
            except ValueError as e:
                await ws.send(error("bad_json", str(e)))
                continue
            if not isinstance(msg, dict):
                await ws.send(error("not_object", "a message must be a JSON object"))
                continue
            mtype = msg.get("type")
            if mtype == "register":
                cid, rid = msg.get("client_id"), msg.get("room_id", "default")
                if not isinstance(cid, str) or not cid:
                    await ws.send(error("missing_field", "client_id"))
                    continue
                if me is not None:
                    await ws.send(error("already_registered", me))
                    continue
                members = rooms.setdefault(rid, {})
                if cid in members:
                    await ws.send(error("duplicate_client_id", cid))
                    continue
                ctype = msg.get("client_type", "unknown")
                peers = list(members)
                await ws.send(json.dumps({"type": "registered", "client_id": cid, "room_id": rid, "peers": peers,
                                          "peer_types": {p: members[p][1] for p in peers}}))
                joined = json.dumps({"type": "peer_joined", "client_id": cid, "client_type": ctype})
                for other, _ in members.values():
                    await other.send(joined)
                members[cid] = (ws, ctype)
                me, room = cid, rid
            elif mtype in ("offer", "answer", "ice_candidate"):
                if me is None:
                    await ws.send(error("not_registered", "register first"))
                    continue
                msg["from_id"] = me
                target = msg.get("target_id")
                members = rooms[room]
                if target is None:
                    out = json.dumps(msg)
                    for cid, (other, _) in list(members.items()):
                        if cid != me:
                            await other.send(out)
                elif target in members:
                    await members[target][0].send(json.dumps(msg))
                else:
                    await ws.send(error("unknown_target", target))
            else:
                await ws.send(error("unknown_type", str(mtype)))
    except websockets.exceptions.ConnectionClosed:
        pass
    finally:
        if me is not None:
            members = rooms.get(room, {})
            members.pop(me, None)
            left = json.dumps({"type": "peer_left", "client_id": me})
            for other, _ in list(members.values()):
                try:
                    await other.send(left)
                except websockets.exceptions.ConnectionClosed:
                    pass
            if not members:
                rooms.pop(room, None)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    async with websockets.serve(handler, args.host, args.port, max_size=1 << 20, backlog=1024) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on %d" % port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
