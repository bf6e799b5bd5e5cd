// SPDX-License-Identifier: LGPL-2.1-or-later
// Shared helpers of the web tests: start a server process, wait for its port, read SSE streams.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const sourceRoot = process.env.POINTCAST_SOURCE_ROOT;
export const buildRoot = process.env.POINTCAST_BUILD_ROOT;

/** Spawns `cmd args`, resolves once a line matches `ready` (regex with one group = port). */
export function startServer(cmd, args, { ready = /^port (\d+)$/m, env = process.env, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const log = [];
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start in time:\n${out}`)), timeoutMs);
    const onData = (d) => {
      out += d.toString();
      log.push(d.toString());
      const m = ready.exec(out);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), log });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

export async function stopServer(server, signal = 'SIGTERM') {
  if (!server || server.child.exitCode !== null) return;
  const done = new Promise((r) => server.child.once('exit', r));
  server.child.kill(signal);
  await Promise.race([done, sleep(10000).then(() => server.child.kill('SIGKILL'))]);
}

/** Reads a Server-Sent Events stream; events are parsed JSON objects pushed to `events`. */
export function sseReader(url, init = {}) {
  const events = [];
  const controller = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { ...init, signal: controller.signal });
    if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, k);
        buf = buf.slice(k + 2);
        for (const line of block.split('\n')) if (line.startsWith('data: ')) events.push(JSON.parse(line.slice(6)));
      }
    }
  })().catch((e) => {
    if (e.name !== 'AbortError') throw e;
  });
  return {
    events,
    close: () => controller.abort(),
    done,
    async waitFor(pred, timeoutMs = 15000, what = 'event') {
      const t0 = Date.now();
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(events).slice(-2000)}`);
        }
        await sleep(50);
      }
    },
  };
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitUntil(pred, timeoutMs, what) {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}
