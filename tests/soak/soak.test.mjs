// Soak: 256 concurrent clients for a bounded time against the real server on
// loopback, mixing chat and completions, streamed and not, with random
// disconnects mid-stream. Ends with: zero unexpected failures, no 5xx, no
// request left running or waiting, every KV block free, and resident memory
// back near its level before the soak.
// Env: KR_SERVE_BIN (default build/bin/kr-serve), KR_SOAK_SECONDS (default 45), KR_SOAK_CLIENTS (256).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const root = new URL('../../', import.meta.url).pathname;
const bin = process.env.KR_SERVE_BIN || `${root}build/bin/kr-serve`;
const SECONDS = Number(process.env.KR_SOAK_SECONDS || 45);
const CLIENTS = Number(process.env.KR_SOAK_CLIENTS || 256);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Deterministic PRNG so a failing run can be repeated.
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };

const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS * 2 });

// Resolves {status, text} when the response ends, {aborted: true} only when this
// client disconnected on purpose; a response cut off by the server is {status, error}.
function request(port, path, body, { abortAfterChunks = -1 } = {}) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    let settled = false;
    const settle = (r) => { if (!settled) { settled = true; resolve(r); } };
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let chunks = 0;
      let text = '';
      res.on('data', (d) => {
        chunks++;
        text += d;
        if (abortAfterChunks >= 0 && chunks > abortAfterChunks) { settle({ status: res.statusCode, aborted: true }); req.destroy(); }
      });
      res.on('end', () => settle({ status: res.statusCode, text }));
      res.on('error', (e) => settle({ status: res.statusCode, error: `response cut off: ${e}`, text }));
      res.on('close', () => { if (!res.complete) settle({ status: res.statusCode, error: 'response cut off', text }); });
    });
    req.on('error', (e) => settle({ status: 0, error: String(e) }));
    req.end(data);
  });
}

// A completed generation: a stream ends with a finish_reason chunk and then
// `data: [DONE]`, and carries no error event; a plain response is a JSON body
// whose choices all finished. Returns what is wrong, or '' when nothing is.
function checkCompletion(text, { stream, maxTokens }) {
  const finished = (c) => c.finish_reason === 'stop' || c.finish_reason === 'length';
  if (!stream) {
    let j;
    try { j = JSON.parse(text); } catch { return `body is not JSON: ${text.slice(0, 200)}`; }
    if (j.error) return `error body: ${JSON.stringify(j.error)}`;
    if (!Array.isArray(j.choices) || j.choices.length !== 1 || !finished(j.choices[0])) return `unfinished: ${text.slice(0, 200)}`;
    const n = j.usage && j.usage.completion_tokens;
    if (!(n >= 1 && n <= maxTokens)) return `completion_tokens ${n} outside [1, ${maxTokens}]`;
    return '';
  }
  if (!text.endsWith('\n\n')) return `stream ends mid-event: ...${JSON.stringify(text.slice(-80))}`;
  const events = text.split('\n\n').filter((e) => e);
  if (events.some((e) => !e.startsWith('data: '))) return `not an SSE data event: ${events.find((e) => !e.startsWith('data: ')).slice(0, 200)}`;
  if (events[events.length - 1] !== 'data: [DONE]') return `stream does not end with [DONE]: ...${JSON.stringify(text.slice(-200))}`;
  let finishes = 0;
  for (const e of events.slice(0, -1)) {
    let j;
    try { j = JSON.parse(e.slice(6)); } catch { return `event is not JSON: ${e.slice(0, 200)}`; }
    if (j.error) return `error event: ${JSON.stringify(j.error)}`;
    for (const c of j.choices || []) if (c.finish_reason != null) { if (!finished(c)) return `finish_reason ${c.finish_reason}`; finishes++; }
  }
  if (finishes !== 1) return `${finishes} finish_reason chunks`;
  return '';
}

async function getJson(port, path) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, text: await r.text() };
}

function metric(text, name) {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

// The stream checks themselves, on made-up responses (no server needed).
test('soak: a 200 counts only with a complete stream or body', () => {
  const chunk = (o) => `data: ${JSON.stringify(o)}\n\n`;
  const good = chunk({ choices: [{ delta: { content: 'a' }, finish_reason: null }] }) +
    chunk({ choices: [{ delta: {}, finish_reason: 'length' }] }) + 'data: [DONE]\n\n';
  assert.equal(checkCompletion(good, { stream: true, maxTokens: 4 }), '');
  assert.match(checkCompletion(good.slice(0, -'data: [DONE]\n\n'.length), { stream: true, maxTokens: 4 }), /\[DONE\]/);
  assert.match(checkCompletion(good.slice(0, 30), { stream: true, maxTokens: 4 }), /mid-event/);
  const withError = chunk({ choices: [{ delta: { content: 'a' }, finish_reason: null }] }) +
    chunk({ error: { message: 'boom', type: 'server_error' } }) + 'data: [DONE]\n\n';
  assert.match(checkCompletion(withError, { stream: true, maxTokens: 4 }), /error event/);
  assert.match(checkCompletion(chunk({ choices: [{ delta: {}, finish_reason: null }] }) + 'data: [DONE]\n\n', { stream: true, maxTokens: 4 }), /0 finish_reason/);
  const body = { choices: [{ message: { content: 'x' }, finish_reason: 'stop' }], usage: { completion_tokens: 2 } };
  assert.equal(checkCompletion(JSON.stringify(body), { stream: false, maxTokens: 4 }), '');
  assert.match(checkCompletion(JSON.stringify(body).slice(0, 20), { stream: false, maxTokens: 4 }), /not JSON/);
  assert.match(checkCompletion(JSON.stringify({ ...body, usage: { completion_tokens: 9 } }), { stream: false, maxTokens: 4 }), /outside/);
  assert.match(checkCompletion(JSON.stringify({ error: { message: 'x' } }), { stream: false, maxTokens: 4 }), /error body/);
});

test(`soak: ${CLIENTS} clients, random disconnects`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  const port = await freePort();
  const server = spawn(bin, ['serve', '--port', String(port)], { env: { ...process.env, KR_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (let i = 0; i < 300; i++) {
      try { if ((await getJson(port, '/health')).status === 200) break; } catch { /* not up yet */ }
      await sleep(100);
    }
    // Warm-up at full concurrency once, so the "before" memory includes thread stacks and buffers.
    const oneRequest = async () => {
      const chat = rand() < 0.5;
      const stream = rand() < 0.6;
      const body = chat
        ? { model: 'tiny-llama3', messages: [{ role: 'user', content: `question ${Math.floor(rand() * 1000)}` }], max_tokens: 1 + Math.floor(rand() * 32), stream, temperature: rand() }
        : { model: 'tiny-llama3', prompt: `prompt ${Math.floor(rand() * 1000)}`, max_tokens: 1 + Math.floor(rand() * 32), stream, ignore_eos: rand() < 0.5 };
      const disconnect = stream && rand() < 0.2;
      const r = await request(port, chat ? '/v1/chat/completions' : '/v1/completions', body, { abortAfterChunks: disconnect ? Math.floor(rand() * 4) : -1 });
      if (r.status === 200 && !r.aborted && !r.error) {
        const wrong = checkCompletion(r.text, { stream, maxTokens: body.max_tokens });
        if (wrong) r.error = wrong;
      }
      return r;
    };
    await Promise.all(Array.from({ length: CLIENTS }, () => oneRequest()));
    await sleep(500);
    const rssBefore = rssKb(server.pid);

    const stats = { ok: 0, aborted: 0, unexpected: 0, five_xx: 0, samples: [] };
    const deadline = Date.now() + SECONDS * 1000;
    const client = async () => {
      while (Date.now() < deadline) {
        const r = await oneRequest();
        if (r.aborted) stats.aborted++;
        else if (r.status === 200 && !r.error) stats.ok++;
        else {
          stats.unexpected++;
          if (r.status >= 500) stats.five_xx++;
          if (stats.samples.length < 5) stats.samples.push({ status: r.status, error: r.error, tail: String(r.text || "").slice(-300) });
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    agent.destroy();
    // Let cancellations reach the engine, then read the server's own accounting.
    let metrics = '';
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      metrics = (await getJson(port, '/metrics')).text;
      if (metric(metrics, 'krserve_num_requests_running') === 0 && metric(metrics, 'krserve_num_requests_waiting') === 0) break;
    }
    await sleep(1500);
    const rssAfter = rssKb(server.pid);
    const result = { clients: CLIENTS, seconds: SECONDS, ...stats,
      running: metric(metrics, 'krserve_num_requests_running'), waiting: metric(metrics, 'krserve_num_requests_waiting'),
      kv_usage: metric(metrics, 'krserve_kv_cache_usage_perc'), rss_kb_before: rssBefore, rss_kb_after: rssAfter };
    console.log(JSON.stringify(result));
    assert.equal(server.exitCode, null, 'server exited during the soak');
    assert.equal(stats.unexpected, 0, `unexpected failures: ${JSON.stringify(stats.samples)}`);
    assert.ok(stats.ok > CLIENTS, `too few completed requests: ${stats.ok}`);
    assert.equal(result.running, 0);
    assert.equal(result.waiting, 0);
    assert.equal(result.kv_usage, 0, 'KV blocks still in use after the soak');
    assert.ok(rssAfter - rssBefore < 32 * 1024, `RSS grew by ${rssAfter - rssBefore} KiB`);
  } finally {
    server.kill('SIGTERM');
  }
});
