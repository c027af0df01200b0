// /metrics of the real server: krserve_ series by default; with
// --metrics-vllm-names the same series also under vLLM's names, with equal values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer, post, get } from './helpers.mjs';

const value = (text, name) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

test('metrics: krserve_ names, and vLLM names on request', async () => {
  for (const vllm of [false, true]) {
    const s = await startServer(vllm ? ['--metrics-vllm-names'] : []);
    try {
      const r = await post(s.port, '/v1/completions', { model: 'tiny-llama3', prompt: 'hello', max_tokens: 5, ignore_eos: true });
      assert.equal(r.status, 200);
      const m = await get(s.port, '/metrics');
      assert.equal(m.status, 200);
      assert.equal(value(m.body, 'krserve_generation_tokens_total'), 5);
      assert.equal(value(m.body, 'krserve_time_to_first_token_seconds_count'), 1);
      if (vllm) {
        assert.equal(value(m.body, 'vllm:generation_tokens_total'), 5);
        assert.equal(value(m.body, 'vllm:time_to_first_token_seconds_count'), 1);
      } else {
        assert.ok(!m.body.includes('vllm:'), 'vLLM names exported without the flag');
      }
    } finally {
      await stopServer(s);
    }
  }
});
