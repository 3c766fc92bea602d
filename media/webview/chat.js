// @ts-check
// Aligner chat panel (webview side). Bundled by esbuild into dist/media/chat.js.
// Markdown via marked, sanitised by DOMPurify, code highlighted by highlight.js.
import { Marked } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';

/** @typedef {import('../../src/extension/webviewMessages').ChatFromWebview} FromPage */
/** @typedef {import('../../src/extension/webviewMessages').ChatToWebview} ToPage */

/** @type {WebviewApi<FromPage>} */
const vscode = acquireVsCodeApi();
const marked = new Marked({ gfm: true, breaks: true });

const app = document.getElementById('app');
app.innerHTML = `
  <header class="toolbar">
    <button id="adapter" class="chip" title="Switch the adapter for this workspace" aria-label="Switch adapter">
      <span class="dot" aria-hidden="true"></span><span id="adapter-label">…</span>
    </button>
    <span id="model" class="muted"></span>
    <span class="spacer"></span>
    <label class="toggle" title="Answer each prompt twice: with the adapter and with the base model">
      <input type="checkbox" id="compare"> Compare with base model
    </label>
    <button id="clear" class="secondary" title="Start a new chat (clears this workspace's history)">New chat</button>
  </header>
  <main id="transcript" aria-live="polite" aria-relevant="additions"></main>
  <div id="empty" class="empty">
    <h2>Aligner Chat</h2>
    <p>Answers come from the local base model with this workspace's adapter. Nothing leaves your machine.</p>
  </div>
  <form id="composer" autocomplete="off">
    <textarea id="input" rows="3" placeholder="Ask, or start a story… (Enter to send, Shift+Enter for a new line)" aria-label="Message"></textarea>
    <div class="actions">
      <button id="send" type="submit">Send</button>
      <button id="stop" type="button" class="danger" hidden>Stop</button>
    </div>
  </form>`;

const $ = (id) => document.getElementById(id);
const transcript = $('transcript');
const input = /** @type {HTMLTextAreaElement} */ ($('input'));
const sendBtn = $('send');
const stopBtn = $('stop');
const compareBox = /** @type {HTMLInputElement} */ ($('compare'));
const turns = new Map();
let busy = false;

function renderMarkdown(el, text) {
  // Model output may not name elements: an id or name would shadow the page's own elements
  // (getElementById returns the first match) or clobber document properties.
  const html = DOMPurify.sanitize(marked.parse(text, { async: false }), {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'form', 'input', 'img'],
    FORBID_ATTR: ['id', 'name'],
    SANITIZE_DOM: true,
  });
  el.innerHTML = html;
  for (const a of el.querySelectorAll('a')) {
    a.removeAttribute('target');
    a.setAttribute('rel', 'noreferrer');
  }
  for (const code of el.querySelectorAll('pre > code')) {
    const lang = /language-([\w+-]+)/.exec(code.className)?.[1];
    try {
      if (lang && hljs.getLanguage(lang)) code.innerHTML = hljs.highlight(code.textContent, { language: lang, ignoreIllegals: true }).value;
      else code.innerHTML = hljs.highlightAuto(code.textContent).value;
      code.classList.add('hljs');
    } catch {
      /* leave it plain */
    }
    const pre = code.parentElement;
    const bar = document.createElement('div');
    bar.className = 'code-actions';
    bar.append(button('Copy', 'Copy code', () => vscode.postMessage({ type: 'copy', text: code.textContent })));
    bar.append(button('Insert', 'Insert code at the cursor', () => vscode.postMessage({ type: 'insert', text: code.textContent })));
    if (lang) {
      const l = document.createElement('span');
      l.className = 'lang';
      l.textContent = lang;
      bar.prepend(l);
    }
    pre.prepend(bar);
  }
}

function button(label, aria, onClick, cls = 'icon') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = label;
  b.setAttribute('aria-label', aria);
  b.title = aria;
  b.addEventListener('click', onClick);
  return b;
}

function addTurn(turn) {
  $('empty').hidden = true;
  const el = document.createElement('section');
  el.className = 'turn';
  el.dataset.turn = turn.id;
  const user = document.createElement('div');
  user.className = 'user';
  user.textContent = turn.prompt;
  el.append(user);
  const answers = document.createElement('div');
  answers.className = 'answers';
  el.append(answers);
  const cols = {};
  const columns = turn.columns ?? Object.keys(turn.answers ?? { adapter: 1 });
  if (columns.length > 1) answers.classList.add('compare');
  for (const c of columns) {
    const col = document.createElement('article');
    col.className = `answer ${c}`;
    col.dataset.column = c;
    const head = document.createElement('div');
    head.className = 'answer-head';
    const label =
      turn.labels?.[c] ?? (c === 'base' ? 'base model' : (turn.answers?.[c]?.adapterLabel ?? labelOf(turn.answers?.[c]?.adapter)));
    head.textContent = c === 'base' ? 'Base model' : `Adapter: ${label}`;
    const body = document.createElement('div');
    body.className = 'markdown';
    const foot = document.createElement('div');
    foot.className = 'answer-foot';
    const stats = document.createElement('span');
    stats.className = 'muted stats';
    foot.append(
      stats,
      button('Copy', 'Copy the answer', () => vscode.postMessage({ type: 'copy', text: cols[c].text }), 'icon'),
    );
    col.append(head, body, foot);
    answers.append(col);
    cols[c] = { el: col, body, stats, text: '', pending: false, done: false };
  }
  transcript.append(el);
  turns.set(turn.id, cols);
  el.scrollIntoView({ block: 'end' });
  return cols;
}

function labelOf(adapter) {
  if (!adapter) return 'base model';
  return adapter
    .split(/[\\/]/)
    .pop()
    .replace(/\.safetensors$/i, '');
}

function schedule(col) {
  if (col.pending) return;
  col.pending = true;
  requestAnimationFrame(() => {
    col.pending = false;
    renderMarkdown(col.body, col.text);
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 120;
    if (nearBottom) transcript.scrollTop = transcript.scrollHeight;
  });
}

function setBusy(b) {
  busy = b;
  sendBtn.hidden = b;
  stopBtn.hidden = !b;
  transcript.setAttribute('aria-busy', String(b));
  // Back to the composer only when the user is still in this panel: an answer that ends while
  // they type elsewhere (or answer a quick input) must not pull the focus here.
  if (!b && document.hasFocus()) input.focus();
}

function finish(col, info) {
  col.done = true;
  col.el.classList.remove('streaming');
  col.el.classList.add('done');
  const parts = [];
  if (info.finishReason === 'cancelled') parts.push('stopped');
  if (info.tokens) parts.push(`${info.tokens} tokens`);
  if (info.ms) parts.push(`${(info.ms / 1000).toFixed(1)} s`);
  col.stats.textContent = parts.join(' · ');
}

function col(turnId, column) {
  return turns.get(turnId)?.[column];
}

window.addEventListener('message', (event) => {
  /** @type {ToPage} */
  const m = event.data;
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'init': {
      transcript.textContent = '';
      turns.clear();
      compareBox.checked = !!m.compare;
      for (const t of m.history ?? []) {
        const cols = addTurn(t);
        for (const [c, a] of Object.entries(t.answers ?? {})) {
          if (!cols[c]) continue;
          cols[c].text = a.text ?? '';
          renderMarkdown(cols[c].body, cols[c].text);
          if (a.error) showError(cols[c], a.error);
          finish(cols[c], a);
        }
      }
      $('empty').hidden = turns.size > 0;
      transcript.scrollTop = transcript.scrollHeight;
      break;
    }
    case 'adapter':
      $('adapter-label').textContent = m.label;
      $('adapter').classList.toggle('warning', !!m.problem);
      $('adapter').title = m.problem ?? 'Switch the adapter for this workspace';
      $('model').textContent = m.model ?? '';
      break;
    case 'turn':
      for (const c of Object.values(addTurn(m.turn))) c.el.classList.add('streaming');
      break;
    case 'busy':
      setBusy(!!m.busy);
      break;
    case 'delta': {
      const c = col(m.turnId, m.column);
      if (!c || c.done) break;
      c.text += m.delta;
      schedule(c);
      break;
    }
    case 'done': {
      const c = col(m.turnId, m.column);
      if (!c) break;
      c.text = m.text;
      renderMarkdown(c.body, c.text);
      finish(c, m);
      break;
    }
    case 'error': {
      const c = col(m.turnId, m.column);
      if (!c) break;
      showError(c, m.message);
      finish(c, {});
      break;
    }
  }
});

function showError(c, message) {
  c.el.classList.add('error');
  const e = document.createElement('div');
  e.className = 'error-message';
  e.setAttribute('role', 'alert');
  e.textContent = message;
  c.body.after(e);
}

function send() {
  const text = input.value.trim();
  if (!text || busy) return;
  input.value = '';
  vscode.postMessage({ type: 'send', text, compare: compareBox.checked });
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && busy) vscode.postMessage({ type: 'stop' });
});
stopBtn.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
$('adapter').addEventListener('click', () => vscode.postMessage({ type: 'pickAdapter' }));
compareBox.addEventListener('change', () => vscode.postMessage({ type: 'setCompare', compare: compareBox.checked }));
$('clear').addEventListener('click', () => {
  transcript.textContent = '';
  turns.clear();
  $('empty').hidden = false;
  vscode.postMessage({ type: 'clear' });
});

vscode.postMessage({ type: 'ready' });
input.focus();
