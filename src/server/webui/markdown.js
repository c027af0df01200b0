// A small Markdown renderer for the chat page (CommonMark/GFM subset: fenced
// code, headings, lists, block quotes, tables, rules, emphasis, inline code,
// links). Model output is untrusted, so safety comes first: every piece of
// source text is HTML-escaped before anything else, and the only markup in
// the output is the markup this file writes. Links keep only http, https and
// mailto targets. Anything it does not understand stays as escaped text.
//
// Used by app.js in the browser and by tests/integration/markdown.test.mjs in
// node (no DOM needed: it maps a string to an HTML string).

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Link targets allowed in href (checked on the raw text, before escaping).
function safeUrl(url) {
  return /^(https?:\/\/|mailto:)[^\s]*$/i.test(url) ? url : null;
}

function link(href, labelHtml) {
  return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer">${labelHtml}</a>`;
}

// Inline spans of one block's raw text -> HTML. Code spans and links are cut
// out first (their content is not parsed further), the rest is escaped, then
// emphasis is applied to the escaped text.
export function renderInline(raw) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let s = String(raw).replace(/\u0000/g, '');
  // `code` and ``code with ` inside``
  s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, _ticks, code) => {
    const c = code.length > 2 && code.startsWith(' ') && code.endsWith(' ') ? code.slice(1, -1) : code;
    return hold(`<code>${escapeHtml(c)}</code>`);
  });
  // [label](url "title") — the label may hold emphasis, not links.
  s = s.replace(/\[([^\[\]]+)\]\(\s*<?([^\s()<>]+)>?(?:\s+"[^"]*")?\s*\)/g, (whole, label, url) => {
    const target = safeUrl(url);
    if (!target) return hold(escapeHtml(whole));
    return hold(link(target, emphasis(escapeHtml(label))));
  });
  // <https://example.com> and bare URLs.
  s = s.replace(/<(https?:\/\/[^\s<>]+)>|\bhttps?:\/\/[^\s<>"'`]+/g, (whole, angled) => {
    let url = angled || whole;
    let tail = '';
    if (!angled) {
      // Sentence punctuation after a URL is not part of it.
      const m = /[.,;:!?)\]]+$/.exec(url);
      if (m) {
        tail = m[0];
        url = url.slice(0, -tail.length);
      }
    }
    return hold(link(url, escapeHtml(url))) + escapeHtml(tail);
  });
  s = emphasis(escapeHtml(s));
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => held[Number(i)]);
}

// On escaped text: **strong**, __strong__, *em*, _em_, ~~del~~.
function emphasis(s) {
  return s
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>')
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>')
    .replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

// A fenced code block: the language tag, a copy button and the escaped code.
// app.js finds the buttons by their class and copies the <code> text.
export function codeBlock(code, lang) {
  const tag = (lang || '').replace(/[^\w+#.-]/g, '').slice(0, 32);
  const label = tag ? `Copy ${tag} code` : 'Copy code';
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(tag || 'text')}</span>` +
    `<button type="button" class="copy-code" aria-label="${escapeHtml(label)}">Copy</button></div>` +
    `<pre><code${tag ? ` class="language-${escapeHtml(tag)}"` : ''}>${escapeHtml(code)}</code></pre></div>`
  );
}

const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
const TABLE_RULE = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (s[i] === '|') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += s[i];
    }
  }
  cells.push(cur.trim());
  return cells;
}

function table(lines, start) {
  const head = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((c) =>
    c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : '');
  if (aligns.length !== head.length) return null;
  const cell = (tag, text, i) =>
    `<${tag}${aligns[i] ? ` class="align-${aligns[i]}"` : ''}>${renderInline(text || '')}</${tag}>`;
  let html = `<div class="table-wrap"><table><thead><tr>${head.map((c, i) => cell('th', c, i)).join('')}</tr></thead><tbody>`;
  let i = start + 2;
  for (; i < lines.length && lines[i].includes('|') && lines[i].trim() !== ''; i++) {
    const row = splitRow(lines[i]);
    html += `<tr>${head.map((_, j) => cell('td', row[j], j)).join('')}</tr>`;
  }
  return { html: `${html}</tbody></table></div>`, next: i };
}

function list(lines, start) {
  const first = LIST_ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const startNum = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = indent + m[2].length + 1;
    const body = [m[3] || ''];
    i++;
    // The item goes on while lines are indented under it, or are lazy paragraph continuations.
    while (i < lines.length) {
      const line = lines[i];
      if (line.trim() === '') {
        const next = lines[i + 1];
        if (next !== undefined && next.trim() !== '' && next.search(/\S/) >= contentIndent) {
          body.push('');
          i++;
          continue;
        }
        break;
      }
      const lead = line.search(/\S/);
      if (lead >= contentIndent) {
        body.push(line.slice(contentIndent));
      } else if (lead > indent && LIST_ITEM.test(line)) {
        body.push(line.slice(Math.min(lead, contentIndent)));
      } else if (!isBlockStart(line) && lead > indent - 1 && !LIST_ITEM.test(line)) {
        body.push(line.trim());
      } else {
        break;
      }
      i++;
    }
    let html = renderMarkdown(body.join('\n'));
    // Tight items: a lone paragraph is shown without <p>.
    const lone = /^<p>([\s\S]*?)<\/p>(?=<|$)/.exec(html);
    if (lone && html.indexOf('<p>', 3) < 0) html = lone[1] + html.slice(lone[0].length);
    items.push(`<li>${html}</li>`);
    // Blank lines between items keep the list going.
    if (lines[i] !== undefined && lines[i].trim() === '') {
      let j = i;
      while (j < lines.length && lines[j].trim() === '') j++;
      const n = LIST_ITEM.exec(lines[j] || '');
      if (n && n[1].length === indent && /\d/.test(n[2]) === ordered) i = j;
    }
  }
  const open = ordered ? (startNum !== 1 ? `<ol start="${startNum}">` : '<ol>') : '<ul>';
  return { html: `${open}${items.join('')}${ordered ? '</ol>' : '</ul>'}`, next: i };
}

// Markdown source -> HTML. An unclosed code fence (a reply still streaming)
// runs to the end as a code block.
export function renderMarkdown(src) {
  const lines = String(src).replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n');
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i++;
      continue;
    }
    let m = FENCE.exec(line);
    if (m) {
      const fence = m[1];
      const indent = line.search(/\S/);
      const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}[ \\t]*$`);
      const body = [];
      i++;
      while (i < lines.length && !close.test(lines[i])) {
        let l = lines[i];
        for (let k = 0; k < indent && l.startsWith(' '); k++) l = l.slice(1);
        body.push(l);
        i++;
      }
      i++;  // the closing fence
      out.push(codeBlock(body.join('\n'), m[2]));
      continue;
    }
    m = HEADING.exec(line);
    if (m) {
      const level = m[1].length;
      out.push(`<h${level}>${renderInline(m[2] || '')}</h${level}>`);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push('<hr>');
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && lines[i].trim() !== '') {
        const q = QUOTE.exec(lines[i]);
        body.push(q ? q[1] : lines[i]);
        i++;
      }
      out.push(`<blockquote>${renderMarkdown(body.join('\n'))}</blockquote>`);
      continue;
    }
    if (LIST_ITEM.test(line)) {
      const l = list(lines, i);
      out.push(l.html);
      i = l.next;
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-')) {
      const t = table(lines, i);
      if (t) {
        out.push(t.html);
        i = t.next;
        continue;
      }
    }
    // A paragraph: up to a blank line or the start of another block. Single
    // newlines are line breaks, as chat users expect.
    const para = [line.trim()];
    i++;
    while (i < lines.length && lines[i].trim() !== '' && !isBlockStart(lines[i])) {
      if (lines[i].includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) break;
      para.push(lines[i].trim());
      i++;
    }
    out.push(`<p>${para.map(renderInline).join('<br>')}</p>`);
  }
  return out.join('');
}
