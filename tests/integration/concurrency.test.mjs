// 1,024 concurrent streaming connections against the real server: every one
// gets its whole stream ([DONE]) and the server stays healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, stopServer, get } from './helpers.mjs';

const CONNECTIONS = 1024;

function stream(port, body) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    sock.on('connect', () => sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
    sock.on('data', (d) => { text += d.toString(); });
    sock.on('error', () => {});
    sock.on('close', () => resolve(text));
  });
}

test(`${CONNECTIONS} concurrent streaming connections`, { timeout: 240000 }, async () => {
  const s = await startServer([], { KR_MAX_NUM_SEQS: '256' });
  try {
    const body = JSON.stringify({ model: 'tiny-llama3', prompt: 'hello', max_tokens: 2, ignore_eos: true, stream: true });
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: CONNECTIONS }, () => stream(s.port, body)));
    const seconds = (Date.now() - t0) / 1000;
    const complete = results.filter((t) => t.startsWith('HTTP/1.1 200') && t.includes('data: [DONE]')).length;
    console.log(JSON.stringify({ connections: CONNECTIONS, complete, seconds }));
    assert.equal(complete, CONNECTIONS);
    assert.equal((await get(s.port, '/health')).status, 200);
  } finally {
    await stopServer(s);
  }
});
