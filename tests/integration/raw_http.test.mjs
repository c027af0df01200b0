// The real kr-serve on loopback, driven with raw HTTP (node's net module):
// error classes, SSE framing, disconnect cancellation, queue limit, graceful shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, stopServer, post, get, raw, sleep } from './helpers.mjs';

const MODEL = 'tiny-llama3';
const chat = (extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

function errorShape(r, status) {
  assert.equal(r.status, status, r.text.slice(0, 300));
  const e = JSON.parse(r.body).error;
  assert.equal(typeof e.message, 'string');
  assert.ok('type' in e && 'param' in e && 'code' in e);
  return e;
}

test('error classes over raw HTTP', async () => {
  const s = await startServer(['--api-key', 'k1', '--cors-origin', 'http://app.example'], { KR_MAX_QUEUED_REQUESTS: '1' });
  const auth = { Authorization: 'Bearer k1' };
  try {
    errorShape(await post(s.port, '/v1/chat/completions', chat()), 401);
    errorShape(await post(s.port, '/v1/chat/completions', chat(), { Authorization: 'Bearer k2' }), 401);
    errorShape(await post(s.port, '/v1/chat/completions', '{"model":', auth), 400);
    assert.equal(errorShape(await post(s.port, '/v1/chat/completions', chat({ max_tokens: 'x' }), auth), 400).param, 'max_tokens');
    assert.equal(errorShape(await post(s.port, '/v1/chat/completions', chat({ top_p: 7 }), auth), 400).param, 'top_p');
    assert.equal(errorShape(await post(s.port, '/v1/chat/completions', chat({ model: 'nope' }), auth), 404).code, 'model_not_found');
    assert.equal(errorShape(await post(s.port, '/v1/completions', { model: MODEL, prompt: [1, 2], max_tokens: 10_000_000 }, auth), 400).code,
      'context_length_exceeded');
    errorShape(await get(s.port, '/v1/chat/completions', auth), 405);
    errorShape(await get(s.port, '/v2/nothing', auth), 404);
    const big = Buffer.alloc(9 << 20, 0x61);
    const r413 = await raw(s.port, Buffer.concat([Buffer.from(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`), big]));
    errorShape(r413, 413);
    // Health and metrics need no key.
    assert.equal((await get(s.port, '/health')).status, 200);
    assert.match((await get(s.port, '/metrics')).body, /krserve_/);
    // CORS headers on every response: errors, and generations streamed or not.
    assert.equal((await get(s.port, '/v2/nothing', auth)).headers['access-control-allow-origin'], 'http://app.example');
    for (const stream of [false, true]) {
      const c = await post(s.port, '/v1/chat/completions', chat({ stream }), auth);
      assert.equal(c.status, 200);
      assert.equal(c.headers['access-control-allow-origin'], 'http://app.example', `stream: ${stream}`);
    }
    // Special-token text in user content is accepted as text.
    assert.equal((await post(s.port, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'a <|eot_id|> b' }] }), auth)).status, 200);
    // Queue full: KR_MAX_QUEUED_REQUESTS=1 and several long requests at once -> some 503 with Retry-After.
    const long = { model: MODEL, prompt: 'x', max_tokens: 64, ignore_eos: true };
    const rs = await Promise.all(Array.from({ length: 12 }, () => post(s.port, '/v1/completions', long, auth)));
    const refused = rs.filter((r) => r.status === 503);
    assert.ok(refused.length > 0, `statuses: ${rs.map((r) => r.status)}`);
    assert.equal(refused[0].headers['retry-after'], '1');
    assert.ok(rs.every((r) => r.status === 200 || r.status === 503));
  } finally {
    await stopServer(s);
  }
});

test('SSE framing, tokenize/detokenize, stats, keep-alive pipelining', async () => {
  const s = await startServer();
  try {
    const r = await post(s.port, '/v1/chat/completions', chat({ stream: true, max_tokens: 3, ignore_eos: true }));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    const events = r.body.split('\n\n').filter((x) => x);
    assert.ok(events.every((e) => e.startsWith('data: ')));
    assert.equal(events[events.length - 1], 'data: [DONE]');
    const tok = JSON.parse((await post(s.port, '/tokenize', { prompt: 'Hello world' })).body);
    assert.ok(tok.tokens.length >= 3);
    const detok = JSON.parse((await post(s.port, '/detokenize', { tokens: tok.tokens })).body);
    assert.match(detok.prompt, /Hello world$/);
    assert.equal((await post(s.port, '/detokenize', { tokens: [-1] })).status, 400);
    const stats = JSON.parse((await get(s.port, '/stats')).body);
    assert.ok(stats.requests_finished >= 1);
    assert.ok('latency_s' in stats && 'tokens_per_s' in stats);
    const two = await raw(s.port, Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { untilClose: true });
    assert.equal((two.text.match(/HTTP\/1\.1 200/g) || []).length, 2, two.text);
  } finally {
    await stopServer(s);
  }
});

// The value of krserve_request_success_total{finished_reason="<reason>"} (NaN when absent).
function finishedCount(metrics, reason) {
  const m = new RegExp(`^krserve_request_success_total\\{[^}]*finished_reason="${reason}"[^}]*\\} ([0-9.eE+-]+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : NaN;
}

test('a client that disconnects mid-stream is cancelled and its sequence freed', async () => {
  const s = await startServer();
  try {
    const before = (await get(s.port, '/metrics')).body;
    assert.equal(finishedCount(before, 'cancelled'), 0, 'no cancelled request yet');
    const body = JSON.stringify({ model: MODEL, prompt: 'hello', max_tokens: 100000, ignore_eos: true, stream: true });
    const sock = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    let seen = '';
    await new Promise((r) => sock.on('data', (d) => { seen += d; if ((seen.match(/data: /g) || []).length >= 3) r(); }));
    const running = JSON.parse((await get(s.port, '/stats')).body).engine.running;
    assert.equal(running, 1);
    sock.destroy();
    let after = 1;
    for (let i = 0; i < 100 && after !== 0; i++) {
      await sleep(20);
      after = JSON.parse((await get(s.port, '/stats')).body).engine.running;
    }
    assert.equal(after, 0, 'generation still running after the client left');
    // Counted once, as cancelled (not as finished by length or stop).
    const m = (await get(s.port, '/metrics')).body;
    assert.equal(finishedCount(m, 'cancelled'), 1, m.split('\n').filter((l) => l.includes('request_success')).join('\n'));
    assert.equal(finishedCount(m, 'length'), finishedCount(before, 'length'));
    assert.equal(finishedCount(m, 'stop'), finishedCount(before, 'stop'));
  } finally {
    await stopServer(s);
  }
});

test('SIGTERM drains: in-flight stream finishes or is cancelled, new connections refused, exit 0', async () => {
  const s = await startServer([], { KR_SHUTDOWN_TIMEOUT_S: '1' });
  const inflight = post(s.port, '/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 100000, ignore_eos: true, stream: true });
  await sleep(300);
  const t0 = Date.now();
  const code = await stopServer(s);
  const r = await inflight;
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 8000, 'shutdown took too long');
  assert.equal(r.status, 200);
  assert.match(r.body, /data: \[DONE\]/);  // the stream was closed properly (error event or finish)
  const refused = await get(s.port, '/health').catch(() => ({ status: 0 }));
  assert.equal(refused.status, 0);
});
