// The chat page of kr-serve (served at GET /, embedded in the binary).
// Talks to the server's OpenAI-compatible API only: GET /v1/models for the
// model picker and POST /v1/chat/completions with stream: true, read as
// server-sent events. Stop aborts the fetch; the server cancels a request
// whose client went away. Conversations and settings are kept in
// localStorage, the API key in sessionStorage (this tab only).
import { renderMarkdown, escapeHtml } from './markdown.js';

const KEYS = { conversations: 'kr-webui.conversations', current: 'kr-webui.current', settings: 'kr-webui.settings', apiKey: 'kr-webui.api-key' };
const DEFAULT_SETTINGS = { model: '', temperature: 0.7, top_p: 1, max_tokens: '', system: '' };

const $ = (id) => document.getElementById(id);
const els = {
  sidebar: $('sidebar'), toggleSidebar: $('toggle-sidebar'), newChat: $('new-chat'), conversations: $('conversations'),
  model: $('model'), refreshModels: $('refresh-models'), modelStatus: $('model-status'),
  temperature: $('temperature'), top_p: $('top_p'), max_tokens: $('max_tokens'), system: $('system'), apiKey: $('api-key'),
  title: $('chat-title'), messages: $('messages'), empty: $('empty'), composer: $('composer'), input: $('input'),
  send: $('send'), stop: $('stop'), status: $('status'),
};

// ---- storage ----

function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    announce(`Could not save to local storage: ${e.message}`);
  }
}

const state = {
  settings: { ...DEFAULT_SETTINGS, ...load(KEYS.settings, {}) },
  conversations: load(KEYS.conversations, []),
  currentId: load(KEYS.current, null),
  controller: null,  // the AbortController of the answer being streamed
};
if (!Array.isArray(state.conversations)) state.conversations = [];

function saveConversations() {
  save(KEYS.conversations, state.conversations);
  save(KEYS.current, state.currentId);
}

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function current() {
  let c = state.conversations.find((x) => x.id === state.currentId);
  if (!c) {
    c = { id: newId(), title: 'New chat', messages: [], updated: Date.now() };
    state.conversations.unshift(c);
    state.currentId = c.id;
  }
  return c;
}

function announce(text) {
  els.status.textContent = '';
  // A fresh text node, so that the same words twice are announced twice.
  setTimeout(() => { els.status.textContent = text; }, 30);
}

// ---- settings ----

function readSettings() {
  const num = (el, lo, hi, fallback) => {
    const v = parseFloat(el.value);
    return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
  };
  const s = state.settings;
  s.model = els.model.value || s.model;
  s.temperature = num(els.temperature, 0, 2, DEFAULT_SETTINGS.temperature);
  s.top_p = num(els.top_p, 0, 1, DEFAULT_SETTINGS.top_p);
  const mt = parseInt(els.max_tokens.value, 10);
  s.max_tokens = Number.isFinite(mt) && mt > 0 ? mt : '';
  s.system = els.system.value;
  save(KEYS.settings, s);
}

function showSettings() {
  const s = state.settings;
  els.temperature.value = s.temperature;
  els.top_p.value = s.top_p;
  els.max_tokens.value = s.max_tokens;
  els.system.value = s.system;
  els.apiKey.value = sessionStorage.getItem(KEYS.apiKey) || '';
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = els.apiKey.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorText(res) {
  let body = '';
  try {
    body = await res.text();
    const j = JSON.parse(body);
    if (j && j.error && j.error.message) return `${j.error.message} (HTTP ${res.status})`;
  } catch { /* not JSON */ }
  return `HTTP ${res.status}${body ? `: ${body.slice(0, 200)}` : ''}`;
}

// ---- models ----

async function refreshModels() {
  els.modelStatus.textContent = 'Loading models…';
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    if (!res.ok) throw new Error(await errorText(res));
    const list = (await res.json()).data || [];
    els.model.replaceChildren();
    for (const m of list) {
      const opt = document.createElement('option');
      opt.value = m.id;
      opt.textContent = m.state && m.state !== 'loaded' ? `${m.id} (${m.state})` : m.id;
      els.model.append(opt);
    }
    if (list.some((m) => m.id === state.settings.model)) els.model.value = state.settings.model;
    else if (list.length) state.settings.model = els.model.value = list[0].id;
    els.modelStatus.textContent = list.length ? `${list.length} model${list.length > 1 ? 's' : ''} served` : 'The server lists no models.';
    save(KEYS.settings, state.settings);
  } catch (e) {
    els.modelStatus.textContent = `Could not list models: ${e.message}`;
  }
}

// ---- rendering ----

// Models without a reasoning parser put their thinking in <think>...</think>
// at the start of the content; show it as reasoning too.
function splitThink(content) {
  const m = /^\s*<think>([\s\S]*?)(?:<\/think>\s*|$)/.exec(content);
  if (!m) return { reasoning: '', answer: content };
  return { reasoning: m[1], answer: content.slice(m[0].length), open: !content.includes('</think>') };
}

function messageHtml(msg, streaming) {
  if (msg.role === 'user') return `<div class="md">${renderMarkdown(msg.content)}</div>`;
  const think = splitThink(msg.content || '');
  const reasoning = (msg.reasoning || '') + think.reasoning;
  let html = '';
  if (reasoning) {
    const thinking = streaming && !think.answer && !(msg.tool_calls || []).length;
    html += `<details class="reasoning"${msg.reasoningOpen ? ' open' : ''}><summary>${thinking ? 'Thinking…' : 'Reasoning'}</summary>` +
      `<div class="md">${renderMarkdown(reasoning)}</div></details>`;
  }
  for (const call of msg.tool_calls || []) {
    let args = call.function?.arguments || '';
    try { args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* partial or not JSON */ }
    html += `<section class="tool-call" aria-label="Tool call ${escapeHtml(call.function?.name || '')}">` +
      `<div class="tool-head"><span class="badge">tool call</span> <code>${escapeHtml(call.function?.name || '?')}</code>` +
      `${call.id ? ` <span class="hint">${escapeHtml(call.id)}</span>` : ''}</div>` +
      `<pre><code>${escapeHtml(args)}</code></pre></section>`;
  }
  html += `<div class="md">${renderMarkdown(think.answer)}</div>`;
  if (streaming && !think.answer && !reasoning && !(msg.tool_calls || []).length) html += '<p class="hint typing">…</p>';
  const notes = [];
  if (msg.stopped) notes.push('<span class="badge warn">stopped</span>');
  if (msg.finish_reason === 'length') notes.push('<span class="badge warn">cut at max tokens</span>');
  if (msg.stats) notes.push(`<span class="hint">${escapeHtml(msg.stats)}</span>`);
  if (msg.model) notes.push(`<span class="hint">${escapeHtml(msg.model)}</span>`);
  if (msg.error) html += `<p class="error" role="alert">${escapeHtml(msg.error)}</p>`;
  if (!streaming) notes.push('<button type="button" class="copy-message" aria-label="Copy this answer">Copy</button>');
  if (notes.length) html += `<div class="msg-foot">${notes.join(' ')}</div>`;
  return html;
}

function messageElement(msg, index, streaming) {
  const el = document.createElement('article');
  el.className = `msg msg-${msg.role}`;
  el.dataset.index = index;
  el.setAttribute('aria-label', msg.role === 'user' ? 'You' : 'Assistant');
  if (streaming) el.dataset.state = 'streaming';
  el.innerHTML = `<div class="who" aria-hidden="true">${msg.role === 'user' ? 'You' : 'Assistant'}</div>${messageHtml(msg, streaming)}`;
  return el;
}

function renderConversations() {
  els.conversations.replaceChildren();
  for (const c of state.conversations) {
    const li = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'conv-open';
    open.textContent = c.title || 'New chat';
    if (c.id === state.currentId) open.setAttribute('aria-current', 'true');
    open.addEventListener('click', () => {
      if (state.controller) return announce('Stop the answer first.');
      state.currentId = c.id;
      saveConversations();
      renderAll();
      els.input.focus();
    });
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'conv-delete';
    del.textContent = '×';
    del.setAttribute('aria-label', `Delete conversation: ${c.title || 'New chat'}`);
    del.addEventListener('click', () => {
      if (state.controller && c.id === state.currentId) return announce('Stop the answer first.');
      state.conversations = state.conversations.filter((x) => x.id !== c.id);
      if (state.currentId === c.id) state.currentId = state.conversations[0]?.id || null;
      saveConversations();
      renderAll();
      announce('Conversation deleted.');
    });
    li.append(open, del);
    els.conversations.append(li);
  }
}

function renderMessages() {
  const conv = state.conversations.find((x) => x.id === state.currentId);
  const msgs = conv ? conv.messages : [];
  // While an answer streams, it is the last message of the current conversation.
  const streaming = state.controller ? msgs.length - 1 : -1;
  els.messages.replaceChildren(...msgs.map((m, i) => messageElement(m, i, i === streaming)));
  els.empty.hidden = msgs.length > 0;
  els.title.textContent = conv?.title || 'New chat';
}

function renderAll() {
  renderConversations();
  renderMessages();
}

// Re-renders the streaming message at most once per frame.
let pending = null;
function scheduleRender(msg, index) {
  if (pending) {
    pending.msg = msg;
    return;
  }
  pending = { msg, index };
  requestAnimationFrame(() => {
    if (!pending) return;  // the answer ended first; renderMessages() drew it
    const { msg: m, index: i } = pending;
    pending = null;
    const old = els.messages.querySelector(`article[data-index="${i}"]`);
    const details = old?.querySelector('details.reasoning');
    if (details) m.reasoningOpen = details.open;
    const fresh = messageElement(m, i, Boolean(state.controller));
    if (old) old.replaceWith(fresh);
    else els.messages.append(fresh);
    els.messages.scrollTop = els.messages.scrollHeight;
  });
}

// ---- streaming ----

// Yields the data of each server-sent event of a fetch response.
async function* sseData(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }  // comments (":"), event: and id: lines are not used by the API
    }
    if (done) break;
  }
  if (data.length) yield data.join('\n');
}

function applyDelta(msg, choice) {
  const d = choice.delta || {};
  if (typeof d.content === 'string') msg.content += d.content;
  const r = d.reasoning_content ?? d.reasoning;
  if (typeof r === 'string') msg.reasoning += r;
  if (Array.isArray(d.tool_calls)) {
    for (const t of d.tool_calls) {
      const i = Number.isInteger(t.index) ? t.index : msg.tool_calls.length;
      const call = (msg.tool_calls[i] ||= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (t.id) call.id = t.id;
      if (t.function?.name) call.function.name += t.function.name;
      if (t.function?.arguments) call.function.arguments += t.function.arguments;
    }
  }
  if (choice.finish_reason) msg.finish_reason = choice.finish_reason;
}

function requestMessages(conv, upTo) {
  const out = [];
  const system = state.settings.system.trim();
  if (system) out.push({ role: 'system', content: system });
  for (const m of conv.messages.slice(0, upTo)) {
    if (m.role === 'assistant' && !m.content) {
      // A turn that got no answer (an error, or stopped at once) is left out with
      // its question: many chat templates insist that roles alternate.
      if (out.length && out[out.length - 1].role === 'user') out.pop();
      continue;
    }
    // Reasoning is not sent back (as the OpenAI API expects); tool calls without
    // their results are shown, not replayed.
    out.push({ role: m.role, content: m.role === 'assistant' ? splitThink(m.content).answer : m.content });
  }
  return out;
}

function setBusy(busy) {
  els.send.disabled = busy;
  els.stop.hidden = !busy;
  els.messages.setAttribute('aria-busy', busy ? 'true' : 'false');
}

async function sendMessage(text) {
  readSettings();
  const conv = current();
  if (!conv.messages.length) conv.title = text.replace(/\s+/g, ' ').slice(0, 60);
  conv.messages.push({ role: 'user', content: text });
  const msg = { role: 'assistant', content: '', reasoning: '', tool_calls: [], model: state.settings.model };
  conv.messages.push(msg);
  conv.updated = Date.now();
  // Most recently used first.
  state.conversations = [conv, ...state.conversations.filter((c) => c !== conv)];
  saveConversations();
  const index = conv.messages.length - 1;
  state.controller = new AbortController();
  renderAll();
  setBusy(true);
  announce('Answer started.');
  const body = {
    model: state.settings.model || undefined,
    messages: requestMessages(conv, index),
    stream: true,
    stream_options: { include_usage: true },
    temperature: state.settings.temperature,
    top_p: state.settings.top_p,
  };
  if (state.settings.max_tokens) body.max_tokens = state.settings.max_tokens;
  const t0 = performance.now();
  let tFirst = 0;
  let tokens = 0;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), body: JSON.stringify(body), signal: state.controller.signal,
    });
    if (!res.ok) throw new Error(await errorText(res));
    let done = false;
    for await (const data of sseData(res)) {
      if (data === '[DONE]') {
        done = true;
        break;
      }
      let j;
      try { j = JSON.parse(data); } catch { continue; }
      if (j.error) throw new Error(j.error.message || 'the server reported an error');
      if (j.usage?.completion_tokens) tokens = j.usage.completion_tokens;
      const choice = (j.choices || [])[0];
      if (!choice) continue;
      if (!tFirst && (choice.delta?.content || choice.delta?.reasoning_content || choice.delta?.tool_calls)) tFirst = performance.now();
      applyDelta(msg, choice);
      scheduleRender(msg, index);
    }
    if (!done) throw new Error('the answer ended early (connection closed)');
  } catch (e) {
    if (e.name === 'AbortError') msg.stopped = true;
    else msg.error = e.message;
  } finally {
    state.controller = null;
    const t1 = performance.now();
    if (tokens && tFirst) {
      const rate = tokens > 1 && t1 > tFirst ? ` · ${((tokens - 1) / ((t1 - tFirst) / 1000)).toFixed(1)} tok/s` : '';
      msg.stats = `${tokens} tokens · first token ${Math.round(tFirst - t0)} ms${rate}`;
    }
    conv.updated = Date.now();
    saveConversations();
    setBusy(false);
    pending = null;
    renderMessages();
    announce(msg.error ? `Error: ${msg.error}` : msg.stopped ? 'Answer stopped.' : 'Answer complete.');
  }
}

function stop() {
  if (state.controller) state.controller.abort();
}

// ---- copying ----

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain http on another host than localhost has no clipboard API.
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'visually-hidden';
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

els.messages.addEventListener('click', async (ev) => {
  const btn = ev.target.closest('button');
  if (!btn) return;
  let text = null;
  if (btn.classList.contains('copy-code')) text = btn.closest('.code-block')?.querySelector('code')?.textContent;
  if (btn.classList.contains('copy-message')) {
    const i = Number(btn.closest('article')?.dataset.index);
    text = current().messages[i]?.content;
  }
  if (text == null) return;
  const ok = await copyText(text);
  btn.textContent = ok ? 'Copied' : 'Copy failed';
  announce(ok ? 'Copied to the clipboard.' : 'Could not copy.');
  setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
});

// ---- wiring ----

els.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = els.input.value.trim();
  if (!text || state.controller) return;
  els.input.value = '';
  sendMessage(text);
});

els.input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    els.composer.requestSubmit();
  }
});

document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && state.controller) {
    ev.preventDefault();
    stop();
  }
});

els.stop.addEventListener('click', () => {
  stop();
  els.input.focus();
});

els.newChat.addEventListener('click', () => {
  if (state.controller) return announce('Stop the answer first.');
  // The conversation is created by its first message.
  state.currentId = null;
  saveConversations();
  renderAll();
  els.input.focus();
});

els.toggleSidebar.addEventListener('click', () => {
  const open = els.toggleSidebar.getAttribute('aria-expanded') !== 'true';
  els.toggleSidebar.setAttribute('aria-expanded', String(open));
  els.sidebar.classList.toggle('closed', !open);
});

for (const el of [els.temperature, els.top_p, els.max_tokens, els.system]) el.addEventListener('change', readSettings);
els.model.addEventListener('change', () => {
  state.settings.model = els.model.value;
  save(KEYS.settings, state.settings);
  announce(`Model ${els.model.value} selected.`);
});
els.refreshModels.addEventListener('click', refreshModels);
els.apiKey.addEventListener('change', () => {
  const key = els.apiKey.value.trim();
  if (key) sessionStorage.setItem(KEYS.apiKey, key);
  else sessionStorage.removeItem(KEYS.apiKey);
  refreshModels();
});
window.addEventListener('pagehide', saveConversations);

// On a narrow screen the sidebar covers the chat: start with it closed.
if (window.matchMedia('(max-width: 760px)').matches) els.toggleSidebar.click();
showSettings();
if (!state.conversations.some((c) => c.id === state.currentId)) state.currentId = state.conversations[0]?.id || null;
renderAll();
refreshModels();
document.documentElement.dataset.ready = 'true';
