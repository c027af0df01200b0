// Runs the hostile-request battery (battery.jsonl) against the real server on
// loopback and checks: every case gets its exact answer (status, and for JSON
// errors the error's code and param: the server is deterministic), no 5xx ever,
// the server keeps serving, no connection is left open, and resident memory
// stays flat. Server binary: $KR_SERVE_BIN (default build/bin/kr-serve).
// KR_HOSTILE_RECORD=FILE writes what each case got in round 1 (to update the
// battery after a deliberate change). Node's built-in test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
// The response's JSON error, {code, param} (undefined when the body is no JSON error).
function errorOf(text) {
  const h = text.indexOf('\r\n\r\n');
  if (h < 0) return undefined;
  try {
    const e = JSON.parse(text.slice(h + 4)).error;
    return e ? { code: e.code ?? null, param: e.param ?? null } : undefined;
  } catch { return undefined; }
}

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
      resolve({ status: m ? Number(m[1]) : 0, text, closed, error: errorOf(text) });
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
      // A bad body, then a good request on the same connection: both answered, in order.
      const r = await rawExchange(port, Buffer.from('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{GET /health HTTP/1.1\r\nHost: x\r\n\r\n'),
        { timeoutMs: 3000, keepOpen: true });
      const statuses = (r.text.match(/^HTTP\/1\.1 \d{3}/gm) || []).map((x) => x.slice(9)).join(',');
      return { ...r, status: statuses === c.statuses ? Number(c.expect) : 0, statuses };
    }
    case 'slowloris': case 'slow_body': {
      // Send a partial request, then trickle a byte per second: the server must close the connection.
      const start = c.kind === 'slowloris' ? 'GET /health HTTP/1.1\r\nHost: x\r\n'
        : 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{';
      // The server answers 408 at its read deadline and closes: in about
      // READ_TIMEOUT_S seconds, not when the client stops.
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const t0 = Date.now();
        let iv;
        let buf = '';
        const end = (closed) => {
          clearInterval(iv);
          sock.destroy();
          const seconds = (Date.now() - t0) / 1000;
          const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
          const inTime = seconds >= READ_TIMEOUT_S - 0.5 && seconds < READ_TIMEOUT_S + 5;
          resolve({ status: m && inTime ? Number(m[1]) : 0, closed, seconds, text: `after ${seconds} s: ${buf}`, error: errorOf(buf) });
        };
        const deadline = setTimeout(() => end(false), (READ_TIMEOUT_S * 4 + 30) * 1000);
        sock.on('connect', () => { sock.write(start); iv = setInterval(() => sock.write('a', () => {}), 1000); });
        sock.on('data', (d) => { buf += d.toString('latin1'); });
        sock.on('close', () => { clearTimeout(deadline); end(true); });
        sock.on('error', () => {});
      });
    }
    case 'half_close': {
      // The request, then our FIN at once: the answer still comes, then the server closes.
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = '';
        const timer = setTimeout(() => { sock.destroy(); resolve({ status: 0, closed: false, text: buf }); }, 5000);
        sock.on('connect', () => { sock.end('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'); });
        sock.on('data', (d) => { buf += d.toString('latin1'); });
        sock.on('close', () => { clearTimeout(timer); const m = /^HTTP\/1\.1 (\d{3})/.exec(buf); resolve({ status: m ? Number(m[1]) : 0, closed: true, text: buf }); });
        sock.on('error', () => {});
      });
    }
    case 'connect_close': {
      // Connect and send our FIN with no byte: the server must close its side
      // promptly and say nothing (the open-fd check after the round sees a leak).
      return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let bytes = 0;
        const t0 = Date.now();
        const timer = setTimeout(() => { sock.destroy(); resolve({ status: 0, closed: false, bytes }); }, 5000);
        sock.on('connect', () => sock.end());
        sock.on('data', (d) => { bytes += d.length; });
        sock.on('close', () => { clearTimeout(timer); resolve({ status: 0, closed: true, bytes, ms: Date.now() - t0 }); });
        sock.on('error', () => {});
      });
    }
    case 'disconnect_stream': {
      // A long stream, dropped after its first event: the server must cancel the
      // generation (its cancelled counter goes up by one) and free it.
      const cancelled = async () => cancelledCount((await rawExchange(port, Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).text);
      const before = await cancelled();
      const body = JSON.stringify({ model: 'tiny-llama3', prompt: 'hello', max_tokens: 4000, ignore_eos: true, stream: true });
      const head = await new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = '';
        const timer = setTimeout(() => { sock.destroy(); resolve(buf); }, 15000);
        sock.on('connect', () => sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
        sock.on('data', (d) => { buf += d.toString('latin1'); if (buf.includes('data: ')) { clearTimeout(timer); sock.destroy(); resolve(buf); } });
        sock.on('error', () => {});
      });
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (!m || !head.includes('data: ')) return { status: m ? Number(m[1]) : 0, text: head };
      let after = before;
      for (let i = 0; i < 100 && after <= before; i++) { await sleep(50); after = await cancelled(); }
      return { status: after > before ? Number(m[1]) : 0, text: `cancelled counter ${before} -> ${after}` };
    }
    default: throw new Error(`unknown kind ${c.kind}`);
  }
}

// krserve_request_success_total{finished_reason="cancelled"} in a /metrics response.
function cancelledCount(text) {
  const m = /^krserve_request_success_total\{[^}]*finished_reason="cancelled"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

// The exact answer: `expect` is the status ("closed_silently": the server closed
// without a byte), and for JSON errors `code` and `param` are pinned too.
function matches(c, r) {
  if (c.expect === 'closed_silently') return r.closed === true && r.bytes === 0 && r.status === 0;
  if (r.status !== Number(c.expect)) return false;
  if (c.closed !== undefined && r.closed !== c.closed) return false;
  if (c.code !== undefined || c.param !== undefined) {
    if (!r.error) return false;
    if (c.code !== undefined && r.error.code !== c.code) return false;
    if (c.param !== undefined && r.error.param !== c.param) return false;
  }
  return true;
}

function describe(r) {
  return `${r.status}${r.closed ? ' (closed)' : ''}${r.error ? ` code=${r.error.code} param=${r.error.param}` : ''}` +
    `${r.statuses ? ` statuses=${r.statuses}` : ''}${r.bytes !== undefined ? ` bytes=${r.bytes}` : ''} ${String(r.text || '').slice(0, 160)}`;
}

const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;

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
    const recorded = [];
    const record = (round, c, r) => {
      counts[c.expect] = (counts[c.expect] || 0) + 1;
      if (r.status >= 500) fiveXX++;
      if (round === 1) recorded.push({ name: c.name, status: r.status, closed: r.closed, ...(r.error || {}), statuses: r.statuses, bytes: r.bytes });
      if (!matches(c, r)) {
        const want = `${c.expect}${c.closed !== undefined ? ` closed=${c.closed}` : ''}${c.code !== undefined ? ` code=${c.code}` : ''}${c.param !== undefined ? ` param=${c.param}` : ''}`;
        failures.push(`round ${round} ${c.name}: expected ${want}, got ${describe(r)}`);
      }
    };
    // Special-token text must stay text: its prompt is longer than the same
    // prompt without it by the text's own tokens (a parsed special token adds one).
    const promptTokens = async (content) => {
      const body = JSON.stringify({ model: 'tiny-llama3', max_tokens: 1, messages: [{ role: 'user', content }] });
      const r = await rawExchange(port, Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`));
      return JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)).usage.prompt_tokens;
    };
    const plainWithout = await promptTokens('hello  world');
    for (const c of cases.filter((x) => x.check_special)) {
      const n = await promptTokens(`hello ${c.check_special} world`);
      if (!(n - plainWithout >= 3)) failures.push(`${c.name}: ${c.check_special} added ${n - plainWithout} prompt tokens (parsed as a special token?)`);
    }
    const fdsAtStart = openFds(server.pid);
    // Rounds 1-3 warm up (thread stacks, caches, allocator arenas); rounds 4-5 must not grow.
    const rss = [];
    for (let round = 1; round <= 5; round++) {
      await runAll(round);
      if (round === 1 && process.env.KR_HOSTILE_RECORD) writeFileSync(process.env.KR_HOSTILE_RECORD, recorded.map((x) => JSON.stringify(x)).join('\n') + '\n');
      await sleep(2500);  // the server returns freed heap memory when idle (at most every 2 s)
      rss.push(rssKb(server.pid));
      // Every connection of the round is closed on the server's side too.
      let fds = openFds(server.pid);
      for (let i = 0; i < 50 && fds > fdsAtStart; i++) { await sleep(100); fds = openFds(server.pid); }
      if (fds > fdsAtStart) failures.push(`round ${round}: the server holds ${fds - fdsAtStart} more file descriptors than before the battery`);
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
