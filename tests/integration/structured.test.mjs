// Structured outputs, tool calls and reasoning through the official `openai`
// npm client against the real kr-serve on loopback.
//  - tiny-llama3 (random weights) with --tool-call-parser llama3_json: JSON
//    Schema / json_object / regex / choice / GBNF outputs at temperature 1.0,
//    chat and completions, streamed or not, n > 1. Only the constraint can make
//    random weights produce valid output; schemas are checked with Debian's
//    python3-jsonschema (a validator this project does not write);
//  - a model folder with the Qwen3 tokenizer and chat template (dummy weights
//    of the tiny shape): Hermes tool calls, tool results rendered back through
//    the template, reasoning_content (detected from the template), and a
//    grammar after a closed think block (enable_thinking false).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, copyFileSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, stopServer, post } from './helpers.mjs';

const root = new URL('../../', import.meta.url).pathname;
const haveClient = existsSync(new URL('./node_modules/openai/package.json', import.meta.url));
const skip = haveClient ? false : 'node_modules missing: run `npm ci` in tests/integration';

// Validates instances against JSON Schemas with python3-jsonschema; returns the error messages ('' when valid).
function validate(pairs) {
  const script = `
import json, sys, jsonschema
out = []
for schema, instance in json.load(sys.stdin):
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    out.append("; ".join(e.message for e in v.iter_errors(instance)))
print(json.dumps(out))`;
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  return JSON.parse(execFileSync(python, ['-c', script], { input: JSON.stringify(pairs) }).toString());
}

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 16 },
    age: { type: 'integer', minimum: 0, maximum: 130 },
    email: { type: 'string', format: 'email', maxLength: 40 },
    role: { enum: ['admin', 'user', 'guest'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
  },
  required: ['name', 'age', 'role'],
  additionalProperties: false,
};
const ORDER = {
  type: 'object',
  $defs: { item: { type: 'object', properties: { sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4}$' },
    qty: { type: 'integer', minimum: 1, maximum: 99 }, price: { type: 'number', minimum: 0, maximum: 1000 } },
  required: ['sku', 'qty', 'price'], additionalProperties: false } },
  properties: {
    id: { type: 'string', format: 'uuid' },
    date: { type: 'string', format: 'date' },
    items: { type: 'array', items: { $ref: '#/$defs/item' }, minItems: 1, maxItems: 2 },
    paid: { type: 'boolean' },
    note: { anyOf: [{ type: 'null' }, { type: 'string', maxLength: 10 }] },
  },
  required: ['id', 'date', 'items', 'paid', 'note'],
  additionalProperties: false,
};
const WEATHER_TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'], additionalProperties: false } } },
  { type: 'function', function: { name: 'search', description: 'Web search',
    parameters: { type: 'object', properties: { query: { type: 'string', maxLength: 20 } }, required: ['query'],
      additionalProperties: false } } },
];
const paramsOf = (name) => WEATHER_TOOLS.find((t) => t.function.name === name).function.parameters;

let llama;   // tiny-llama3
let qwen;    // Qwen3 tokenizer and template
let qwenDir;
let OpenAI;

before(async () => {
  if (!haveClient) return;
  ({ default: OpenAI } = await import('openai'));
  const a = await startServer(['--tool-call-parser', 'llama3_json']);
  llama = { server: a, client: new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${a.port}/v1`, maxRetries: 0 }) };
  // A folder with the Qwen3 tokenizer and template and the tiny Llama shape (dummy weights).
  qwenDir = mkdtempSync(path.join(tmpdir(), 'kr-qwen3-'));
  const cfg = JSON.parse(readFileSync(path.join(root, 'models/tiny-llama3/config.json'), 'utf8'));
  cfg.vocab_size = 151936;
  cfg.bos_token_id = null;
  cfg.eos_token_id = [151645, 151643];
  writeFileSync(path.join(qwenDir, 'config.json'), JSON.stringify(cfg));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(path.join(root, 'tests/golden/qwen3-tokenizer', f), path.join(qwenDir, f));
  const b = await startServer(['--model', qwenDir, '--dummy-weights', '--served-model-name', 'tiny-qwen3']);
  qwen = { server: b, client: new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${b.port}/v1`, maxRetries: 0 }) };
});
after(async () => {
  if (llama) await stopServer(llama.server);
  if (qwen) await stopServer(qwen.server);
  if (qwenDir) rmSync(qwenDir, { recursive: true, force: true });
});

const user = (content) => [{ role: 'user', content }];

test('json_schema (response_format): n = 3 choices at temperature 1.0 parse and validate', { skip }, async () => {
  for (const schema of [PERSON, ORDER]) {
    const r = await llama.client.chat.completions.create({ model: 'tiny-llama3', messages: user('Give me JSON'),
      temperature: 1.0, seed: 11, n: 3, max_tokens: 400,
      response_format: { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } } });
    assert.equal(r.choices.length, 3);
    const pairs = [];
    for (const c of r.choices) {
      assert.equal(c.finish_reason, 'stop', c.message.content);
      pairs.push([schema, JSON.parse(c.message.content)]);
    }
    assert.deepEqual(validate(pairs), ['', '', '']);
  }
});

test('json_schema streamed (chat) and guided_json on completions', { skip }, async () => {
  const stream = await llama.client.chat.completions.create({ model: 'tiny-llama3', messages: user('JSON please'),
    temperature: 1.0, seed: 5, max_tokens: 400, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'order', schema: ORDER } } });
  let text = '';
  let finish = null;
  for await (const ch of stream) {
    text += ch.choices[0]?.delta?.content || '';
    finish = ch.choices[0]?.finish_reason || finish;
  }
  assert.equal(finish, 'stop');
  const c = await llama.client.completions.create({ model: 'tiny-llama3', prompt: 'A person:', temperature: 1.0,
    seed: 3, max_tokens: 400, n: 2, guided_json: PERSON });
  const pairs = [[ORDER, JSON.parse(text)], ...c.choices.map((x) => [PERSON, JSON.parse(x.text)])];
  assert.deepEqual(validate(pairs), ['', '', '']);
  // llama-server's json_schema field, streamed completions.
  const s2 = await llama.client.completions.create({ model: 'tiny-llama3', prompt: 'x', temperature: 1.0, seed: 9,
    max_tokens: 400, stream: true, json_schema: PERSON });
  let t2 = '';
  for await (const ch of s2) t2 += ch.choices[0]?.text || '';
  assert.deepEqual(validate([[PERSON, JSON.parse(t2)]]), ['']);
});

test('json_object: stops only where the object is complete', { skip }, async () => {
  const r = await llama.client.chat.completions.create({ model: 'tiny-llama3', messages: user('Any JSON'),
    temperature: 1.0, seed: 1, n: 4, max_tokens: 600, response_format: { type: 'json_object' } });
  let stopped = 0;
  for (const c of r.choices) {
    assert.ok(c.message.content.startsWith('{'), c.message.content);
    if (c.finish_reason === 'stop') {
      stopped++;
      const v = JSON.parse(c.message.content);
      assert.equal(typeof v, 'object');
      assert.ok(v !== null && !Array.isArray(v));
    }
  }
  assert.ok(stopped >= 1, 'no json_object choice finished within max_tokens');
});

test('guided_regex, guided_choice and a GBNF grammar match fully, streamed or not', { skip }, async () => {
  const re = '[a-z]{3,8}-[0-9]{2,4}( [A-Z][a-z]{1,5})?';
  for (const stream of [false, true]) {
    const params = { model: 'tiny-llama3', prompt: 'code:', temperature: 1.0, seed: 21, max_tokens: 60, n: 3, stream };
    const texts = async (extra) => {
      const r = await llama.client.completions.create({ ...params, ...extra });
      if (!stream) return r.choices.map((c) => [c.text, c.finish_reason]);
      const acc = [['', null], ['', null], ['', null]];
      for await (const ch of r) for (const c of ch.choices) {
        acc[c.index][0] += c.text || '';
        acc[c.index][1] = c.finish_reason || acc[c.index][1];
      }
      return acc;
    };
    for (const [t, f] of await texts({ guided_regex: re })) {
      assert.equal(f, 'stop');
      assert.match(t, new RegExp(`^(?:${re})$`));
    }
    for (const [t, f] of await texts({ guided_choice: ['red', 'green', 'blue sky'] })) {
      assert.equal(f, 'stop');
      assert.ok(['red', 'green', 'blue sky'].includes(t), t);
    }
    const gbnf = 'root ::= expr\nexpr ::= term (("+" | "-" | "*") term){0,3}\nterm ::= [0-9]{1,3} | "(" expr ")"';
    for (const [t, f] of await texts({ grammar: gbnf })) {
      if (f !== 'stop') continue;  // nesting may run past max_tokens
      assert.match(t, /^[0-9+\-*()]+$/);
      let depth = 0;
      for (const ch of t) { depth += ch === '(' ? 1 : ch === ')' ? -1 : 0; assert.ok(depth >= 0); }
      assert.equal(depth, 0, t);
    }
  }
  const chat = await llama.client.chat.completions.create({ model: 'tiny-llama3', messages: user('pick'),
    temperature: 1.0, seed: 2, max_tokens: 20, guided_choice: ['alpha', 'beta'] });
  assert.ok(['alpha', 'beta'].includes(chat.choices[0].message.content));
});

async function collectToolStream(client, params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let content = '';
  let finish = null;
  for await (const ch of stream) {
    const d = ch.choices[0]?.delta;
    if (!d) continue;
    content += d.content || '';
    for (const tc of d.tool_calls || []) {
      if (tc.id) calls[tc.index] = { id: tc.id, type: tc.type, name: tc.function.name, arguments: tc.function.arguments || '' };
      else calls[tc.index].arguments += tc.function.arguments || '';
    }
    finish = ch.choices[0].finish_reason || finish;
  }
  return { calls, content, finish };
}

function checkCalls(calls, names) {
  const pairs = [];
  for (const c of calls) {
    assert.match(c.id, /^call_[0-9a-f]{24}$/);
    assert.equal(c.type, 'function');
    assert.ok(names.includes(c.name), c.name);
    assert.equal(typeof c.arguments, 'string');
    pairs.push([paramsOf(c.name), JSON.parse(c.arguments)]);
  }
  assert.deepEqual(validate(pairs), pairs.map(() => ''));
}

test('Llama 3 JSON tool calls: required and named, streamed and not', { skip }, async () => {
  const base = { model: 'tiny-llama3', messages: user('Weather in Oslo?'), tools: WEATHER_TOOLS, temperature: 1.0,
    seed: 4, max_tokens: 200 };
  const r = await llama.client.chat.completions.create({ ...base, tool_choice: 'required' });
  const m = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  checkCalls(m.tool_calls.map((t) => ({ id: t.id, type: t.type, name: t.function.name, arguments: t.function.arguments })),
    ['get_weather', 'search']);
  const named = { ...base, tool_choice: { type: 'function', function: { name: 'search' } } };
  const s = await collectToolStream(llama.client, named);
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.calls.length, 1);
  assert.equal(s.calls[0].name, 'search');
  checkCalls(s.calls, ['search']);
  const r2 = await llama.client.chat.completions.create(named);
  assert.equal(r2.choices[0].message.tool_calls[0].function.name, 'search');
});

test('tool_choice auto parses a call the model writes; none leaves it as content; EOS only at the end', { skip }, async () => {
  // Random weights never write a call by themselves, so a guided_choice makes the
  // model write exactly one (Llama 3's JSON format): with auto it comes back as
  // tool_calls, with none as plain content.
  const call = '{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "c"}}';
  const base = { model: 'tiny-llama3', messages: user('Weather in Oslo?'), tools: WEATHER_TOOLS, temperature: 1.0,
    seed: 12, max_tokens: 60, guided_choice: [call] };
  const r = await llama.client.chat.completions.create({ ...base, tool_choice: 'auto' });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.choices[0].message.content, null);
  const tc = r.choices[0].message.tool_calls;
  assert.equal(tc.length, 1);
  assert.equal(tc[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: 'Oslo', unit: 'c' });
  const s = await collectToolStream(llama.client, { ...base, tool_choice: 'auto' });
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.calls.length, 1);
  assert.deepEqual(JSON.parse(s.calls[0].arguments), { city: 'Oslo', unit: 'c' });
  const none = await llama.client.chat.completions.create({ ...base, tool_choice: 'none' });
  assert.equal(none.choices[0].finish_reason, 'stop');
  assert.equal(none.choices[0].message.content, call);
  assert.ok(!none.choices[0].message.tool_calls || none.choices[0].message.tool_calls.length === 0);
  // auto without a constraint: free text (random weights), never a refusal.
  const free = await llama.client.chat.completions.create({ ...base, guided_choice: undefined, tool_choice: 'auto',
    max_tokens: 8 });
  assert.ok(['stop', 'length', 'tool_calls'].includes(free.choices[0].finish_reason));
  // EOS only where the grammar can end: with EOS free at every step the
  // unconstrained rows stop early now and then; constrained rows always end
  // complete (finish 'stop' with the whole text) or run to max_tokens.
  const many = await llama.client.completions.create({ model: 'tiny-llama3', prompt: 'n:', temperature: 1.0, seed: 30,
    n: 8, max_tokens: 40, guided_regex: '[0-9]{6,12}' });
  for (const c of many.choices) {
    assert.equal(c.finish_reason, 'stop');
    assert.match(c.text, /^[0-9]{6,12}$/);
  }
});

test('Hermes tool calls (Qwen3 template), parallel, streamed and not; results go back into the template', { skip }, async () => {
  const base = { model: 'tiny-qwen3', messages: user('Weather in Oslo and Rome?'), tools: WEATHER_TOOLS,
    temperature: 1.0, seed: 8, max_tokens: 300, chat_template_kwargs: { enable_thinking: false } };
  const r = await qwen.client.chat.completions.create({ ...base, tool_choice: 'required' });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const calls = r.choices[0].message.tool_calls.map((t) => ({ id: t.id, type: t.type, name: t.function.name,
    arguments: t.function.arguments }));
  assert.ok(calls.length >= 1);
  checkCalls(calls, ['get_weather', 'search']);
  const s = await collectToolStream(qwen.client, { ...base, tool_choice: { type: 'function', function: { name: 'get_weather' } },
    parallel_tool_calls: false });
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.calls.length, 1);
  checkCalls(s.calls, ['get_weather']);

  // The call and its result rendered back: the template shows both.
  const convo = [
    { role: 'user', content: 'Weather in Oslo?' },
    { role: 'assistant', content: '', tool_calls: [{ id: s.calls[0].id, type: 'function',
      function: { name: 'get_weather', arguments: s.calls[0].arguments } }] },
    { role: 'tool', tool_call_id: s.calls[0].id, content: 'sunny, 21 C' },
  ];
  const tok = await post(qwen.server.port, '/tokenize', { model: 'tiny-qwen3', messages: convo, tools: WEATHER_TOOLS });
  assert.equal(tok.status, 200, tok.body);
  const det = await post(qwen.server.port, '/detokenize', { tokens: JSON.parse(tok.body).tokens });
  const text = JSON.parse(det.body).prompt;
  // The template prints the parsed arguments with tojson (its own spacing).
  const shown = /<\|im_start\|>assistant\n<tool_call>\n\{"name": "get_weather", "arguments": (.*)\}\n<\/tool_call><\|im_end\|>/.exec(text);
  assert.ok(shown, text);
  assert.deepEqual(JSON.parse(shown[1]), JSON.parse(s.calls[0].arguments));
  assert.ok(text.includes('<tool_response>\nsunny, 21 C\n</tool_response>'), text);
  assert.ok(text.includes('"name": "search"'), text);  // the tool definitions
  // And the conversation continues from there.
  const next = await qwen.client.chat.completions.create({ model: 'tiny-qwen3', messages: convo, tools: WEATHER_TOOLS,
    max_tokens: 8, temperature: 0 });
  assert.equal(next.choices.length, 1);
});

test('reasoning_content (qwen3 parser from the template): streamed and not; usage counts every token', { skip }, async () => {
  const base = { model: 'tiny-qwen3', messages: user('Think first'), temperature: 1.0, seed: 3, max_tokens: 16,
    ignore_eos: true };
  const r = await qwen.client.chat.completions.create(base);
  const m = r.choices[0].message;
  // Random weights never close the block: cut off by max_tokens, all of it is reasoning.
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(typeof m.reasoning_content, 'string');
  assert.ok(m.reasoning_content.length > 0);
  assert.equal(m.content, null);
  assert.equal(r.usage.completion_tokens, 16);
  const stream = await qwen.client.chat.completions.create({ ...base, stream: true, stream_options: { include_usage: true } });
  let reasoning = '';
  let usage = null;
  for await (const ch of stream) {
    reasoning += ch.choices[0]?.delta?.reasoning_content || '';
    assert.equal(ch.choices[0]?.delta?.content ?? '', '');
    usage = ch.usage || usage;
  }
  assert.equal(reasoning, m.reasoning_content);  // same seed, same tokens
  assert.equal(usage.completion_tokens, 16);
});

test('a closed think block (enable_thinking false): the schema applies to the content', { skip }, async () => {
  const r = await qwen.client.chat.completions.create({ model: 'tiny-qwen3', messages: user('JSON'),
    chat_template_kwargs: { enable_thinking: false }, temperature: 1.0, seed: 6, max_tokens: 400, n: 2,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON } } });
  const pairs = r.choices.map((c) => {
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.message.reasoning_content, null);
    return [PERSON, JSON.parse(c.message.content)];
  });
  assert.deepEqual(validate(pairs), ['', '']);
});

test('bad constraints and tools are 400s with a code', { skip }, async () => {
  const cases = [
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: { a: {} } } } } },
      'unsupported_json_schema_keyword', /patternProperties/],
    [{ guided_regex: '(unclosed' }, 'invalid_regex', /./],
    [{ guided_grammar: 'root ::= undefined-rule' }, 'invalid_grammar', /undefined/],
    [{ tools: WEATHER_TOOLS, tool_choice: { type: 'function', function: { name: 'fly' } } }, 'tool_not_found', /fly/],
  ];
  for (const [extra, code, msg] of cases) {
    await assert.rejects(llama.client.chat.completions.create({ model: 'tiny-llama3', messages: user('x'), max_tokens: 4, ...extra }),
      (e) => { assert.equal(e.status, 400); assert.equal(e.code, code); assert.match(e.message, msg); return true; });
  }
});
