// deploy/nginx/kr-serve.conf in front of two real kr-serve replicas (CPU, tiny
// model), all on loopback, nginx run as the current user under a temporary
// prefix. Checks streaming through the balancer, conversation affinity, and
// failover: during a load run one replica is killed (SIGKILL) while streams
// are running on it. Every request that was not streaming from the killed
// replica at that moment must succeed, including every request started after
// the kill; only streams that were running there may fail. The counts are
// printed and written to KR_TEST_OUT_DIR/nginx-failover.json.
//
// Fails (does not skip) when nginx is missing: scripts/prepare-tests.sh installs it.
// ctest: deploy_nginx_failover.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startServer, freePort, get, sleep } from '../integration/helpers.mjs';

const root = new URL('../../', import.meta.url).pathname;
const NGINX = process.env.KR_NGINX || ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const OUT_DIR = process.env.KR_TEST_OUT_DIR || path.join(root, 'build', 'test-output', 'deploy');
const LOAD_CLIENTS = 8;
const MAX_TOKENS = 48;

// The shipped config with the replicas' and the balancer's addresses filled in,
// inside a minimal nginx.conf whose every path is under `dir`.
function renderConfig(dir, lbPort, replicaPorts) {
  let conf = fs.readFileSync(path.join(root, 'deploy/nginx/kr-serve.conf'), 'utf8');
  const replace = (from, to, times) => {
    const n = conf.split(from).length - 1;
    assert.equal(n, times, `deploy/nginx/kr-serve.conf: expected ${times} x '${from}'`);
    conf = conf.split(from).join(to);
  };
  replace('127.0.0.1:8001', `127.0.0.1:${replicaPorts[0]}`, 2);
  replace('127.0.0.1:8002', `127.0.0.1:${replicaPorts[1]}`, 2);
  replace('listen 8080;', `listen 127.0.0.1:${lbPort};`, 1);
  // Test only: tell the client which replica answered.
  replace('proxy_pass http://$kr_serve_pool;', 'proxy_pass http://$kr_serve_pool;\n        add_header X-Upstream $upstream_addr always;', 1);
  fs.writeFileSync(path.join(dir, 'kr-serve.conf'), conf);
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, t), { recursive: true });
  const main = [
    // As root, nginx would hand its workers to `nobody`, who cannot read this folder.
    process.getuid() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 1024; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t === 'body' ? 'client_body' : t}_temp_path ${dir}/${t};`),
    `  include ${dir}/kr-serve.conf;`,
    '}',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'nginx.conf'), main);
}

// One streamed chat completion through the balancer. Resolves (never rejects)
// with what happened: status, the replica(s) nginx used, whether [DONE] came,
// and when the headers and the last byte arrived.
function streamRequest(port, { conversation, maxTokens = MAX_TOKENS, onHeaders } = {}) {
  return new Promise((resolve) => {
    const rec = { start: Date.now(), headersAt: 0, end: 0, status: 0, upstream: '', done: false, chunks: 0, error: '' };
    const body = JSON.stringify({
      messages: [{ role: 'user', content: 'Count to a hundred.' }], max_tokens: maxTokens, ignore_eos: true, stream: true,
    });
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (conversation) headers['X-Conversation-Id'] = conversation;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers, agent: false, timeout: 20_000 }, (res) => {
      rec.headersAt = Date.now();
      rec.status = res.statusCode;
      rec.upstream = String(res.headers['x-upstream'] || '');
      if (onHeaders) onHeaders(rec);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        rec.chunks++;
        text += d;
      });
      res.on('end', () => {
        rec.end = Date.now();
        rec.done = text.includes('data: [DONE]');
        if (!rec.done && !rec.error) rec.error = `no [DONE] (status ${rec.status}): ${text.slice(0, 200)}`;
        resolve(rec);
      });
      res.on('error', (e) => { rec.error ||= e.message; });
      res.on('aborted', () => { rec.error ||= 'aborted'; });
      res.on('close', () => {
        if (!rec.end) {
          rec.end = Date.now();
          rec.error ||= 'connection closed mid-stream';
          resolve(rec);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      rec.end = Date.now();
      rec.error ||= e.message;
      resolve(rec);
    });
    req.end(body);
  });
}

// Sends `signal`, then SIGKILL if the process has not exited within `ms`.
function stopProcess(proc, signal, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    proc.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill(signal);
  });
}

// The replica that answered: the last address nginx tried.
const servedBy = (rec) => rec.upstream.split(',').pop().trim();

test('nginx in front of two replicas: streaming, affinity, and failover when one dies', { timeout: 90_000 }, async () => {
  assert.ok(NGINX, 'nginx is not installed: run scripts/prepare-tests.sh (installs Debian\'s nginx)');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kr-nginx-'));
  const replicas = [];
  let nginx = null;
  try {
    for (let i = 0; i < 2; i++) replicas.push(await startServer(['--threads', '1']));
    const addr = replicas.map((r) => `127.0.0.1:${r.port}`);
    const lbPort = await freePort();
    renderConfig(dir, lbPort, replicas.map((r) => r.port));
    let nginxErr = '';
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    nginx.stderr.on('data', (d) => { nginxErr += d; });
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      if (nginx.exitCode !== null) break;
      up = (await get(lbPort, '/health').catch(() => ({ status: 0 }))).status === 200;
      if (!up) await sleep(50);
    }
    assert.ok(up, `nginx did not come up: ${nginxErr}\n${fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''}`);

    // ---- streaming passes through unbuffered: the first bytes come long before the end ----
    const long = await streamRequest(lbPort, { maxTokens: 160 });
    assert.equal(long.error, '', long.error);
    assert.ok(addr.includes(servedBy(long)), `X-Upstream ${long.upstream}`);
    assert.ok(long.chunks >= 20, `the stream came in ${long.chunks} pieces`);
    assert.ok(long.headersAt - long.start < (long.end - long.start) / 3,
      `headers after ${long.headersAt - long.start} ms of ${long.end - long.start} ms`);

    // ---- affinity: one conversation, one replica; many conversations spread ----
    const sameConv = await Promise.all([...Array(6)].map(() => streamRequest(lbPort, { conversation: 'conv-42', maxTokens: 2 })));
    assert.equal(new Set(sameConv.map(servedBy)).size, 1, `conv-42 went to ${sameConv.map(servedBy)}`);
    const manyConv = [];
    for (let i = 0; i < 24; i++) manyConv.push(await streamRequest(lbPort, { conversation: `conv-${i}`, maxTokens: 2 }));
    assert.deepEqual([...new Set(manyConv.map(servedBy))].sort(), [...addr].sort());
    assert.ok([...sameConv, ...manyConv].every((r) => r.done));

    // ---- failover under load ----
    const victim = 1;
    const victimAddr = addr[victim];
    const records = [];
    const running = new Set();  // requests whose headers came and whose stream has not ended
    let stopAt = Infinity;
    let killAt = 0;
    let runningOnVictimAtKill = new Set();
    // Each client runs until 3 s after the kill and until one of its requests
    // that started after the kill has ended, so every client puts at least one
    // request on the survivor however slow a request is (sanitizer builds on
    // 2 cores take seconds per request; a wall-clock stop alone left clients
    // whose only request after the kill had not started yet).
    const client = async () => {
      let endedAfterKill = false;
      while (Date.now() < stopAt || !endedAfterKill) {
        const p = streamRequest(lbPort, { onHeaders: (rec) => running.add(rec) });
        const rec = await p;
        running.delete(rec);
        records.push(rec);
        if (killAt && rec.start >= killAt) endedAfterKill = true;
      }
    };
    const clients = [...Array(LOAD_CLIENTS)].map(client);
    // Let the load settle, then kill the victim while streams are running on it.
    await sleep(1500);
    for (let i = 0; i < 200; i++) {
      const onVictim = [...running].filter((r) => servedBy(r) === victimAddr && r.chunks > 0);
      if (onVictim.length > 0) break;
      await sleep(10);
    }
    runningOnVictimAtKill = new Set([...running].filter((r) => servedBy(r) === victimAddr));
    killAt = Date.now();
    replicas[victim].proc.kill('SIGKILL');
    stopAt = killAt + 3000;
    await Promise.all(clients);

    const before = records.filter((r) => r.start < killAt);
    const after = records.filter((r) => r.start >= killAt);
    const mayFail = records.filter((r) => runningOnVictimAtKill.has(r));
    const mustSucceed = records.filter((r) => !runningOnVictimAtKill.has(r));
    const failed = (list) => list.filter((r) => r.error || !r.done);
    const counts = {
      requests: records.length,
      before_kill: before.length,
      before_kill_on_victim: before.filter((r) => servedBy(r) === victimAddr).length,
      before_kill_on_survivor: before.filter((r) => servedBy(r) !== victimAddr).length,
      streams_on_victim_at_kill: mayFail.length,
      streams_on_victim_at_kill_failed: failed(mayFail).length,
      after_kill: after.length,
      after_kill_failed: failed(after).length,
      after_kill_retried_from_victim: after.filter((r) => r.upstream.includes(victimAddr) && r.upstream.includes(',')).length,
      must_succeed: mustSucceed.length,
      must_succeed_failed: failed(mustSucceed).length,
    };
    console.log(`nginx failover counts: ${JSON.stringify(counts)}`);
    fs.writeFileSync(path.join(OUT_DIR, 'nginx-failover.json'), `${JSON.stringify(counts, null, 2)}\n`);

    // Both replicas took load before the kill, and the kill hit running streams.
    assert.ok(counts.before_kill_on_victim > 0 && counts.before_kill_on_survivor > 0, JSON.stringify(counts));
    assert.ok(counts.streams_on_victim_at_kill > 0, 'no stream was running on the killed replica');
    // (after_kill >= LOAD_CLIENTS holds by construction: a client stops only after one of its
    // requests that started after the kill has ended, so it is not asserted.)
    // Nothing else may fail; every new request after the kill succeeds on the survivor.
    assert.deepEqual(failed(mustSucceed).map((r) => `${r.upstream}: ${r.error}`), []);
    for (const r of after) assert.equal(servedBy(r), addr[1 - victim]);
  } finally {
    if (nginx) await stopProcess(nginx, 'SIGQUIT', 3000);
    for (const r of replicas) await stopProcess(r.proc, 'SIGTERM', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
