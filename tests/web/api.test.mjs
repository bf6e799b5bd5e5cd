// SPDX-License-Identifier: LGPL-2.1-or-later
// The pipeline endpoints: GET /api/pipelines, POST /api/pipelines/{name}/start,
// DELETE /api/pipelines/{id}, GET /api/events. Runs against the daemon when it is built with the
// pipeline API (POINTCAST_WEB_API_SERVER=daemon, the default then), else against
// tests/web/pipelines_host (the same code on a bare SoupServer).
//
// A fake `gst-launch-1.0` placed first on PATH records its argv and environment, so the test sees
// exactly what a child gets; one real gst-launch-1.0 run checks the real thing.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, buildRoot, sseReader, startServer, stopServer, waitUntil } from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'pointcast-api-'));
const dir = path.join(work, 'pipelines');
const fakeBin = path.join(work, 'bin');
const marker = path.join(work, 'pwned');
mkdirSync(dir);
mkdirSync(fakeBin);

// The fake launcher: prints its argv and POINTCAST_* variables, leaves a grandchild that ignores
// SIGINT (so only a process-group kill removes it), and ends on SIGINT like gst-launch -e.
writeFileSync(path.join(fakeBin, 'gst-launch-1.0'), `#!/bin/bash
if [ "$1" != "-e" ]; then exec /usr/bin/gst-launch-1.0 "$@"; fi
for a in "$@"; do echo "arg:$a"; done
echo "env:$POINTCAST_SIGNALING|$POINTCAST_ROOM|$POINTCAST_PEER_ID|$POINTCAST_TOKEN"
echo "a line on stderr" >&2
if [ "$2" = "real" ]; then shift; shift; exec /usr/bin/gst-launch-1.0 -e "$@"; fi
(trap '' INT; exec sleep 1000) &
echo "grandchild:$!"
trap 'echo "got SIGINT"; exit 0' INT
while :; do sleep 0.2; done
`);
chmodSync(path.join(fakeBin, 'gst-launch-1.0'), 0o755);

writeFileSync(path.join(dir, 'long.pipeline'), '# A sender that runs until stopped\nfakesrc ! fakesink\n');
writeFileSync(path.join(dir, 'tricky.pipeline'),
  `# words are passed as they are, never to a shell\n  # indented comment\nfakesrc $(touch ${marker}) \`touch ${marker}\` ; | caps="a, b=1" \\\n  ! fakesink\n`);
writeFileSync(path.join(dir, 'quick.pipeline'), '# Real gst-launch\nreal videotestsrc num-buffers=5 ! fakesink\n');
writeFileSync(path.join(dir, 'empty.pipeline'), '# nothing but a comment\n');
writeFileSync(path.join(work, 'outside.pipeline'), 'fakesrc ! fakesink\n');
symlinkSync(path.join(work, 'outside.pipeline'), path.join(dir, 'escape.pipeline'));
writeFileSync(path.join(dir, 'with.dot.pipeline'), 'fakesrc ! fakesink\n');
writeFileSync(path.join(dir, 'notes.txt'), 'not a pipeline\n');

const useDaemon = (process.env.POINTCAST_WEB_API_SERVER || (existsSync(path.join(buildRoot, 'signaling/pointcast-signaling')) ? 'daemon' : 'host')) === 'daemon';

async function startApi({ max = 2, token } = {}) {
  const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` };
  if (useDaemon) {
    const args = ['--host', '127.0.0.1', '--port', '0', '--pipelines-dir', dir, '--max-pipelines', String(max)];
    if (token) args.push('--token', token);
    return startServer(path.join(buildRoot, 'signaling/pointcast-signaling'), args,
      { env, ready: /listening on \S+?:(\d+)/i });
  }
  const args = ['--pipelines-dir', dir, '--max-pipelines', String(max), '--stop-grace-ms', '3000'];
  if (token) args.push('--token', token);
  return startServer(path.join(buildRoot, 'tests/web/pipelines_host'), args, { env });
}

let api;
let base;
const json = { 'Content-Type': 'application/json' };
const post = (p, body, init = {}) =>
  fetch(base + p, { method: 'POST', headers: json, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });
const del = (p) => fetch(base + p, { method: 'DELETE' });

before(async () => {
  api = await startApi();
  base = `http://127.0.0.1:${api.port}`;
});
after(async () => {
  await stopServer(api);
  rmSync(work, { recursive: true, force: true });
});

async function runningIds() {
  const j = await (await fetch(`${base}/api/pipelines`)).json();
  return j.running.map((r) => r.id);
}

test('GET /api/pipelines lists the regular .pipeline files with their descriptions', async () => {
  const res = await fetch(`${base}/api/pipelines`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const j = await res.json();
  assert.deepEqual(j.pipelines.map((p) => p.name), ['empty', 'long', 'quick', 'tricky']);
  assert.equal(j.pipelines.find((p) => p.name === 'long').description, 'A sender that runs until stopped');
  assert.deepEqual(j.running, []);
  assert.equal(j.max_running, 2);
});

test('every refused name gets a 4xx and starts nothing', async () => {
  // [path segment as sent, expected status, expected JSON error code or null when libsoup itself
  // refuses the request line (dot segments, NUL) with a bare 400]
  const cases = [
    ['..%2F..%2Fetc%2Fpasswd', 400, null],
    ['..', 404, 'not_found'], // normalised away by the client: /api/start
    ['%2e%2e', 404, 'not_found'],
    ['a%00b', 400, null],
    ['%2Fetc%2Fpasswd', 400, 'bad_name'],
    ['long%2F', 400, 'bad_name'],
    ['sub%2Flong', 400, 'bad_name'],
    ['long.pipeline', 400, 'bad_name'],
    ['with.dot', 400, 'bad_name'],
    ['.hidden', 400, 'bad_name'],
    ['-e', 400, 'bad_name'],
    ['--gst-debug', 400, 'bad_name'],
    ['long%20x', 400, 'bad_name'],
    ['long;id', 400, 'bad_name'],
    ['%24(id)', 400, 'bad_name'],
    ['%60id%60', 400, 'bad_name'],
    ['long%0A', 400, 'bad_name'],
    ['%C3%A9t%C3%A9', 400, 'bad_name'],
    ['~root', 400, 'bad_name'],
    ['*', 400, 'bad_name'],
    ['x'.repeat(65), 400, 'bad_name'],
    ['escape', 404, 'unknown_pipeline'],
    ['notes', 404, 'unknown_pipeline'],
    ['outside', 404, 'unknown_pipeline'],
    ['nope', 404, 'unknown_pipeline'],
  ];
  for (const [name, status, code] of cases) {
    const res = await post(`/api/pipelines/${name}/start`, { room: 'r' });
    assert.equal(res.status, status, `status for ${name}`);
    const text = await res.text();
    if (code) {
      const j = JSON.parse(text);
      assert.equal(j.error, code, `error code for ${name}`);
      assert.ok(j.message.length > 10, `message for ${name}`);
    }
  }
  assert.deepEqual(await runningIds(), []);
  assert.ok(!existsSync(marker));
});

test('bad bodies, rooms and peer ids are refused with the reason', async () => {
  const cases = [
    ['not json', 'bad_json'],
    ['[1,2]', 'bad_json'],
    [{ room: 5 }, 'bad_field'],
    [{ room: '../x' }, 'bad_room'],
    [{ room: 'a b' }, 'bad_room'],
    [{ room: 'r', peer_id: 'p;q' }, 'bad_peer_id'],
  ];
  for (const [body, code] of cases) {
    const res = await post('/api/pipelines/long/start', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((await res.json()).error, code);
  }
  const res = await post('/api/pipelines/empty/start', { room: 'r' });
  assert.equal(res.status, 422);
  assert.deepEqual(await runningIds(), []);
});

test('start runs the words of the file with the room environment, logs stream, DELETE stops the whole group', async () => {
  const sse = sseReader(`${base}/api/events?room=lab`);
  const other = sseReader(`${base}/api/events?room=elsewhere`);
  const res = await post('/api/pipelines/tricky/start', { room: 'lab', peer_id: 'cam-1' });
  assert.equal(res.status, 201);
  const started = await res.json();
  assert.equal(started.name, 'tricky');
  assert.equal(started.room, 'lab');
  assert.equal(started.peer_id, 'cam-1');
  assert.equal(started.state, 'running');
  const id = started.id;

  const lines = () => sse.events.filter((e) => e.type === 'pipeline_log' && e.id === id).map((e) => e.line);
  await sse.waitFor((e) => e.type === 'pipeline_log' && e.line.startsWith('grandchild:'), 15000, 'the launcher output');
  await sse.waitFor((e) => e.type === 'pipeline_log' && e.stream === 'stderr', 5000, 'a stderr line');
  const args = lines().filter((l) => l.startsWith('arg:')).map((l) => l.slice(4));
  assert.deepEqual(args, ['-e', 'fakesrc', `$(touch`, `${marker})`, '`touch', `${marker}\``, ';', '|',
    'caps="a,', 'b=1"', '!', 'fakesink']);
  const env = lines().find((l) => l.startsWith('env:')).slice(4).split('|');
  assert.match(env[0], /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
  assert.equal(Number(env[0].match(/:(\d+)\//)[1]), api.port);
  assert.deepEqual(env.slice(1), ['lab', 'cam-1', '']);
  const grandchild = Number(lines().find((l) => l.startsWith('grandchild:')).slice(11));
  assert.ok(alive(grandchild));
  assert.ok(!existsSync(marker), 'nothing went through a shell');
  assert.deepEqual(await runningIds(), [id]);

  const stop = await del(`/api/pipelines/${id}`);
  assert.equal(stop.status, 202);
  assert.equal((await stop.json()).state, 'stopping');
  const exited = await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === id, 15000, 'pipeline_exited');
  assert.equal(exited.requested, true);
  assert.equal(exited.exit, 'exit status 0');
  assert.ok(lines().includes('got SIGINT'), 'the sender got SIGINT first (EOS with gst-launch -e)');
  await waitUntil(() => !alive(grandchild), 5000, 'grandchild killed with the group');
  assert.deepEqual(await runningIds(), []);
  const again = await del(`/api/pipelines/${id}`);
  assert.equal(again.status, 200, 'stopping an ended pipeline is harmless');
  assert.equal((await again.json()).state, 'exited');
  assert.equal(other.events.length, 0, 'events of room lab do not reach room elsewhere');
  sse.close();
  other.close();
});

test('late subscribers get the backlog; unknown and bad ids are refused', async () => {
  const res = await post('/api/pipelines/long/start', { room: 'late' });
  const { id } = await res.json();
  await sleep(300);
  const sse = sseReader(`${base}/api/events`);
  await sse.waitFor((e) => e.type === 'pipeline_started' && e.pipeline.id === id, 10000, 'replayed start');
  await sse.waitFor((e) => e.type === 'pipeline_log' && e.id === id && e.line.startsWith('env:'), 10000, 'replayed log');
  assert.equal((await del('/api/pipelines/nope-99')).status, 404);
  assert.equal((await (await del('/api/pipelines/nope-99')).json()).error, 'unknown_id');
  assert.equal((await del('/api/pipelines/a.b')).status, 400);
  assert.equal((await del(`/api/pipelines/${id}`)).status, 202);
  await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === id, 15000, 'exit');
  sse.close();
});

test('the number of running senders is limited', async () => {
  const a = await (await post('/api/pipelines/long/start', { room: 'r' })).json();
  const b = await (await post('/api/pipelines/long/start', { room: 'r' })).json();
  assert.notEqual(a.id, b.id);
  const third = await post('/api/pipelines/long/start', { room: 'r' });
  assert.equal(third.status, 429);
  assert.equal((await third.json()).error, 'too_many');
  const sse = sseReader(`${base}/api/events`);
  await del(`/api/pipelines/${a.id}`);
  await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === a.id, 15000, 'exit of a');
  const fourth = await post('/api/pipelines/long/start', { room: 'r' });
  assert.equal(fourth.status, 201, 'a slot frees up when one ends');
  const d = await fourth.json();
  await del(`/api/pipelines/${b.id}`);
  await del(`/api/pipelines/${d.id}`);
  await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === d.id, 15000, 'exit of d');
  await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === b.id, 15000, 'exit of b');
  sse.close();
});

test('a real gst-launch-1.0 sender runs to its end and reports the exit', async () => {
  const sse = sseReader(`${base}/api/events`);
  const res = await post('/api/pipelines/quick/start', { room: 'q' });
  assert.equal(res.status, 201);
  const { id } = await res.json();
  const ex = await sse.waitFor((e) => e.type === 'pipeline_exited' && e.id === id, 20000, 'exit');
  assert.equal(ex.exit, 'exit status 0');
  assert.equal(ex.requested, false);
  assert.ok(sse.events.some((e) => e.id === id && /Execution ended|EOS/.test(e.line || '')));
  sse.close();
});

test('methods other than the documented ones are refused', async () => {
  assert.equal((await fetch(`${base}/api/pipelines`, { method: 'PUT' })).status, 405);
  assert.equal((await fetch(`${base}/api/pipelines/long/start`)).status, 405);
  assert.equal((await fetch(`${base}/api/nothing`)).status, 404);
});

test('the daemon going away stops its senders', async () => {
  const own = await startApi({ max: 1 });
  const b = `http://127.0.0.1:${own.port}`;
  const sse = sseReader(`${b}/api/events`);
  const res = await fetch(`${b}/api/pipelines/long/start`, { method: 'POST', headers: json, body: '{"room":"r"}' });
  const { pid, id } = await res.json();
  const gc = await sse.waitFor((e) => e.id === id && /^grandchild:/.test(e.line || ''), 15000, 'grandchild');
  const grandchild = Number(gc.line.slice(11));
  assert.ok(alive(pid));
  sse.close();
  await stopServer(own);
  await waitUntil(() => !alive(pid) && !alive(grandchild), 8000, 'children gone after daemon exit');
});

test('with a token, the API needs it', async () => {
  const own = await startApi({ token: 's3cret' });
  const b = `http://127.0.0.1:${own.port}`;
  try {
    const res = await fetch(`${b}/api/pipelines`);
    assert.equal(res.status, 401);
    const j = await res.json();
    assert.match(j.message || j.error, /token/, 'the reply says a token is needed');
    assert.equal((await fetch(`${b}/api/pipelines?token=wrong`)).status, 401);
    assert.equal((await fetch(`${b}/api/pipelines?token=s3cret`)).status, 200);
    assert.equal((await fetch(`${b}/api/pipelines`, { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
    assert.equal((await fetch(`${b}/api/pipelines/long/start`, { method: 'POST', headers: json, body: '{}' })).status, 401);
    assert.equal((await fetch(`${b}/api/events`)).status, 401);
    const sse = sseReader(`${b}/api/events?token=s3cret`);
    const res2 = await fetch(`${b}/api/pipelines/long/start?token=s3cret`, { method: 'POST', headers: json, body: '{"room":"t"}' });
    assert.equal(res2.status, 201);
    const { id } = await res2.json();
    const env = await sse.waitFor((e) => e.id === id && /^env:/.test(e.line || ''), 15000, 'env');
    const [url, , , tok] = env.line.slice(4).split('|');
    assert.equal(tok, 's3cret', 'the child gets the token as POINTCAST_TOKEN');
    // The token never goes into a URL; the daemon gives the child its own loopback credential.
    assert.ok(!url.includes('s3cret'), `the token is not in the signaling URL: ${url}`);
    if (useDaemon) assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/ws\?token=[0-9a-f]{32}$/, 'the child credential is');
    sse.close();
  } finally {
    await stopServer(own);
  }
});
