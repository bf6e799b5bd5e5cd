#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's OpenAPI document (signaling/docs/openapi.json) against the daemon itself:

- every route the daemon's sources install (Server::add_route, soup_server_add_handler) is a
  documented path;
- requests to every documented operation, including the failures that can be provoked, answer
  with a status the document lists for that operation, a content type it lists for that status
  (or no body where it lists none), and a body matching that content's schema;
- with --token, the operations that declare the bearer scheme refuse a request without it (401)
  and those with `security: []` stay open.

Usage: test_openapi.py DAEMON"""
import asyncio
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

import jsonschema
import websockets

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
DOC_PATH = os.path.join(ROOT, "signaling", "docs", "openapi.json")
DOC = json.load(open(DOC_PATH))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP "
       "webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n")
probed = set()  # (doc path, method) answered at least once


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Daemon:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.argv[1], "--host", "127.0.0.1", "--port", "0", "--log-level", "INFO",
             "--web-root", os.path.join(ROOT, "signaling", "web"),
             "--docs-root", os.path.join(ROOT, "signaling", "docs"), *args],
            stderr=subprocess.PIPE, text=True)
        self.log = []
        while True:
            line = self.proc.stderr.readline()
            check(line, "daemon exited: %s" % "".join(self.log))
            self.log.append(line)
            if "listening on" in line:
                self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
                break
        threading.Thread(target=lambda: [self.log.append(l) for l in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def doc_operation(path):
    """The documented path template matching a concrete path: literal segments beat templates."""
    best = None
    path = path.split("?")[0]
    for tmpl in DOC["paths"]:
        # {path} (the static files) spans folders; other parameters are one segment.
        rx = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: ".+" if m.group(1) == "path" else "[^/]+",
                          re.escape(tmpl)) + "$"
        if re.match(rx, path):
            score = (tmpl.count("{"), -len(tmpl))
            if best is None or score < best[0]:
                best = (score, tmpl)
    return best and best[1]


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read() if r.getheader("Content-Type", "").split(";")[0] != "text/event-stream" else r.read(64)
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def body_matches(where, schema, ctype, data):
    """The body against the documented schema (JSON bodies parsed, text ones as strings)."""
    if not schema or ctype.startswith("image/"):
        return
    value = json.loads(data) if ctype.endswith("json") else data.decode()
    # The document is the root, so "#/components/..." references resolve.
    errors = list(jsonschema.Draft202012Validator(dict(schema, components=DOC["components"])).iter_errors(value))
    check(not errors, "%s: body %r does not match its documented schema: %s"
          % (where, data[:200], "; ".join(e.message for e in errors[:3])))


def probe(port, method, path, body=None, headers=None, expect=None):
    """One request, checked against the document. Returns (status, headers, body)."""
    status, hdrs, data = request(port, method, path, body, headers)
    tmpl = doc_operation(path.split("?")[0])
    where = "%s %s" % (method, path)
    check(tmpl, "%s: no documented path matches" % where)
    op = DOC["paths"][tmpl].get(method.lower())
    check(op is not None, "%s: %s has no %s operation" % (where, tmpl, method))
    probed.add((tmpl, method.lower()))
    responses = op["responses"]
    check(str(status) in responses, "%s answered %d, documented %s for %s" % (where, status, sorted(responses), tmpl))
    if expect is not None:
        check(status == expect, "%s: %d, the test expected %d (%s)" % (where, status, expect, data[:200]))
    resp = responses[str(status)]
    if "$ref" in resp:
        resp = DOC["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    ctype = hdrs.get("content-type", "").split(";")[0].strip()
    content = resp.get("content")
    if content:
        check(ctype in content, "%s: Content-Type %r, documented %s" % (where, ctype, sorted(content)))
        body_matches(where, content[ctype].get("schema"), ctype, data)
    else:
        check(not data, "%s: %d has a body (%r) where none is documented" % (where, status, data[:100]))
    for h in resp.get("headers", {}):
        check(h.lower() in hdrs, "%s: documented header %s missing" % (where, h))
    return status, hdrs, data


def source_routes():
    """Path prefixes the daemon's sources register with libsoup."""
    found = set()
    src = os.path.join(ROOT, "signaling")
    for name in os.listdir(src):
        if not name.endswith(".cpp"):
            continue
        text = open(os.path.join(src, name)).read()
        found.update(re.findall(r'add_route\(\s*"([^"]+)"', text))
        found.update(re.findall(r'soup_server_add_handler\(\s*soup_,\s*"([^"]+)"', text))
        if re.search(r"soup_server_add_handler\(\s*soup_,\s*nullptr", text):
            found.add("/")
    return found


def check_routes_documented():
    routes = source_routes()
    check({"/ws", "/offer", "/healthz", "/metrics", "/api/pipelines", "/openapi.json", "/docs"} <= routes,
          "route scan found too little: %s" % sorted(routes))
    for r in sorted(routes):
        check(any(p == r or p.startswith(r.rstrip("/") + "/") for p in DOC["paths"]),
              "route %s is served but not in openapi.json" % r)
    print("routes in the sources, all documented:", " ".join(sorted(routes)))


async def answerer(port, room, ready):
    """A room member that answers every offer (the /offer bridge's other end)."""
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        await ws.send(json.dumps({"type": "register", "client_id": "ans", "room_id": room,
                                  "client_type": "answerer"}))
        await ws.recv()
        ready.set()
        async for text in ws:
            m = json.loads(text)
            if m["type"] == "offer":
                await ws.send(json.dumps({"type": "answer", "target_id": m["from_id"], "trickle": False,
                                          "sdp": {"type": "answer", "sdp": SDP}}))


async def open_paths(port):
    P = lambda *a, **k: asyncio.to_thread(probe, port, *a, **k)  # noqa: E731
    # Operations and documentation.
    _, _, body = await P("GET", "/openapi.json", expect=200)
    check(json.loads(body) == DOC, "/openapi.json is not signaling/docs/openapi.json")
    _, _, page = await P("GET", "/docs", expect=200)
    check(b"swagger-ui-bundle.js" in page and b"room-protocol.schema.json" in page, "/docs page")
    _, _, schema = await P("GET", "/docs/room-protocol.schema.json", expect=200)
    jsonschema.Draft202012Validator.check_schema(json.loads(schema))
    await P("GET", "/docs/swagger-ui/swagger-ui-bundle.js", expect=200)
    await P("GET", "/docs/swagger-ui/swagger-ui.css", expect=200)
    await P("GET", "/docs/swagger-ui/favicon-32x32.png", expect=200)
    await P("GET", "/docs/swagger-ui/nope.js", expect=404)
    await P("GET", "/docs/swagger-ui/.hidden", expect=404)  # only plain names
    _, _, ok = await P("GET", "/healthz", expect=200)
    check(ok == b"ok\n", "healthz body")
    _, _, metrics = await P("GET", "/metrics", expect=200)
    check(b"pointcast_signaling_clients" in metrics, "metrics body")
    # The viewer's files.
    await P("GET", "/", expect=200)
    await P("GET", "/app.js", expect=200)
    await P("GET", "/style.css", expect=200)
    await P("GET", "/no-such-file.txt", expect=404)
    await P("GET", "/a%5cb.txt", expect=400)  # a backslash never reaches the file system
    # WebSocket: a plain GET is not a handshake; a real one switches protocols.
    await P("GET", "/ws", expect=400)
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port):
        pass
    probed.add(("/ws", "get"))
    # /offer: each refusal, then answered offers (JSON and WHIP) and the WHIP DELETE.
    js = {"Content-Type": "application/json"}
    await P("OPTIONS", "/offer", expect=204)
    await P("OPTIONS", "/offer/http-1", expect=204)
    await P("POST", "/offer?room=empty", json.dumps({"sdp": SDP, "type": "offer"}), js, expect=503)
    await P("POST", "/offer", "{not json", js, expect=400)
    await P("POST", "/offer", "<html/>", {"Content-Type": "text/html"}, expect=415)
    await P("POST", "/offer", "x" * (1 << 20 | 1), js, expect=413)
    ready = asyncio.Event()
    task = asyncio.create_task(answerer(port, "lab", ready))
    await asyncio.wait_for(ready.wait(), 10)
    await P("POST", "/offer?room=lab&target=nobody", json.dumps({"sdp": SDP}), js, expect=404)
    _, _, answer = await P("POST", "/offer?room=lab", json.dumps({"sdp": SDP, "type": "offer"}), js, expect=200)
    check(json.loads(answer)["type"] == "answer", "JSON answer")
    _, hdrs, _ = await P("POST", "/offer?room=lab", SDP, {"Content-Type": "application/sdp"}, expect=201)
    await P("DELETE", hdrs["location"], expect=200)
    await P("DELETE", "/offer/http-999", expect=404)
    task.cancel()
    # The pipelines API.
    await P("GET", "/api/pipelines", expect=200)
    await P("POST", "/api/pipelines/bad.name/start", "{}", js, expect=400)
    await P("POST", "/api/pipelines/missing/start", "{}", js, expect=404)
    await P("POST", "/api/pipelines/empty/start", "{}", js, expect=422)
    await P("POST", "/api/pipelines/idle/start", "[1]", js, expect=400)
    _, _, started = await P("POST", "/api/pipelines/idle/start", '{"room":"lab"}', js, expect=201)
    await P("POST", "/api/pipelines/idle/start", "{}", js, expect=429)
    pid = json.loads(started)["id"]
    await P("DELETE", "/api/pipelines/" + pid, expect=202)
    for _ in range(100):
        st, _, _ = await P("DELETE", "/api/pipelines/" + pid)
        if st == 200:
            break
        await asyncio.sleep(0.1)
    check(st == 200, "a stopped pipeline's DELETE answers 200")
    await P("DELETE", "/api/pipelines/no-such-id", expect=404)
    await P("DELETE", "/api/pipelines/bad.id", expect=400)
    await P("GET", "/api/events", expect=200)
    await P("GET", "/api/events?room=bad%20room", expect=400)
    await P("GET", "/api/other", expect=404)


async def token_paths(port):
    """With --token: bearer operations refuse without it, accept with it; open ones stay open. /ws
    takes the token in its register message, so its upgrade is refused only for a token in the URL."""
    P = lambda *a, **k: asyncio.to_thread(probe, port, *a, **k)  # noqa: E731
    bearer = {"Authorization": "Bearer s3cret"}
    for path, op in (("/api/pipelines", "get"), ("/api/events", "get"), ("/api/other", "get"),
                     ("/offer", "post"), ("/offer/http-1", "delete"), ("/ws?token=s3cret", "get"),
                     ("/api/pipelines/idle/start", "post"), ("/api/pipelines/x-1", "delete")):
        tmpl = doc_operation(path)
        sec = DOC["paths"][tmpl][op].get("security")
        check(sec and {"bearer": []} in sec, "%s %s does not declare the bearer scheme" % (op, tmpl))
        st, hdrs, _ = await P(op.upper(), path, "{}" if op == "post" else None, expect=401)
        check("bearer" in hdrs.get("www-authenticate", "").lower(), "%s: WWW-Authenticate" % path)
    await P("GET", "/api/pipelines", headers=bearer, expect=200)
    for path in ("/healthz", "/metrics", "/openapi.json", "/docs", "/docs/room-protocol.schema.json", "/"):
        check(DOC["paths"][doc_operation(path)]["get"].get("security") == [], "%s must be documented open" % path)
        await P("GET", path, expect=200)


def check_schema_rejects():
    """The hook in test_daemon.py can fail: what the daemon must never send is refused."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from room_schema import check_server_message
    good = {"type": "offer", "from_id": "a", "target_id": "b", "sdp": {"type": "offer", "sdp": SDP}, "x": 1}
    check_server_message(good)
    for bad in ({"type": "offer", "sdp": {"type": "offer", "sdp": SDP}},      # relayed without from_id
                {"type": "registered", "client_id": "a", "room_id": "r"},      # no peers
                {"type": "error", "code": "oops", "message": "m"},              # unknown code
                {"type": "peer_left"}, {"type": "register", "client_id": "a"},  # client-only type
                {"type": "ice_candidate", "from_id": "a", "candidate": 5}):
        try:
            check_server_message(bad)
        except AssertionError:
            continue
        raise AssertionError("the room schema accepts %r" % bad)


def main():
    check_schema_rejects()
    check_routes_documented()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "idle.pipeline"), "w") as f:
            f.write("# idles until stopped\nvideotestsrc is-live=true ! fakesink\n")
        with open(os.path.join(tmp, "empty.pipeline"), "w") as f:
            f.write("# nothing\n")
        d = Daemon("--pipelines-dir", tmp, "--max-pipelines", "1", "--offer-timeout", "1")
        try:
            asyncio.run(open_paths(d.port))
        except Exception:
            sys.stderr.write("".join(d.log[-40:]))
            raise
        finally:
            d.stop()
        d = Daemon("--pipelines-dir", tmp, "--token", "s3cret")
        try:
            asyncio.run(token_paths(d.port))
        finally:
            d.stop()
    documented = {(p, m) for p, item in DOC["paths"].items() for m in item if m in METHODS}
    missing = documented - probed
    check(not missing, "documented but never exercised: %s" % sorted(missing))
    print("ok: %d documented operations exercised" % len(documented))


if __name__ == "__main__":
    main()
