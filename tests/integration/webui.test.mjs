// The chat page (GET /) in a real browser: headless Chromium (Debian's
// `chromium`) driven by puppeteer-core, against the real kr-serve on loopback
// with the tiny model and an API key. It loads the page, enters the key, sends
// a message and sees the answer stream, stops a long answer (and checks that
// the server cancelled it), checks that the model picker's choice is what the
// request carries, renders reasoning / tool calls / code from a scripted stream,
// copies code, reloads (the conversation is kept), and saves a screenshot.
// Missing chromium or node_modules is a failure, not a skip:
// scripts/prepare-tests.sh installs both.
//
// ctest: webui_browser (KR_TEST_OUT_DIR: where the screenshot goes).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, stopServer, get, sleep } from './helpers.mjs';

const CHROMIUM = process.env.KR_CHROMIUM || '/usr/bin/chromium';
const OUT_DIR = process.env.KR_TEST_OUT_DIR || path.join(new URL('../../build', import.meta.url).pathname, 'webui-test');
const KEY = 'sk-webui-test';
const MODEL = 'tiny-webui';
const MODEL2 = 'tiny-webui-b';  // the tiny model again, as a second model with its own engine

async function loadPuppeteer() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: run scripts/prepare-tests.sh (installs Debian's chromium) or set KR_CHROMIUM`);
  }
  try {
    return (await import('puppeteer-core')).default;
  } catch (e) {
    throw new Error(`puppeteer-core is not installed in tests/integration/node_modules: run scripts/prepare-tests.sh (${e.message})`);
  }
}

// Requests a model finished (stop or length), from /metrics.
async function serverSuccess(port, model) {
  const m = (await get(port, '/metrics')).body;
  let n = 0;
  for (const reason of ['stop', 'length']) {
    const re = new RegExp(`^krserve_request_success_total\\{model_name="${model}",finished_reason="${reason}"\\} (\\S+)$`, 'm');
    n += Number((re.exec(m) || [])[1] || 0);
  }
  return n;
}

// krserve_request_success_total{finished_reason="cancelled"} and the running gauge.
async function serverCounts(port) {
  const m = (await get(port, '/metrics')).body;
  const num = (re) => Number((re.exec(m) || [])[1] || 0);
  return {
    cancelled: num(/^krserve_request_success_total\{[^}]*finished_reason="cancelled"[^}]*\} (\S+)$/m),
    running: num(/^krserve_num_requests_running\{[^}]*\} (\S+)$/m),
  };
}

test('chat page: stream, stop, model picker, reasoning, tool calls, copy, storage', { timeout: 90_000 }, async () => {
  const puppeteer = await loadPuppeteer();
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const tiny = new URL('../../models/tiny-llama3', import.meta.url).pathname;
  const server = await startServer(['--api-key', KEY, '--model', tiny, '--served-model-name', MODEL,
    '--model', tiny, '--served-model-name', MODEL2]);
  const base = `http://127.0.0.1:${server.port}`;
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--window-size=1280,900'],
  });
  try {
    await browser.defaultBrowserContext().overridePermissions(base, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const requests = [];
    page.on('request', (r) => requests.push(r));

    // ---- load: everything comes from this server ----
    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready="true"]');
    assert.equal(await page.title(), 'kr-serve chat');
    // Without the key the model list is refused, and the page says so.
    await page.waitForFunction(() => document.getElementById('model-status').textContent.includes('Could not list models'));

    // ---- API key (keyboard: type, Tab away) -> the picker fills from /v1/models ----
    await page.focus('#api-key');
    await page.keyboard.type(KEY);
    await page.keyboard.press('Tab');
    await page.waitForFunction((m) => [...document.querySelectorAll('#model option')].some((o) => o.value === m), {}, MODEL);
    const served = JSON.parse((await get(server.port, '/v1/models', { Authorization: `Bearer ${KEY}` })).body).data.map((m) => m.id);
    assert.deepEqual(await page.$$eval('#model option', (os) => os.map((o) => o.value)), served);
    await page.select('#model', MODEL);

    // Sampling parameters.
    await page.$eval('#temperature', (el) => { el.value = ''; });
    await page.type('#temperature', '0');
    await page.type('#max_tokens', '12');
    await page.type('#system', 'You are terse.');
    await page.keyboard.press('Tab');

    // ---- a first message, sent with Enter ----
    await page.focus('#input');
    await page.keyboard.type('Hello there');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const a = document.querySelector('article.msg-assistant');
      return a && !a.dataset.state && a.querySelector('.msg-foot');
    }, { timeout: 20_000 });
    const chat = requests.filter((r) => r.url() === `${base}/v1/chat/completions`);
    assert.equal(chat.length, 1);
    const body = JSON.parse(chat[0].postData());
    assert.equal(body.model, MODEL);
    assert.equal(body.stream, true);
    assert.equal(body.temperature, 0);
    assert.equal(body.max_tokens, 12);
    assert.deepEqual(body.messages, [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hello there' }]);
    assert.equal(chat[0].headers().authorization, `Bearer ${KEY}`);
    const first = await page.$eval('article.msg-assistant', (a) => ({
      text: a.querySelector('.md').textContent, foot: a.querySelector('.msg-foot').textContent, error: a.querySelector('.error')?.textContent,
    }));
    assert.equal(first.error, undefined);
    assert.ok(first.text.length > 0, 'the answer has text');
    assert.match(first.foot, /\d+ tokens/);

    // ---- a long answer: watch it grow while streaming, then press Stop ----
    await page.$eval('#max_tokens', (el) => { el.value = '4000'; el.dispatchEvent(new Event('change')); });
    await page.evaluate(() => {
      window.__lengths = [];
      new MutationObserver(() => {
        const a = document.querySelector('article.msg-assistant[data-state="streaming"]');
        if (a) window.__lengths.push(a.querySelector('.md').textContent.length);
      }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
    });
    const before = await serverCounts(server.port);
    await page.type('#input', 'Tell me a very long story');
    await page.click('#send');
    await page.waitForFunction(() => new Set(window.__lengths.filter((n) => n > 0)).size >= 3, { timeout: 20_000 });
    assert.equal(await page.$eval('#stop', (b) => b.hidden), false, 'Stop is shown while streaming');
    assert.equal(await page.$eval('#send', (b) => b.disabled), true);
    assert.equal(await page.$eval('#messages', (m) => m.getAttribute('aria-busy')), 'true');
    await page.click('#stop');
    await page.waitForFunction(() => [...document.querySelectorAll('article.msg-assistant')].pop()?.querySelector('.badge.warn')?.textContent === 'stopped');
    assert.equal(await page.$eval('#send', (b) => b.disabled), false);
    assert.equal(await page.$eval('#stop', (b) => b.hidden), true);
    const grown = await page.evaluate(() => window.__lengths);
    assert.ok(grown.length >= 3 && grown[grown.length - 1] > grown[0], `streamed renders: ${grown.slice(0, 10)}`);
    // The server saw the client go away and cancelled the request.
    let after = before;
    for (let i = 0; i < 50 && !(after.cancelled > before.cancelled && after.running === 0); i++) {
      await sleep(100);
      after = await serverCounts(server.port);
    }
    assert.equal(after.cancelled, before.cancelled + 1, 'the stopped request was cancelled on the server');
    assert.equal(after.running, 0);

    // ---- the model picker: switch to the second model, which answers ----
    assert.deepEqual(served, [MODEL, MODEL2]);
    const lastChat = () => JSON.parse(requests.filter((r) => r.url().endsWith('/v1/chat/completions')).pop().postData());
    const answered = (model) => serverSuccess(server.port, model);
    const before2 = await answered(MODEL2);
    await page.select('#model', MODEL2);
    await page.$eval('#max_tokens', (el) => { el.value = '4'; el.dispatchEvent(new Event('change')); });
    await page.type('#input', 'Which model are you?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('article.msg-assistant')].pop();
      return a && !a.dataset.state && a.querySelector('.msg-foot') && !a.querySelector('.error');
    }, { timeout: 20_000 });
    assert.equal(lastChat().model, MODEL2);
    assert.match(await page.$eval('article.msg-assistant:last-of-type .msg-foot', (f) => f.textContent), new RegExp(MODEL2));
    assert.equal(await answered(MODEL2), before2 + 1, 'the second model answered');

    // A name the server does not serve: the request carries it and the 404 is shown;
    // then the first model again.
    await page.evaluate(() => {
      const o = document.createElement('option');
      o.value = o.textContent = 'not-served-model';
      document.getElementById('model').append(o);
    });
    await page.select('#model', 'not-served-model');
    await page.type('#input', 'Which model?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => [...document.querySelectorAll('article.msg-assistant')].pop()?.querySelector('.error'));
    assert.equal(lastChat().model, 'not-served-model');
    assert.match(await page.$eval('article.msg-assistant:last-of-type .error', (e) => e.textContent), /does not exist.*HTTP 404/);
    await page.select('#model', MODEL);
    await page.type('#input', 'And now?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('article.msg-assistant')].pop();
      return a && !a.dataset.state && a.querySelector('.msg-foot') && !a.querySelector('.error');
    }, { timeout: 20_000 });
    assert.equal(lastChat().model, MODEL);
    // The failed turn (question and error) is not replayed; the answered ones are, and roles alternate.
    assert.deepEqual(lastChat().messages.map((m) => m.role),
      ['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
    assert.equal(lastChat().messages[5].content, 'Which model are you?');
    assert.equal(lastChat().messages[7].content, 'And now?');

    // ---- reasoning, tool calls and code, from a scripted stream ----
    // (delta.reasoning_content and delta.tool_calls come with the model-families
    // work; the page must already show them.)
    const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const scripted = [
      chunk({ role: 'assistant', content: '' }),
      chunk({ reasoning_content: 'The user wants **weather**' }),
      chunk({ reasoning_content: ' and a snippet.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: ' "Paris"}' } }] }),
      chunk({ content: 'Here:\n\n```sh\necho "<b>hi</b>"\n```\n' }),
      chunk({ content: '<img src=x onerror="window.__pwned=1">' }, 'stop'),
      'data: [DONE]\n\n',
    ].join('');
    await page.setRequestInterception(true);
    const onRequest = (r) => {
      if (r.url().endsWith('/v1/chat/completions')) r.respond({ status: 200, contentType: 'text/event-stream', body: scripted });
      else r.continue();
    };
    page.on('request', onRequest);
    await page.type('#input', 'Weather in Paris, and a shell snippet');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('article.msg-assistant')].pop();
      return a && !a.dataset.state && a.querySelector('.tool-call');
    });
    page.off('request', onRequest);
    await page.setRequestInterception(false);
    const shown = await page.$eval('article.msg-assistant:last-of-type', (a) => ({
      summary: a.querySelector('details.reasoning > summary')?.textContent,
      open: a.querySelector('details.reasoning')?.open,
      reasoning: a.querySelector('details.reasoning .md')?.innerHTML,
      tool: a.querySelector('.tool-call code')?.textContent,
      toolLabel: a.querySelector('.tool-call')?.getAttribute('aria-label'),
      args: a.querySelector('.tool-call pre')?.textContent,
      code: a.querySelector('.code-block code')?.textContent,
      lang: a.querySelector('.code-lang')?.textContent,
      img: a.querySelectorAll('img').length,
      pwned: window.__pwned,
    }));
    assert.equal(shown.summary, 'Reasoning');
    assert.equal(shown.open, false, 'reasoning starts collapsed');
    assert.equal(shown.reasoning, '<p>The user wants <strong>weather</strong> and a snippet.</p>');
    assert.equal(shown.tool, 'get_weather');
    assert.equal(shown.toolLabel, 'Tool call get_weather');
    assert.deepEqual(JSON.parse(shown.args), { city: 'Paris' });
    assert.equal(shown.code, 'echo "<b>hi</b>"');
    assert.equal(shown.lang, 'sh');
    assert.equal(shown.img, 0, 'HTML in the answer is text');
    assert.equal(shown.pwned, undefined);
    // Expand the reasoning with the keyboard.
    await page.focus('article.msg-assistant:last-of-type details.reasoning > summary');
    await page.keyboard.press('Enter');
    assert.equal(await page.$eval('article.msg-assistant:last-of-type details.reasoning', (d) => d.open), true);
    // Copy the code block.
    await page.click('article.msg-assistant:last-of-type .copy-code');
    await page.waitForFunction(() => document.querySelector('article.msg-assistant:last-of-type .copy-code').textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'echo "<b>hi</b>"');

    fs.writeFileSync(path.join(OUT_DIR, 'webui.png'), await page.screenshot({ fullPage: false }));

    // ---- accessibility: every control has a name; nothing came from elsewhere ----
    const unnamed = await page.$$eval('button, input, select, textarea, summary, [role="log"]', (els) => els
      .filter((e) => e.getClientRects().length > 0)
      .filter((e) => !(e.getAttribute('aria-label') || (e.labels && e.labels[0]?.textContent.trim()) || e.textContent.trim() || e.title))
      .map((e) => e.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, []);
    const foreign = requests.map((r) => r.url()).filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:'));
    assert.deepEqual(foreign, [], 'the page loads nothing from other origins');

    // ---- the conversation survives a reload (localStorage) ----
    const count = await page.$$eval('article.msg', (a) => a.length);
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('html[data-ready="true"]');
    assert.equal(await page.$$eval('article.msg', (a) => a.length), count);
    assert.equal(await page.$eval('#conversations [aria-current="true"]', (b) => b.textContent), 'Hello there');
    assert.equal(await page.$eval('#model', (s) => s.value), MODEL);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await stopServer(server);
  }
});

test('the page and its headers; --no-webui turns it off', async () => {
  const on = await startServer();
  try {
    const page = await get(on.port, '/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
    assert.match(page.body, /<title>kr-serve chat<\/title>/);
    const js = await get(on.port, '/webui/app.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await get(on.port, '/webui/missing.js')).status, 404);
  } finally {
    await stopServer(on);
  }
  const off = await startServer(['--no-webui']);
  try {
    const r = await get(off.port, '/');
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).error.code, 'not_found');
    assert.equal((await get(off.port, '/webui/app.js')).status, 404);
  } finally {
    await stopServer(off);
  }
});
