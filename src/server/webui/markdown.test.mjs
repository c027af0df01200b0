// The chat page's Markdown renderer (markdown.js), in node: what it renders,
// and that no input, however hostile, yields markup it did not write itself.
// Run: node --test src/server/webui/markdown.test.mjs (ctest: webui_markdown).
import test from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown, renderInline, escapeHtml } from './markdown.js';

// The tags and attributes the renderer may write, and nothing else.
const TAGS = new Set(['p', 'br', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'strong', 'em', 'del', 'code', 'pre', 'a', 'ul', 'ol',
  'li', 'blockquote', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'div', 'span', 'button']);
const ATTRS = new Set(['class', 'href', 'target', 'rel', 'type', 'aria-label', 'start']);

function assertSafe(input) {
  const html = renderMarkdown(input);
  const stripped = html.replace(/<\/?([a-zA-Z0-9]+)((?:\s+[a-z-]+="[^"<>]*")*)\s*>/g, (tag, name, attrs) => {
    assert.ok(TAGS.has(name.toLowerCase()), `tag <${name}> from ${JSON.stringify(input)}: ${html}`);
    for (const m of attrs.matchAll(/([a-z-]+)="([^"]*)"/g)) {
      assert.ok(ATTRS.has(m[1]), `attribute ${m[1]} from ${JSON.stringify(input)}: ${html}`);
      if (m[1] === 'href') assert.match(m[2], /^(https?:\/\/|mailto:)/i, `href from ${JSON.stringify(input)}`);
    }
    return '';
  });
  // Whatever is left is text: no raw angle bracket survives.
  assert.ok(!/[<>]/.test(stripped), `raw markup from ${JSON.stringify(input)}: ${html}`);
  return html;
}

test('escapes HTML in text, code and attributes', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  const hostile = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '[click](javascript:alert(1))',
    '[click](JaVaScRiPt:alert(1))',
    '[click](data:text/html;base64,PHNjcmlwdD4=)',
    '[x](https://a.b/"onmouseover="alert(1))',
    '[x](https://a.b/ "title" onclick="x")',
    '<https://a.b/"><script>x</script>>',
    'https://a.b/<script>',
    '```"><script>x</script>\ncode\n```',
    '```js onload=alert(1)\n</code></pre><script>x</script>\n```',
    '`</code><script>`',
    '| <b>a</b> | b |\n|---|---|\n| <i>c</i> | d |',
    '# <h1 onclick=x>t</h1>',
    '> <iframe src=//evil>',
    '- <svg/onload=alert(1)>\n  - <math>',
    '**<u>bold</u>** _<s>x</s>_ ~~<del>y</del>~~',
    '[<img src=x>](https://ok.example)',
    '\u0000<b>\u00001\u0000',
    '&lt;script&gt; &amp;amp; &#60;b&#62;',
  ];
  for (const h of hostile) assertSafe(h);
  assert.ok(!renderMarkdown('[click](javascript:alert(1))').includes('href'));
  assert.ok(!renderMarkdown('[x](data:text/html,hi)').includes('href'));
  // Entities written by the model stay text (shown literally, not decoded).
  assert.equal(renderMarkdown('&lt;b&gt;'), '<p>&amp;lt;b&amp;gt;</p>');
});

test('random mixes of markdown and HTML characters stay safe', () => {
  const alphabet = ['<', '>', '"', "'", '&', '`', '```', '*', '_', '~~', '[', ']', '(', ')', '|', '#', '-', '>', '\n',
    '\n\n', ' ', '  ', 'a', 'b', '1.', 'http://x.y/', 'javascript:', 'script', 'onerror=', '=', '\\', '\u0000', ':'];
  let seed = 12345;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    let s = '';
    const len = 1 + rand(40);
    for (let j = 0; j < len; j++) s += alphabet[rand(alphabet.length)];
    assertSafe(s);
  }
});

test('fenced code keeps its text and gets a copy button', () => {
  const html = assertSafe('Intro\n\n```python\nif a < b:\n    print("x & y")\n```\nAfter');
  assert.match(html, /<p>Intro<\/p>/);
  assert.match(html, /<span class="code-lang">python<\/span>/);
  assert.match(html, /<button type="button" class="copy-code" aria-label="Copy python code">Copy<\/button>/);
  assert.match(html, /<pre><code class="language-python">if a &lt; b:\n    print\(&quot;x &amp; y&quot;\)<\/code><\/pre>/);
  assert.match(html, /<p>After<\/p>$/);
  // Markdown inside code is not interpreted.
  assert.match(renderMarkdown('```\n**not bold** [x](https://a.b)\n```'), /<code>\*\*not bold\*\* \[x\]\(https:\/\/a\.b\)<\/code>/);
  // A fence still streaming (no closing line yet) shows as code so far.
  assert.match(renderMarkdown('```js\nlet x = 1;'), /<code class="language-js">let x = 1;<\/code>/);
  // Tildes and longer fences.
  assert.match(renderMarkdown('~~~~\n```\ninner\n```\n~~~~'), /<code>```\ninner\n```<\/code>/);
});

test('inline spans', () => {
  assert.equal(renderInline('**b** *i* _i2_ ~~d~~ `c`'), '<strong>b</strong> <em>i</em> <em>i2</em> <del>d</del> <code>c</code>');
  assert.equal(renderInline('snake_case_name and 2*3*4'), 'snake_case_name and 2*3*4');
  assert.equal(renderInline('``a ` b``'), '<code>a ` b</code>');
  assert.equal(renderInline('[site](https://example.com/a?b=1&c=2)'),
    '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">site</a>');
  assert.equal(renderInline('see https://example.com/x.'),
    'see <a href="https://example.com/x" target="_blank" rel="noopener noreferrer">https://example.com/x</a>.');
  assert.equal(renderInline('[**bold** link](mailto:a@b.c)'),
    '<a href="mailto:a@b.c" target="_blank" rel="noopener noreferrer"><strong>bold</strong> link</a>');
});

test('blocks: headings, lists, quotes, tables, rules, paragraphs', () => {
  assert.equal(renderMarkdown('# One\n### Three ###'), '<h1>One</h1><h3>Three</h3>');
  assert.equal(renderMarkdown('- a\n- b\n  - c\n- d'), '<ul><li>a</li><li>b<ul><li>c</li></ul></li><li>d</li></ul>');
  assert.equal(renderMarkdown('3. x\n4. y'), '<ol start="3"><li>x</li><li>y</li></ol>');
  assert.equal(renderMarkdown('1. a\n\n2. b'), '<ol><li>a</li><li>b</li></ol>');
  assert.equal(renderMarkdown('> q\n> r'), '<blockquote><p>q<br>r</p></blockquote>');
  assert.equal(renderMarkdown('a\nb\n\nc'), '<p>a<br>b</p><p>c</p>');
  assert.equal(renderMarkdown('---'), '<hr>');
  assert.equal(renderMarkdown('| a | b |\n|:--|--:|\n| 1 | 2 |'),
    '<div class="table-wrap"><table><thead><tr><th class="align-left">a</th><th class="align-right">b</th></tr></thead>' +
    '<tbody><tr><td class="align-left">1</td><td class="align-right">2</td></tr></tbody></table></div>');
  const list = renderMarkdown('1. step\n   ```sh\n   make\n   ```\n2. next');
  assert.match(list, /^<ol><li>step<div class="code-block">.*<code class="language-sh">make<\/code>.*<\/li><li>next<\/li><\/ol>$/s);
});
