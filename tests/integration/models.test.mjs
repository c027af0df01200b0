// Several models in one server, on loopback with the tiny model served under
// several names (each name is its own model: its own engine thread, KV pool,
// metrics and load/unload life): routing by "model", /v1/models states and
// events, lazy loading with --max-loaded-models and LRU eviction, the idle TTL,
// isolation of one model's queue from another, a folder that fails to load at
// run time, unknown models, start-time refusals, and the probes while draining.
//
// ctest: integration_models.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startServer, stopServer, get, post, sleep, bin, freePort } from './helpers.mjs';

const root = new URL('../../', import.meta.url).pathname;
const TINY = path.join(root, 'models/tiny-llama3');

// --model TINY --served-model-name NAME, for each name.
const tinyAs = (...names) => names.flatMap((n) => ['--model', TINY, '--served-model-name', n]);

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kr-models-'));
}

function writeConfig(text) {
  const dir = tmpDir();
  const file = path.join(dir, 'models.toml');
  fs.writeFileSync(file, text);
  return file;
}

async function models(port) {
  const r = await get(port, '/v1/models');
  assert.equal(r.status, 200, r.body);
  return Object.fromEntries(JSON.parse(r.body).data.map((m) => [m.id, m]));
}

async function metric(port, re) {
  const m = (await get(port, '/metrics')).body;
  const hit = re.exec(m);
  return hit ? Number(hit[1]) : undefined;
}

// A series of one model: krserve_NAME{model_name="MODEL"...} value.
const series = (name, model, extra = '') =>
  new RegExp(`^krserve_${name}\\{model_name="${model}"${extra}[^}]*\\} (\\S+)$`, 'm');

const complete = (port, model, extra = {}) =>
  post(port, '/v1/completions', { ...(model ? { model } : {}), prompt: 'Hello', max_tokens: 4, temperature: 0, ...extra });

test('requests go to the model they name; /v1/models lists every model with its state', async () => {
  const s = await startServer(tinyAs('alpha', 'beta'));
  try {
    const list = await models(s.port);
    assert.deepEqual(Object.keys(list), ['alpha', 'beta']);
    for (const id of ['alpha', 'beta']) {
      assert.equal(list[id].object, 'model');
      assert.equal(list[id].state, 'loaded');
      assert.equal(list[id].loads, 1);
      assert.ok(list[id].max_model_len > 0);
      assert.ok(list[id].last_load_seconds > 0);
      assert.deepEqual(list[id].events.map((e) => e.event), ['loaded']);
      assert.equal(list[id].memory_share, 0.5, 'two copies of one folder split the memory evenly');
    }
    assert.equal(list.alpha.default, true);
    assert.equal(list.beta.default, false);

    // Each model counts its own requests (its own engine and metrics).
    const before = { alpha: await metric(s.port, series('request_success_total', 'alpha', ',finished_reason="length"')),
      beta: await metric(s.port, series('request_success_total', 'beta', ',finished_reason="length"')) };
    const r = await complete(s.port, 'beta');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).model, 'beta');
    const d = await complete(s.port, undefined);  // no "model": the default
    assert.equal(d.status, 200, d.body);
    assert.equal(JSON.parse(d.body).model, 'alpha');
    const c = await post(s.port, '/v1/chat/completions', { model: 'beta', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    assert.equal(c.status, 200, c.body);
    assert.equal(JSON.parse(c.body).model, 'beta');
    assert.equal(await metric(s.port, series('request_success_total', 'beta', ',finished_reason="length"')), before.beta + 2);
    assert.equal(await metric(s.port, series('request_success_total', 'alpha', ',finished_reason="length"')), before.alpha + 1);

    // One exposition: each family once, a sample per model.
    const text = (await get(s.port, '/metrics')).body;
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    assert.equal(new Set(types).size, types.length, 'a family is declared twice');
    assert.match(text, /^krserve_model_loaded\{model_name="alpha"\} 1$/m);
    assert.match(text, /^krserve_model_loaded\{model_name="beta"\} 1$/m);
    assert.match(text, /^krserve_startup_seconds \d/m);

    // /tokenize takes the model too.
    const t = await post(s.port, '/tokenize', { model: 'beta', prompt: 'Hello' });
    assert.equal(t.status, 200, t.body);
    const st = JSON.parse((await get(s.port, '/stats')).body);
    assert.deepEqual(st.models.map((m) => [m.name, m.state]), [['alpha', 'loaded'], ['beta', 'loaded']]);
  } finally {
    await stopServer(s);
  }
});

test('an unknown model is a 404 that lists the served names', async () => {
  const s = await startServer(tinyAs('alpha', 'beta'));
  try {
    for (const r of [await complete(s.port, 'gamma'),
      await post(s.port, '/v1/chat/completions', { model: 'gamma', messages: [{ role: 'user', content: 'x' }] }),
      await post(s.port, '/tokenize', { model: 'gamma', prompt: 'x' })]) {
      assert.equal(r.status, 404, r.body);
      const e = JSON.parse(r.body).error;
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.param, 'model');
      assert.equal(e.message, "the model 'gamma' does not exist; this server serves 'alpha', 'beta'");
    }
    const g = await get(s.port, '/v1/models/gamma');
    assert.equal(g.status, 404);
    assert.match(JSON.parse(g.body).error.message, /serves 'alpha', 'beta'/);
    const b = await get(s.port, '/v1/models/beta');
    assert.equal(b.status, 200);
    assert.equal(JSON.parse(b.body).state, 'loaded');
  } finally {
    await stopServer(s);
  }
});

test('--max-loaded-models 1: a request for another model swaps it in; waiting requests queue, not fail', async () => {
  const s = await startServer([...tinyAs('alpha', 'beta'), '--max-loaded-models', '1']);
  try {
    let list = await models(s.port);
    assert.equal(list.alpha.state, 'loaded');
    assert.equal(list.beta.state, 'unloaded', 'only the first model loads at start');
    assert.equal(list.beta.max_model_len, null);
    assert.equal(list.alpha.memory_share, 1, 'one at a time: each may use all of the memory');

    // Three requests for beta at once: one load, all answered.
    const rs = await Promise.all([1, 2, 3].map(() => complete(s.port, 'beta')));
    for (const r of rs) assert.equal(r.status, 200, r.body);
    list = await models(s.port);
    assert.equal(list.beta.state, 'loaded');
    assert.equal(list.beta.loads, 1);
    assert.equal(list.alpha.state, 'unloaded');
    assert.deepEqual(list.alpha.events.map((e) => [e.event, e.reason]), [['loaded', undefined], ['unloaded', 'evicted']]);
    assert.equal(await metric(s.port, series('model_unloads_total', 'alpha', ',reason="evicted"')), 1);
    assert.equal(await metric(s.port, series('model_loads_total', 'beta')), 1);
    assert.equal(await metric(s.port, series('model_loaded', 'alpha')), 0);
    assert.equal(await metric(s.port, series('model_loaded', 'beta')), 1);
    assert.equal(await metric(s.port, series('model_load_seconds_count', 'beta')), 1);
    // The wait for the load is queue time.
    const queued = await metric(s.port, series('request_queue_time_seconds_sum', 'beta'));
    assert.ok(queued >= list.beta.last_load_seconds, `queue time ${queued} s < load ${list.beta.last_load_seconds} s`);

    // And back.
    const a = await complete(s.port, 'alpha');
    assert.equal(a.status, 200, a.body);
    list = await models(s.port);
    assert.equal(list.alpha.state, 'loaded');
    assert.equal(list.alpha.loads, 2);
    assert.equal(list.beta.state, 'unloaded');
  } finally {
    await stopServer(s);
  }
});

test('--max-loaded-models 2 of 3: the least recently used idle model is the one unloaded', async () => {
  const s = await startServer([...tinyAs('alpha', 'beta', 'gamma'), '--max-loaded-models', '2']);
  try {
    let list = await models(s.port);
    assert.deepEqual(['alpha', 'beta', 'gamma'].map((m) => list[m].state), ['loaded', 'loaded', 'unloaded']);
    // beta, then alpha: beta is now the least recently used.
    assert.equal((await complete(s.port, 'beta')).status, 200);
    assert.equal((await complete(s.port, 'alpha')).status, 200);
    assert.equal((await complete(s.port, 'gamma')).status, 200);
    list = await models(s.port);
    assert.deepEqual(['alpha', 'beta', 'gamma'].map((m) => list[m].state), ['loaded', 'unloaded', 'loaded']);
    // alpha, then gamma: alpha goes next.
    assert.equal((await complete(s.port, 'alpha')).status, 200);
    assert.equal((await complete(s.port, 'gamma')).status, 200);
    assert.equal((await complete(s.port, 'beta')).status, 200);
    list = await models(s.port);
    assert.deepEqual(['alpha', 'beta', 'gamma'].map((m) => list[m].state), ['unloaded', 'loaded', 'loaded']);
  } finally {
    await stopServer(s);
  }
});

test('--model-idle-ttl-s: idle models are unloaded, a busy one is not, and the next request loads it again', async () => {
  const s = await startServer([...tinyAs('alpha', 'beta'), '--model-idle-ttl-s', '1', '--shutdown-timeout-s', '0']);
  try {
    // beta streams for longer than the TTL; alpha sits idle.
    const stream = post(s.port, '/v1/completions', { model: 'beta', prompt: 'Once', max_tokens: 20000, ignore_eos: true, stream: true });
    const until = async (cond) => {
      const t0 = Date.now();
      let list = await models(s.port);
      while (!cond(list) && Date.now() - t0 < 10_000) {
        await sleep(50);
        list = await models(s.port);
      }
      return list;
    };
    let list = await until((l) => l.beta.running === 1);
    assert.equal(list.beta.running, 1, 'the stream on beta runs');
    const betaUnloads = list.beta.unloads;
    list = await until((l) => l.alpha.state === 'unloaded');
    assert.equal(list.alpha.state, 'unloaded');
    assert.deepEqual(list.alpha.events.map((e) => [e.event, e.reason]), [['loaded', undefined], ['unloaded', 'idle']]);
    const [loaded, unloaded] = list.alpha.events;
    assert.ok(unloaded.at_unix_ms - loaded.at_unix_ms >= 950, `unloaded ${unloaded.at_unix_ms - loaded.at_unix_ms} ms after its load`);
    await sleep(1300);  // past beta's TTL too
    list = await models(s.port);
    assert.equal(list.beta.state, 'loaded', 'a model with a running request stays loaded');
    assert.equal(list.beta.running, 1);
    assert.equal(list.beta.unloads, betaUnloads);
    assert.equal(await metric(s.port, series('model_unloads_total', 'alpha', ',reason="idle"')), 1);
    const r = await complete(s.port, 'alpha');
    assert.equal(r.status, 200, r.body);
    list = await models(s.port);
    assert.equal(list.alpha.state, 'loaded');
    assert.equal(list.alpha.loads, 2);
    stream.catch(() => {});
  } finally {
    await stopServer(s);
  }
});

test("one model's full queue does not hold up another", async () => {
  const config = writeConfig(`
[[model]]
name = "busy"
path = "${TINY}"
max_num_seqs = 1
[[model]]
name = "quiet"
path = "${TINY}"
`);
  const s = await startServer(['--models-config', config, '--shutdown-timeout-s', '0']);
  const sockets = [];
  try {
    // Eight long requests on "busy": one runs, seven wait.
    for (let i = 0; i < 8; i++) {
      sockets.push(post(s.port, '/v1/completions', { model: 'busy', prompt: 'Tell', max_tokens: 2000, ignore_eos: true }));
    }
    let waiting = 0;
    for (let i = 0; i < 100 && waiting < 6; i++) {
      await sleep(50);
      waiting = await metric(s.port, series('num_requests_waiting', 'busy')) ?? 0;
    }
    assert.ok(waiting >= 6, `busy has ${waiting} waiting`);
    const t0 = Date.now();
    const r = await complete(s.port, 'quiet', { max_tokens: 8 });
    const ms = Date.now() - t0;
    assert.equal(r.status, 200, r.body);
    const stillWaiting = await metric(s.port, series('num_requests_waiting', 'busy'));
    assert.ok(stillWaiting >= 5, `quiet answered only after busy's queue drained (${stillWaiting} waiting)`);
    assert.ok(ms < 3000, `quiet took ${ms} ms`);
  } finally {
    await stopServer(s);
    await Promise.allSettled(sockets);
  }
});

test('a folder that fails to load at run time: its request gets 503 with the reason, the others keep serving', async () => {
  const broken = tmpDir();
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(TINY, f), path.join(broken, f));
  fs.writeFileSync(path.join(broken, 'model.safetensors'), fs.readFileSync(path.join(TINY, 'model.safetensors')).subarray(0, 4096));
  const config = writeConfig(`
[[model]]
name = "good"
path = "${TINY}"
[[model]]
name = "broken"
path = "${broken}"
load_at_start = false
`);
  const s = await startServer(['--models-config', config]);
  try {
    const [bad, good] = await Promise.all([complete(s.port, 'broken'), complete(s.port, 'good')]);
    assert.equal(good.status, 200, good.body);
    assert.equal(bad.status, 503, bad.body);
    const e = JSON.parse(bad.body).error;
    assert.equal(e.code, 'model_load_failed');
    assert.match(e.message, /^the model 'broken' failed to load: .*model\.safetensors/);
    const list = await models(s.port);
    assert.equal(list.broken.state, 'failed');
    assert.match(list.broken.error, /model\.safetensors/);
    assert.equal(list.broken.load_failures, 1);
    assert.deepEqual(list.broken.events.map((x) => x.event), ['load_failed']);
    assert.equal(list.good.state, 'loaded');
    assert.equal(await metric(s.port, series('model_load_failures_total', 'broken')), 1);
    // The next request tries again (the folder may have been fixed), and fails the same way.
    assert.equal((await complete(s.port, 'broken')).status, 503);
    assert.equal((await complete(s.port, 'good')).status, 200);
    assert.equal((await get(s.port, '/ready')).status, 200);
  } finally {
    await stopServer(s);
  }
});

test('the start refuses duplicate names, shares over 1.0, unknown keys and missing folders', async () => {
  const refuse = (args, message) => {
    const r = spawnSync(bin, ['serve', '--port', '0', ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    assert.ok(r.stderr.split('\n')[0].includes(message), `${args.join(' ')}: ${r.stderr.split('\n')[0]}`);
  };
  refuse(['--model', TINY, '--model', TINY], "two models are served as 'tiny-llama3' (model 1 and model 2)");
  refuse(['--models-config', writeConfig(`[[model]]\nname = "a"\npath = "${TINY}"\n[[model]]\nname = "a"\npath = "${TINY}"\n`)],
    "two models are served as 'a' (line 1 and line 4)");
  refuse(['--models-config', writeConfig(`[[model]]\nname = "a"\npath = "${TINY}"\nmemory_share = 0.6\n[[model]]\nname = "b"\npath = "${TINY}"\nmemory_share = 0.5\n`)],
    'the memory shares add up to 1.1 (a 0.6, b 0.5), more than 1.0');
  const unknown = writeConfig(`[[model]]\nname = "a"\npath = "${TINY}"\nmax_num_seq = 4\n`);
  refuse(['--models-config', unknown], `${unknown}:4: unknown key 'max_num_seq' in [[model]] (did you mean 'max_num_seqs'?)`);
  refuse(['--model', '/nonexistent/model'], "model 'model': /nonexistent/model/config.json does not exist");
  refuse(['--models-config', unknown, '--model', TINY], '--model and --served-model-name cannot be given with it');
});

test('draining: /health stays 200 (alive) and /ready turns 503 on the metrics port', async () => {
  const metricsPort = await freePort();
  const s = await startServer(['--metrics-port', String(metricsPort), '--shutdown-timeout-s', '20']);
  assert.equal((await get(metricsPort, '/health')).status, 200);
  assert.equal((await get(metricsPort, '/ready')).status, 200);
  // A stream keeps the drain going while we probe; closing it ends the drain.
  const body = JSON.stringify({ prompt: 'Go', max_tokens: 5000, ignore_eos: true, stream: true });
  const sock = net.connect(s.port, '127.0.0.1');
  await new Promise((resolve) => sock.on('connect', resolve));
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await new Promise((resolve) => sock.once('data', resolve));
  const exited = stopServer(s);
  await sleep(200);
  try {
    const health = await get(metricsPort, '/health');
    const ready = await get(metricsPort, '/ready');
    assert.equal(health.status, 200, health.body);
    assert.equal(JSON.parse(health.body).status, 'draining');
    assert.equal(ready.status, 503, ready.body);
    assert.equal(JSON.parse(ready.body).status, 'draining');
    assert.equal(s.proc.exitCode, null, 'still draining');
    // The main port refuses new connections at once.
    assert.equal((await get(s.port, '/health').catch(() => ({ status: 0 }))).status, 0);
  } finally {
    sock.destroy();
  }
  assert.equal(await exited, 0);
});
