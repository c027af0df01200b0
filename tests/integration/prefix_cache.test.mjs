// Prefix caching through the real server: usage.prompt_tokens_details.cached_tokens
// (streamed too), cache_salt isolation and its 400s, /stats and /metrics counters
// (vLLM's names with --metrics-vllm-names), --no-prefix-caching, and a
// --kv-offload-gb larger than the host's memory refused at start-up, n > 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { bin, startServer, stopServer, post, get } from './helpers.mjs';

const ids = (n, first = 500) => Array.from({ length: n }, (_, i) => first + i);
const value = (text, name) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};
const complete = async (port, extra) => {
  const r = await post(port, '/v1/completions', { model: 'tiny-llama3', prompt: ids(40), max_tokens: 3, temperature: 0,
    ignore_eos: true, ...extra });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
};

test('cached_tokens, cache_salt, counters', async () => {
  const s = await startServer(['--metrics-vllm-names']);
  try {
    // 40 tokens in blocks of 16: the first 32 can come from the cache (the last token is always computed).
    assert.equal((await complete(s.port, {})).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s.port, {})).usage.prompt_tokens_details.cached_tokens, 32);
    assert.equal((await complete(s.port, { cache_salt: 'tenant-a' })).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s.port, { cache_salt: 'tenant-b' })).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s.port, { cache_salt: 'tenant-a' })).usage.prompt_tokens_details.cached_tokens, 32);
    // Streamed usage carries it too.
    const st = await post(s.port, '/v1/completions', { model: 'tiny-llama3', prompt: ids(40), max_tokens: 2,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const usage = st.body.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
      .filter((c) => c.usage).pop().usage;
    assert.equal(usage.prompt_tokens_details.cached_tokens, 32);
    // Bad salts.
    for (const salt of ['x'.repeat(257), 5, ['a']]) {
      const r = await post(s.port, '/v1/completions', { model: 'tiny-llama3', prompt: 'hi', max_tokens: 1, cache_salt: salt });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.param, 'cache_salt');
    }
    const stats = JSON.parse((await get(s.port, '/stats')).body);
    assert.equal(stats.prefix_cache.queried_tokens, 6 * 40);
    assert.equal(stats.prefix_cache.hit_tokens, 3 * 32);
    assert.ok(Math.abs(stats.prefix_cache.hit_rate - 96 / 240) < 1e-9);
    assert.equal(stats.prefix_cache.kv_block_size, 16);
    const m = (await get(s.port, '/metrics')).body;
    assert.equal(value(m, 'krserve_prefix_cache_queries_total'), 240);
    assert.equal(value(m, 'krserve_prefix_cache_hits_total'), 96);
    assert.equal(value(m, 'vllm:prefix_cache_queries_total'), 240);
    assert.equal(value(m, 'vllm:prefix_cache_hits_total'), 96);
    // n > 1: the choices share the cached prompt; a fresh prompt is computed once, and the usage reports
    // what every choice found (the first choice computed it: 0).
    const two = await complete(s.port, { n: 2 });
    assert.equal(two.choices.length, 2);
    assert.equal(two.usage.prompt_tokens_details.cached_tokens, 32);
    assert.equal(two.choices[0].text, two.choices[1].text);
    const fresh = await complete(s.port, { n: 3, prompt: ids(40, 2000) });
    assert.equal(fresh.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s.port, { prompt: ids(40, 2000) })).usage.prompt_tokens_details.cached_tokens, 32);
  } finally {
    await stopServer(s);
  }
});

test('--no-prefix-caching: nothing cached', async () => {
  const s = await startServer(['--no-prefix-caching']);
  try {
    await complete(s.port, {});
    assert.equal((await complete(s.port, {})).usage.prompt_tokens_details.cached_tokens, 0);
  } finally {
    await stopServer(s);
  }
});

test('--kv-offload-gb beyond the host memory stops start-up with a clear message', async () => {
  const proc = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', '0', '--kv-offload-gb', '900000'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d.toString(); });
  const code = await new Promise((resolve) => proc.on('exit', resolve));
  assert.notEqual(code, 0);
  assert.match(err, /--kv-offload-gb 900000.*only [0-9.]+ GiB of host memory is available/);
});
