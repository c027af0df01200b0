// Writes battery.jsonl: the hostile-request battery run by hostile.test.mjs.
// Each line: {"name", "kind", "method", "path", "body" (string) | "body_b64" | "gen",
//             "headers", "expect": the exact status ("closed_silently": closed with
//             no byte), "code" and "param": the JSON error's (null included),
//             "closed": whether the server closes the connection}
// The server's answers are deterministic, so every case pins one answer.
// Run `node make_battery.mjs` after changing it and commit both files.
import { writeFileSync } from 'node:fs';

const cases = [];
const chat = (o) => JSON.stringify({ model: 'tiny-llama3', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...o });
const comp = (o) => JSON.stringify({ model: 'tiny-llama3', prompt: 'hi', max_tokens: 4, ...o });
const add = (name, body, expect, extra = {}) =>
  cases.push({ name, kind: 'http', method: 'POST', path: '/v1/chat/completions', body, expect, ...extra });
// A 400 naming `param` (null: the body is not the JSON of a request at all) with no error code.
const bad = (param) => ({ code: null, param });

// --- invalid JSON ---
const badJson = ['', '{', '}', '{"model":', '{"messages": [}', "{'model': 'x'}", '{"a":1,}', '[1,2,',
  'null', 'true', '"str"', '123', '{"messages": NaN}', '{"messages": Infinity}', '{"a": 01}',
  '{"a": .5}', '{"a": "\\x41"}', '{"a": "\\u12"}', '{"a": "unterminated}', '{"a" 1}', '{,}',
  '{"a":1}{"b":2}', '{"a": tru}', '{"a": nul}', '\u0000', '{"a": "\u0001"}', '{"max_tokens": 1e}',
  '{"max_tokens": -}', '{"messages": [{"role": "user", "content": "x"}]', '/* c */ {}'];
badJson.forEach((b, i) => add(`invalid_json_${i}`, b, '400', bad(null)));
badJson.slice(0, 12).forEach((b, i) => add(`invalid_json_completions_${i}`, b, '400', { path: '/v1/completions', ...bad(null) }));

// --- deep nesting ---
// Large bodies are stored as `gen`: a list of [text, times] pairs the runner expands.
const addGen = (name, gen, expect, extra = {}) =>
  cases.push({ name, kind: 'http', method: 'POST', path: '/v1/chat/completions', gen, expect, ...extra });
for (const depth of [64, 1000, 10000, 100000]) {
  addGen(`deep_array_${depth}`, [['[', depth], [']', depth]], '400', bad(null));
  // Up to the parser's depth limit (64 levels, which JSON Schemas need) the body parses,
  // and the request's own check names what is wrong in it.
  const parses = depth <= 64;
  addGen(`deep_object_${depth}`, [['{"a":', depth], ['1', 1], ['}', depth]], '400', bad(parses ? 'messages' : null));
  addGen(`deep_in_messages_${depth}`, [['{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":', 1],
    ['[', depth], [']', depth], ['}]}', 1]], '400', bad(parses ? 'messages[0].content[0]' : null));
}

// --- huge numbers, negative, NaN-ish, infinite ---
const numFields = { max_tokens: 'int', max_completion_tokens: 'int', temperature: 'num', top_p: 'num', top_k: 'int',
  min_p: 'num', presence_penalty: 'num', frequency_penalty: 'num', repetition_penalty: 'num', seed: 'int', n: 'int',
  top_logprobs: 'int', min_tokens: 'int' };
const badNums = ['1e400', '-1e400', '99999999999999999999999', '-99999999999999999999999', '-1', '-0.5', '1e308', '-1e308'];
for (const [f] of Object.entries(numFields)) {
  for (const v of badNums) {
    if (f === 'seed' && (v === '-1')) continue;  // negative seeds are allowed by some servers
    // OpenAI allows penalties in [-2, 2]; top_k -1 means "off" (vLLM).
    if ((f === 'presence_penalty' || f === 'frequency_penalty') && (v === '-1' || v === '-0.5')) continue;
    if (f === 'top_k' && v === '-1') continue;
    // ±1e400 overflows a double: not valid JSON for the parser, so no parameter is named.
    add(`num_${f}_${v}`, `{"model":"tiny-llama3","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"${f}":${v}}`,
      '400', bad(v.endsWith('e400') ? null : f));
  }
}
// --- wrong types ---
const wrong = ['"str"', '[1]', '{"a":1}', 'true', 'null'];
for (const f of ['max_tokens', 'temperature', 'top_p', 'top_k', 'n', 'stream', 'stop', 'messages', 'logprobs', 'seed', 'priority']) {
  for (const v of wrong) {
    if (v === 'null' && f !== 'messages') continue;  // null = default, as OpenAI accepts
    if (f === 'stop' && (v === '"str"' || v === '[1]')) continue;
    if (f === 'stream' && v === 'true') continue;
    if (f === 'logprobs' && v === 'true') continue;
    if (f === 'priority' && v === '"str"') continue;
    if (f === 'stop' && v === 'null') continue;
    add(`type_${f}_${v.replace(/[^a-z0-9]/gi, '')}`, `{"model":"tiny-llama3","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"${f}":${v}}`,
      '400', bad(f === 'messages' && v === '[1]' ? 'messages[0]' : f));
  }
}
add('type_stop_list_of_numbers', chat({ stop: [1, 2] }), '400', bad('stop'));
add('messages_empty', chat({ messages: [] }), '400', bad('messages'));
add('messages_not_objects', chat({ messages: ['hi'] }), '400', bad('messages[0]'));
add('message_no_role', chat({ messages: [{ content: 'hi' }] }), '400', bad('messages[0].role'));
add('message_empty_role', chat({ messages: [{ role: '', content: 'hi' }] }), '400', bad('messages[0].role'));
add('message_unknown_role', chat({ messages: [{ role: 'wizard', content: 'hi' }] }), '400', bad('messages[0].role'));
add('message_role_number', chat({ messages: [{ role: 3, content: 'hi' }] }), '400', bad('messages[0].role'));
add('message_content_number', chat({ messages: [{ role: 'user', content: 5 }] }), '400', bad('messages[0].content'));
add('message_content_bad_part', chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), '400', bad('messages[0].content[0].type'));
add('message_content_part_no_text', chat({ messages: [{ role: 'user', content: [{ type: 'text' }] }] }), '400', bad('messages[0].content[0].text'));
add('no_messages', JSON.stringify({ model: 'tiny-llama3', max_tokens: 2 }), '400', bad('messages'));
add('unknown_model', chat({ model: 'gpt-17' }), '404', { code: 'model_not_found', param: 'model' });
add('completions_no_prompt', JSON.stringify({ model: 'tiny-llama3', max_tokens: 2 }), '400', { path: '/v1/completions', ...bad('prompt') });
add('completions_prompt_bad_ids', comp({ prompt: [1, -5, 3] }), '400', { path: '/v1/completions', ...bad('prompt') });
add('completions_prompt_id_too_big', comp({ prompt: [1, 99999999] }), '400', { path: '/v1/completions', ...bad('prompt') });
add('completions_prompt_mixed', comp({ prompt: [1, 'a'] }), '400', { path: '/v1/completions', ...bad('prompt') });
add('completions_prompt_empty_ids', comp({ prompt: [] }), '400', { path: '/v1/completions', ...bad('prompt') });

// --- enormous max_tokens and n, contexts ---
add('max_tokens_enormous', chat({ max_tokens: 2000000000 }), '400', { code: 'context_length_exceeded', param: 'messages' });
add('max_tokens_zero', chat({ max_tokens: 0 }), '400', bad('max_tokens'));
add('n_enormous', chat({ n: 1000000 }), '400', bad('n'));
add('n_zero', chat({ n: 0 }), '400', bad('n'));
add('top_logprobs_enormous', chat({ logprobs: true, top_logprobs: 100000 }), '400', bad('top_logprobs'));
const tooLong = { path: '/v1/completions', code: 'context_length_exceeded', param: 'prompt' };
addGen('prompt_longer_than_context', [['{"model":"tiny-llama3","max_tokens":4,"prompt":"', 1], ['word ', 200000], ['"}', 1]], '400', tooLong);
addGen('prompt_ids_longer_than_context', [['{"model":"tiny-llama3","max_tokens":4,"prompt":[', 1], ['100,', 140000], ['100]}', 1]], '400', tooLong);

// --- stop strings ---
addGen('stop_thousands', [['{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"stop":[', 1], ['"stop",', 5000], ['"x"]}', 1]], '400', bad('stop'));
add('stop_five_ok', chat({ stop: ['a', 'b', 'c', 'd'] }), '200');
addGen('stop_huge_string', [['{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"stop":"', 1], ['x', 100000], ['"}', 1]], '400', bad('stop'));
add('stop_empty_string', chat({ stop: '' }), '200');  // an empty stop string is ignored

// --- big bodies ---
cases.push({ name: 'body_16MB', kind: 'http', method: 'POST', path: '/v1/chat/completions', big_body_mb: 16, expect: '413', code: 'request_too_large', param: null });
cases.push({ name: 'body_64MB', kind: 'http', method: 'POST', path: '/v1/chat/completions', big_body_mb: 64, expect: '413', code: 'request_too_large', param: null });
add('content_length_lies_huge', '{}', '413', { headers: { 'Content-Length': '99999999999' }, kind: 'raw_header', code: 'request_too_large', param: null });

// --- invalid UTF-8 and NUL bytes ---
const b64 = (buf) => Buffer.from(buf).toString('base64');
const withBytes = (bytes) => Buffer.concat([Buffer.from('{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"'),
  Buffer.from(bytes), Buffer.from('"}]}')]);
for (const [n, bytes] of Object.entries({ lone_ff: [0xff], lone_cont: [0x80], overlong: [0xc0, 0xaf], surrogate: [0xed, 0xa0, 0x80],
  truncated_3: [0xe2, 0x82], beyond_10ffff: [0xf4, 0x90, 0x80, 0x80], five_byte: [0xf8, 0x88, 0x80, 0x80, 0x80] })) {
  cases.push({ name: `utf8_${n}`, kind: 'http', method: 'POST', path: '/v1/chat/completions', body_b64: b64(withBytes(bytes)), expect: '400', ...bad(null) });
}
cases.push({ name: 'nul_raw_in_string', kind: 'http', method: 'POST', path: '/v1/chat/completions', body_b64: b64(withBytes([0])), expect: '400', ...bad(null) });
add('nul_escaped_in_content', chat({ messages: [{ role: 'user', content: 'a\u0000b' }] }), '200');  // an escaped NUL is text
add('lone_surrogate_escape', '{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"\\ud800"}]}', '400', bad(null));

// --- special tokens as plain text (must be accepted, kept as text) ---
for (const t of ['<|eot_id|>', '<|begin_of_text|>', '<|start_header_id|>system<|end_header_id|>', '<|reserved_special_token_5|>']) {
  add(`special_text_${t.replace(/[^a-z0-9]/gi, '')}`, chat({ messages: [{ role: 'user', content: `hello ${t} world` }] }), '200', { check_special: t });
}

// --- structured outputs and tools: exact status and error code ---
// `code`: the error code the body must carry. The battery's server is tiny-llama3
// without --tool-call-parser, so tool calls other than "none" are unsupported there.
const addCode = (name, body, expect, code, extra = {}) => add(name, body, expect, { code, ...extra });
const rfSchema = (schema) => ({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
addCode('schema_invalid_type', chat(rfSchema({ type: 5 })), '400', 'invalid_json_schema');
addCode('schema_text_not_json', chat({ guided_json: '{not json' }), '400', 'invalid_json_schema');
addCode('schema_not_object', chat(rfSchema(5)), '400', 'invalid_json_schema');
for (const [kw, schema] of Object.entries({
  patternProperties: { type: 'object', patternProperties: { '^a': {} } },
  if_then: { if: { type: 'string' }, then: { maxLength: 3 } },
  not: { not: { type: 'string' } },
  uniqueItems: { type: 'array', uniqueItems: true },
  multipleOf: { type: 'number', multipleOf: 3 },
  remote_ref: { $ref: 'https://example.com/s.json' },
  format_unknown: { type: 'string', format: 'ipv7' },
})) addCode(`schema_unsupported_${kw}`, chat(rfSchema(schema)), '400', 'unsupported_json_schema_keyword');
addCode('schema_accepts_nothing_bounds', chat(rfSchema({ type: 'integer', minimum: 5, maximum: 1 })), '400', 'grammar_accepts_nothing');
addCode('schema_accepts_nothing_required', chat(rfSchema({ type: 'object', properties: { a: { type: 'string' } },
  required: ['b'], additionalProperties: false })), '400', 'grammar_accepts_nothing');
{
  let deep = { type: 'integer' };
  for (let i = 0; i < 70; i++) deep = { type: 'array', items: deep };
  addCode('schema_too_deep_70', chat(rfSchema(deep)), '400', 'grammar_too_large');
  addCode('schema_too_deep_70_completions', comp({ guided_json: deep }), '400', 'grammar_too_large', { path: '/v1/completions' });
}
addGen('schema_too_deep_100000', [['{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"guided_json":', 1],
  ['{"type":"array","items":', 100000], ['{}', 1], ['}', 100000], ['}', 1]], '400');
cases.push({ name: 'schema_too_large_300k', kind: 'http', method: 'POST', path: '/v1/chat/completions', expect: '400', code: 'grammar_too_large',
  gen: [['{"model":"tiny-llama3","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"guided_json":{"type":"string","description":"', 1],
    ['padding ', 40000], ['"}}', 1]] });
addCode('regex_unclosed', chat({ guided_regex: '(ab' }), '400', 'invalid_regex');
addCode('regex_lookbehind', chat({ guided_regex: '(?<=a)b' }), '400', 'invalid_regex');
addCode('regex_backreference', chat({ guided_regex: '(a)\\1' }), '400', 'invalid_regex');
addCode('regex_not_string', chat({ guided_regex: 5 }), '400', 'invalid_regex');
addCode('regex_completions', comp({ guided_regex: '[z-a]' }), '400', 'invalid_regex', { path: '/v1/completions' });
addCode('gbnf_syntax', chat({ guided_grammar: 'root ::= (' }), '400', 'invalid_grammar');
addCode('gbnf_undefined_rule', chat({ grammar: 'root ::= missing' }), '400', 'invalid_grammar');
addCode('gbnf_no_root', chat({ grammar: 'start ::= "a"' }), '400', 'invalid_grammar');
addCode('gbnf_left_recursion', chat({ grammar: 'root ::= root "a" | "b"' }), '400', 'invalid_grammar');
addCode('gbnf_accepts_nothing', chat({ grammar: 'root ::= "a" root' }), '400', 'grammar_accepts_nothing');
addCode('choice_empty', chat({ guided_choice: [] }), '400', 'invalid_choice');
addCode('choice_not_strings', chat({ guided_choice: ['a', 3] }), '400', 'invalid_choice');
addCode('response_format_not_object', chat({ response_format: 'json' }), '400', 'invalid_response_format');
addCode('response_format_unknown_type', chat({ response_format: { type: 'yaml' } }), '400', 'invalid_response_format');
addCode('response_format_schema_missing', chat({ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }), '400', 'invalid_response_format');
addCode('two_constraints', chat({ guided_regex: 'a', guided_choice: ['a'] }), '400', 'conflicting_output_constraints');
const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
addCode('tool_choice_not_in_tools', chat({ tools, tool_choice: { type: 'function', function: { name: 'launch_rockets' } } }), '400', 'tool_not_found');
addCode('tool_choice_required_no_tools', chat({ tool_choice: 'required' }), '400', 'invalid_tool_choice');
addCode('tool_choice_bad_value', chat({ tools, tool_choice: 'always' }), '400', 'invalid_tool_choice');
addCode('tools_not_array', chat({ tools: { name: 'x' } }), '400', 'invalid_tools');
addCode('tools_duplicate_names', chat({ tools: [tools[0], tools[0]] }), '400', 'invalid_tools');
addCode('tools_no_name', chat({ tools: [{ type: 'function', function: {} }] }), '400', 'invalid_tools');
addCode('tools_bad_parameters', chat({ tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }), '400', 'invalid_tools');
addCode('tools_on_completions', comp({ tools }), '400', 'invalid_tools', { path: '/v1/completions' });
addCode('tools_no_format_for_model', chat({ tools, tool_choice: 'required' }), '400', 'tool_calls_unsupported');
addCode('tool_choice_with_response_format', chat({ tools, tool_choice: 'required', response_format: { type: 'json_object' } }), '400', 'conflicting_output_constraints');
add('tools_choice_none_ok', chat({ tools, tool_choice: 'none' }), '200');
add('guided_choice_ok', chat({ guided_choice: ['yes', 'no'] }), '200');
add('json_object_ok', comp({ response_format: { type: 'json_object' } }), '200', { path: '/v1/completions' });

// --- HTTP-level ---
cases.push({ name: 'wrong_method_get_chat', kind: 'http', method: 'GET', path: '/v1/chat/completions', expect: '405', code: 'method_not_allowed', param: null });
cases.push({ name: 'wrong_method_put', kind: 'http', method: 'PUT', path: '/v1/completions', body: '{}', expect: '405', code: 'method_not_allowed', param: null });
cases.push({ name: 'wrong_method_delete_models', kind: 'http', method: 'DELETE', path: '/v1/models', expect: '405', code: 'method_not_allowed', param: null });
cases.push({ name: 'unknown_path', kind: 'http', method: 'GET', path: '/v2/nothing', expect: '404', code: 'not_found', param: null });
cases.push({ name: 'unknown_path_long', kind: 'http', method: 'GET', path: '/' + 'a'.repeat(4000), expect: '404', code: 'not_found', param: null });
cases.push({ name: 'path_traversal', kind: 'http', method: 'GET', path: '/../../etc/passwd', expect: '404', code: 'not_found', param: null });
cases.push({ name: 'path_traversal_enc', kind: 'http', method: 'GET', path: '/%2e%2e/%2e%2e/etc/passwd', expect: '404', code: 'not_found', param: null });
// Malformed HTTP: the HTTP layer's error (a JSON body with no code or param).
const raw = (name, text, expect) => cases.push({ name, kind: 'raw', raw_b64: b64(Buffer.from(text, 'binary')), expect, ...bad(null) });
raw('raw_garbage', 'HELLO\r\n\r\n', '400');
raw('raw_bad_version', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', '400');  // 400, not 505: never a server fault
raw('raw_no_crlf', 'GET /health HTTP/1.1\nHost: x\n\n', '400');  // bare LF line endings are refused
cases.push({ name: 'raw_huge_header', kind: 'raw', gen: [['GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ', 1], ['a', 100000], ['\r\n\r\n', 1]], expect: '431', ...bad(null) });
cases.push({ name: 'raw_many_headers', kind: 'raw', gen: [['GET /health HTTP/1.1\r\n', 1], ['X-H: v\r\n', 5000], ['\r\n', 1]], expect: '431', ...bad(null) });
raw('raw_header_no_colon', 'GET /health HTTP/1.1\r\nBadHeader\r\n\r\n', '400');
raw('raw_bad_content_length', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', '400');
raw('raw_negative_content_length', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', '400');
raw('raw_two_content_lengths', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', '400');
raw('raw_chunked_bad_size', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', '400');
raw('raw_chunked_size_overflow', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n{}\r\n0\r\n\r\n', '400');
raw('raw_chunked_missing_crlf', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n', '400');
raw('raw_chunked_and_length', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n', '400');  // a smuggling vector
raw('raw_unknown_transfer_encoding', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}', '400');
raw('raw_chunked_valid_bad_json', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{x}\r\n0\r\n\r\n', '400');
raw('raw_request_line_only_method', 'GET\r\n\r\n', '400');
raw('raw_binary_junk', '\x00\x01\x02\xff\xfe\r\n\r\n', '400');
raw('raw_tls_hello', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + 'a'.repeat(40) + '\r\n\r\n', '400');
cases.push({ name: 'pipelined_three', kind: 'pipeline', count: 3, expect: '200' });
cases.push({ name: 'pipelined_bad_then_good', kind: 'pipeline_bad_good', expect: '400', statuses: '400,200' });  // both answered, in order
cases.push({ name: 'slowloris_headers', kind: 'slowloris', expect: '408', code: 'request_timeout', param: null, closed: true });
cases.push({ name: 'slow_body', kind: 'slow_body', expect: '408', code: 'request_timeout', param: null, closed: true });
cases.push({ name: 'half_closed_after_request', kind: 'half_close', expect: '200', closed: true });
cases.push({ name: 'connect_and_close', kind: 'connect_close', expect: 'closed_silently' });
cases.push({ name: 'disconnect_mid_stream', kind: 'disconnect_stream', expect: '200' });  // and cancelled
cases.push({ name: 'tokenize_bad', kind: 'http', method: 'POST', path: '/tokenize', body: '{"prompt": 5}', expect: '400', ...bad('prompt') });
cases.push({ name: 'detokenize_bad_ids', kind: 'http', method: 'POST', path: '/detokenize', body: '{"tokens": [-1, 99999999]}', expect: '400', ...bad('tokens') });
cases.push({ name: 'detokenize_not_list', kind: 'http', method: 'POST', path: '/detokenize', body: '{"tokens": "abc"}', expect: '400', ...bad('tokens') });

writeFileSync(new URL('./battery.jsonl', import.meta.url), cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
console.log(`${cases.length} cases`);
