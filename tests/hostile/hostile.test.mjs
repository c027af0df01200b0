// Runs the hostile-request battery (battery.jsonl) against the real server on
// loopback and checks: every case gets its expected status class (or is cut
// off), no 5xx ever, the server keeps serving, and resident memory stays flat.
// Server binary: $KR_SERVE_BIN (default build/bin/kr-serve). Node's built-in test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

const root = new URL('../../', import.meta.url).pathname;
const bin = process.env.KR_SERVE_BIN || `${root}build/bin/kr-serve`;
const cases = readFileSync(new URL('./battery.jsonl', import.meta.url), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const READ_TIMEOUT_S = 2;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function expand(gen) { return Buffer.from(gen.map(([t, n]) => t.repeat(n)).join(''), 'binary'); }

function bodyOf(c) {
  if (c.gen) return expand(c.gen);
  if (c.body_b64) return Buffer.from(c.body_b64, 'base64');
  if (c.big_body_mb) return Buffer.alloc(c.big_body_mb << 20, 0x61);
  if (c.body !== undefined) return Buffer.from(c.body, 'utf8');
  return null;
}

// Sends raw bytes, resolves with {status, text, closed} once a full response arrives or the peer closes.
function rawExchange(port, bytes, { timeoutMs = 15000, keepOpen = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = buf.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      sock.destroy();
      resolve({ status: m ? Number(m[1]) : 0, text, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const t = buf.toString('latin1');
      const h = t.indexOf('\r\n\r\n');
      if (h >= 0) {
        const cl = /content-length:\s*(\d+)/i.exec(t.slice(0, h));
        if (cl && buf.length >= h + 4 + Number(cl[1]) && !keepOpen) finish(false);
        if (/transfer-encoding:\s*chunked/i.test(t.slice(0, h)) && t.endsWith('0\r\n\r\n')) finish(false);
      }
    });
    sock.on('error', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('connect', () => { if (bytes) sock.write(bytes, () => {}); });
  });
}

function httpRequest(port, c) {
  const body = bodyOf(c);
  const headers = { Host: '127.0.0.1', 'Content-Type': 'application/json', ...(c.headers || {}) };
  if (body && !headers['Content-Length']) headers['Content-Length'] = String(body.length);
  let head = `${c.method} ${c.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += 'Connection: close\r\n\r\n';
  const bytes = c.kind === 'raw_header' ? Buffer.from(head) : Buffer.concat([Buffer.from(head), body || Buffer.alloc(0)]);
  return rawExchange(port, bytes);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runCase(port, c) {
  switch (c.kind) {
    case 'http': case 'raw_header': return httpRequest(port, c);
    case 'raw': return rawExchange(port, c.gen ? expand(c.gen) : Buffer.from(c.raw_b64, 'base64'));
    case 'pipeline': {
      const one = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
      const r = await rawExchange(port, Buffer.from(one.repeat(c.count)), { timeoutMs: 3000, keepOpen: true });
      const n = (r.text.match(/^HTTP\/1\.1 200/gm) || []).length;
      return { status: n === c.count ? 200 : 0, text: r.text };
    }
    case 'pipeline_bad_good': {
      const r = await rawExchange(port, Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{GET /health HTTP/1.1\r\nHost: x\r\n\r\n'),
        { timeoutMs: 3000, keepOpen: true });
      return r;
    }
    case 'slowloris': case 'slow_body': {
      // Send a partial request, then trickle a byte per second: the server must close the connection.
      const start = c.kind === 'slowloris' ? 'GET /health HTTP/1.1\r\nHost: x\r\n'
        : 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{';
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const t0 = Date.now();
        let iv;
        const end = (closed) => { clearInterval(iv); sock.destroy(); resolve({ status: 0, closed, seconds: (Date.now() - t0) / 1000 }); };
        const deadline = setTimeout(() => end(false), (READ_TIMEOUT_S * 4 + 30) * 1000);
        sock.on('connect', () => { sock.write(start); iv = setInterval(() => sock.write('a', () => {}), 1000); });
        sock.on('close', () => { clearTimeout(deadline); end(true); });
        sock.on('error', () => {});
      });
    }
    case 'half_close': {
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = '';
        sock.on('connect', () => { sock.end('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'); });
        sock.on('data', (d) => { buf += d.toString('latin1'); });
        sock.on('close', () => { const m = /^HTTP\/1\.1 (\d{3})/.exec(buf); resolve({ status: m ? Number(m[1]) : 0, closed: true }); });
        sock.on('error', () => {});
      });
    }
    case 'connect_close': {
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.on('connect', r));
      sock.destroy();
      return { status: 0, closed: true };
    }
    case 'disconnect_stream': {
      const body = JSON.stringify({ model: 'tiny-llama3', prompt: 'hello', max_tokens: 4000, ignore_eos: true, stream: true });
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('connect', () => sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
        sock.on('data', () => { sock.destroy(); resolve({ status: 0, closed: true }); });
        sock.on('error', () => {});
      });
    }
    default: throw new Error(`unknown kind ${c.kind}`);
  }
}

function errorCode(text) {
  const i = String(text || '').indexOf('{');
  try { return JSON.parse(String(text).slice(i)).error.code; } catch { return undefined; }
}

function matches(expect, r, code) {
  if (r.status >= 500) return false;
  if (code !== undefined && errorCode(r.text) !== code) return false;
  switch (expect) {
    case 'closed': return r.closed === true;
    case 'not5xx': return true;
    case '4xx': return (r.status >= 400 && r.status < 500) || (r.status === 0 && r.closed);
    default: return r.status === Number(expect);
  }
}

function rssKb(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
}

test('hostile battery: right 4xx, no 5xx, still serving, memory flat', { timeout: 600000 }, async () => {
  assert.ok(cases.length >= 200, `battery has ${cases.length} cases`);
  const port = await freePort();
  const server = spawn(bin, ['serve', '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, KR_READ_TIMEOUT_S: String(READ_TIMEOUT_S), KR_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (let i = 0; i < 200; i++) {
      const r = await rawExchange(port, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { timeoutMs: 1000 });
      if (r.status === 200) break;
      await sleep(100);
    }
    const failures = [];
    const counts = {};
    let fiveXX = 0;
    const runAll = async (round) => {
      // Independent cases run a few at a time to keep the suite short.
      const slow = cases.filter((c) => ['slowloris', 'slow_body'].includes(c.kind));
      const fast = cases.filter((c) => !slow.includes(c));
      const slowRuns = slow.map(async (c) => ({ c, r: await runCase(port, c) }));
      for (let i = 0; i < fast.length; i += 8) {
        const batch = await Promise.all(fast.slice(i, i + 8).map(async (c) => ({ c, r: await runCase(port, c) })));
        for (const { c, r } of batch) record(round, c, r);
      }
      for (const { c, r } of await Promise.all(slowRuns)) record(round, c, r);
    };
    const record = (round, c, r) => {
      counts[c.expect] = (counts[c.expect] || 0) + 1;
      if (r.status >= 500) fiveXX++;
      if (!matches(c.expect, r, c.code)) failures.push(`round ${round} ${c.name}: expected ${c.expect}${c.code ? ` (${c.code})` : ''}, got ${r.status}${r.closed ? ' (closed)' : ''} ${String(r.text || '').slice(0, 300)}`);
    };
    // Rounds 1-3 warm up (thread stacks, caches, allocator arenas); rounds 4-5 must not grow.
    const rss = [];
    for (let round = 1; round <= 5; round++) {
      await runAll(round);
      await sleep(2500);  // the server returns freed heap memory when idle (at most every 2 s)
      rss.push(rssKb(server.pid));
    }
    const rssAfterFirst = rss[2];
    const rssAfterThird = rss[4];
    const health = await rawExchange(port, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    console.log(JSON.stringify({ cases: cases.length, rounds: 5, requests: cases.length * 5, by_expectation: counts,
      failures: failures.length, five_xx: fiveXX, rss_kb_by_round: rss }));
    assert.equal(server.exitCode, null, 'server exited during the battery');
    assert.equal(health.status, 200, 'server no longer healthy');
    assert.equal(fiveXX, 0, 'some request got a 5xx');
    assert.deepEqual(failures, []);
    // Memory flat: two more rounds after the warm-up may not grow RSS by more than 16 MiB.
    assert.ok(rssAfterThird - rssAfterFirst < 16 * 1024, `RSS grew ${rssAfterThird - rssAfterFirst} KiB over rounds 4-5`);
  } finally {
    server.kill('SIGTERM');
  }
});
