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

function request(port, path, body, { abortAfterChunks = -1 } = {}) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let chunks = 0;
      let text = '';
      res.on('data', (d) => {
        chunks++;
        text += d;
        if (abortAfterChunks >= 0 && chunks > abortAfterChunks) { req.destroy(); resolve({ status: res.statusCode, aborted: true }); }
      });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', () => resolve({ status: res.statusCode, aborted: true }));
    });
    req.on('error', (e) => resolve({ status: 0, error: String(e) }));
    req.end(data);
  });
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
      return request(port, chat ? '/v1/chat/completions' : '/v1/completions', body, { abortAfterChunks: disconnect ? Math.floor(rand() * 4) : -1 });
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
        else if (r.status === 200) stats.ok++;
        else {
          stats.unexpected++;
          if (r.status >= 500) stats.five_xx++;
          if (stats.samples.length < 5) stats.samples.push(r);
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
