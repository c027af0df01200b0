// The real kr-serve on loopback, driven by the official OpenAI client (npm
// package `openai`, installed by scripts/prepare-tests.sh). Without it every
// test here fails, naming the missing package: a plain `ctest` must not pass
// without the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startServer, stopServer } from './helpers.mjs';

const haveClient = existsSync(new URL('./node_modules/openai/package.json', import.meta.url));
let server;
let client;
const MODEL = 'tiny-llama3';

before(async () => {
  if (!haveClient) throw new Error('the `openai` package is missing from tests/integration/node_modules: run scripts/prepare-tests.sh');
  const { default: OpenAI } = await import('openai');
  server = await startServer(['--api-key', 'sk-test']);
  client = new OpenAI({ apiKey: 'sk-test', baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0 });
});
after(async () => { if (server) await stopServer(server); });

test('chat completion, not streamed: shape and usage', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
});

test('chat completion streamed: role first, content deltas, finish, usage chunk with no choices', async () => {
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 6, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const finish = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, 'length');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 6);
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  // Streamed text equals the non-streamed text (greedy).
  const text = chunks.map((c) => c.choices[0]?.delta?.content || '').join('');
  const whole = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 6, temperature: 0, ignore_eos: true });
  assert.equal(text, whole.choices[0].message.content);
});

test('completions with a text prompt and with token ids; n > 1; logprobs', async () => {
  const a = await client.completions.create({ model: MODEL, prompt: 'The quick brown fox', max_tokens: 5, temperature: 0,
    ignore_eos: true, logprobs: 2 });
  assert.match(a.id, /^cmpl-/);
  assert.equal(a.object, 'text_completion');
  assert.equal(a.usage.completion_tokens, 5);
  const lp = a.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs.length, 5);
  assert.ok(lp.token_logprobs.every((x) => x <= 0));
  assert.equal(Object.keys(lp.top_logprobs[0]).length, 2);
  // The same prompt as ids gives the same text.
  const tok = await fetch(`http://127.0.0.1:${server.port}/tokenize`, { method: 'POST',
    headers: { Authorization: 'Bearer sk-test' }, body: JSON.stringify({ prompt: 'The quick brown fox' }) }).then((r) => r.json());
  const b = await client.completions.create({ model: MODEL, prompt: tok.tokens, max_tokens: 5, temperature: 0, ignore_eos: true });
  assert.equal(b.choices[0].text, a.choices[0].text);
  assert.equal(b.usage.prompt_tokens, tok.tokens.length);
  const n = await client.completions.create({ model: MODEL, prompt: 'Hi', max_tokens: 4, n: 3, temperature: 1, seed: 7,
    ignore_eos: true });
  assert.deepEqual(n.choices.map((c) => c.index).sort(), [0, 1, 2]);
  assert.equal(n.usage.completion_tokens, 12);
});

test('chat logprobs with top_logprobs and return_tokens_as_token_ids', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3,
    temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 2, return_tokens_as_token_ids: true });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 3);
  for (const item of content) {
    assert.match(item.token, /^token_id:\d+$/);
    assert.equal(item.top_logprobs.length, 2);
    assert.ok(item.logprob <= 0);
    // Greedy: the chosen token is the most likely one.
    assert.equal(item.token, item.top_logprobs[0].token);
  }
});

test('stop strings never leak, also when they span tokens', async () => {
  const base = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 24, temperature: 0,
    ignore_eos: true });
  const text = base.choices[0].text;
  assert.ok(text.length >= 6, `generated text too short: ${JSON.stringify(text)}`);
  // A stop string made of the end of one token and the start of the next, when possible: take chars 2..6.
  const stop = text.slice(2, 6);
  for (const stream of [false, true]) {
    const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 24, temperature: 0, ignore_eos: true, stop: [stop], stream };
    let out = '';
    let finish = null;
    if (stream) {
      for await (const c of await client.completions.create(params)) { out += c.choices[0]?.text || ''; finish = c.choices[0]?.finish_reason || finish; }
    } else {
      const r = await client.completions.create(params);
      out = r.choices[0].text;
      finish = r.choices[0].finish_reason;
    }
    assert.equal(out, text.slice(0, text.indexOf(stop)), `stream=${stream}`);
    assert.equal(finish, 'stop');
  }
});

test('errors through the client: 401, 404 model, 400 with param, context length', async () => {
  const { default: OpenAI } = await import('openai');
  const anon = new OpenAI({ apiKey: 'wrong', baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0 });
  await assert.rejects(anon.models.list(), (e) => e.status === 401);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-17', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 9 }),
    (e) => e.status === 400 && e.param === 'temperature');
  await assert.rejects(client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 1 << 30 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded');
  const models = await client.models.list();
  assert.equal(models.data[0].id, MODEL);
});
