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
    <button id="refine" class="secondary" hidden title="Refine this workspace's adapter from your feedback (Aligner: Refine Style from Feedback)">
      Refine <span id="pairs" class="count"></span>
    </button>
    <label class="toggle" title="Answer each prompt twice: with the adapter and with the base model">
      <input type="checkbox" id="compare"> <span id="compare-label">Compare with base model</span>
    </label>
    <button id="compare-base" class="icon" hidden title="Compare with the base model again" aria-label="Compare with the base model again">×</button>
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

/** The columns of a turn, in display order. */
function columnsOf(turn, streaming) {
  if (turn.columns) return turn.columns;
  const present = Object.keys(turn.answers ?? { adapter: 1 });
  return ['adapter', 'again', 'version', 'base'].filter((c) => present.includes(c) || c === streaming);
}

function addTurn(turn) {
  $('empty').hidden = true;
  const { el, cols } = renderTurn(turn);
  transcript.append(el);
  turns.set(turn.id, cols);
  el.scrollIntoView({ block: 'end' });
  return cols;
}

/** A saved turn drawn again in place (after feedback), or a column starting to stream in it. */
function updateTurn(turn, labels, streaming) {
  const old = [...transcript.querySelectorAll('section.turn')].find((el) => el instanceof HTMLElement && el.dataset.turn === turn.id);
  if (!old) return;
  const { el, cols } = renderTurn({ ...turn, columns: columnsOf(turn, streaming), labels });
  old.replaceWith(el);
  turns.set(turn.id, cols);
  fill(turn, cols, streaming);
}

/** Shows a saved turn's answers in its columns. */
function fill(turn, cols, streaming) {
  for (const [c, a] of Object.entries(turn.answers ?? {})) {
    if (!cols[c] || c === streaming) continue;
    cols[c].text = a.text ?? '';
    renderMarkdown(cols[c].body, a.edited ?? cols[c].text);
    if (a.error) showError(cols[c], a.error);
    finish(cols[c], a);
  }
  if (streaming && cols[streaming]) cols[streaming].el.classList.add('streaming');
}

function renderTurn(turn) {
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
  const columns = columnsOf(turn);
  if (columns.length > 1) answers.classList.add('compare');
  for (const c of columns) {
    const col = document.createElement('article');
    col.className = `answer ${c}`;
    col.dataset.column = c;
    const head = document.createElement('div');
    head.className = 'answer-head';
    const label =
      turn.labels?.[c] ?? (c === 'base' ? 'base model' : (turn.answers?.[c]?.adapterLabel ?? labelOf(turn.answers?.[c]?.adapter)));
    head.textContent =
      c === 'base'
        ? 'Base model'
        : c === 'version'
          ? `Version: ${turn.labels?.version || labelOf(turn.answers?.version?.adapter)}`
          : `Adapter: ${label}`;
    if (c !== 'base' && turn.preferred === c) col.classList.add('preferred');
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
    cols[c] = { el: col, body, foot, stats, text: '', pending: false, done: false, turn, column: c };
  }
  return { el, cols };
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
  transcript.classList.toggle('busy', b);
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
  if (info.edited !== undefined) parts.push('edited');
  col.stats.textContent = parts.join(' · ');
  // Feedback on the adapter's complete answers: a stopped or failed one has no prompt to pair it with.
  if ((col.column === 'adapter' || col.column === 'again') && !info.error && info.finishReason && info.finishReason !== 'cancelled')
    feedbackBar(col, info);
}

/** A thumb up, 16 × 16, in the text colour. */
const THUMB =
  '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path fill="currentColor" d="M1.5 7h3v7.5h-3zM6 14.5V7.2l2.6-5.1c.2-.4.7-.6 1.1-.4.9.4 1.3 1.4 1 2.3L10.2 6H14c.9 0 1.6.8 1.4 1.7l-1.1 5.6c-.2.7-.8 1.2-1.5 1.2z"/></svg>';

/**
 * 👍/👎, Edit, Regenerate (the first answer) and, once there are two, "Prefer this". What each
 * records is decided by the host (src/extension/pairs.ts); the page only says what the user did.
 */
function feedbackBar(col, answer) {
  const turnId = col.turn.id;
  const column = col.column;
  const bar = document.createElement('span');
  bar.className = 'feedback';
  const rate = (verdict, aria) => {
    const on = answer.rating === verdict;
    const b = button('', aria, () => vscode.postMessage({ type: 'rate', turnId, column, verdict: on ? 'none' : verdict }), 'icon rate');
    // Drawn, not an emoji: not every system has an emoji font (headless chromium has none).
    b.innerHTML = verdict === 'up' ? THUMB : THUMB.replace('<path', '<path transform="rotate(180 8 8)"');
    b.dataset.verdict = verdict;
    b.setAttribute('aria-pressed', String(on));
    return b;
  };
  bar.append(rate('up', 'Good answer (👍)'), rate('down', 'Bad answer (👎)'));
  bar.append(button('Edit', 'Edit the answer: your text becomes the preferred answer', () => startEdit(col, answer), 'icon edit'));
  if (column === 'adapter')
    bar.append(
      button(
        'Regenerate',
        'Answer again, to choose the better of two',
        () => vscode.postMessage({ type: 'regenerate', turnId }),
        'icon regenerate',
      ),
    );
  const other = col.turn.answers?.[column === 'adapter' ? 'again' : 'adapter'];
  if (other && !other.error) {
    const on = col.turn.preferred === column;
    const b = button(
      on ? '✓ Preferred' : 'Prefer this',
      'Prefer this answer to the other one',
      () => vscode.postMessage({ type: 'prefer', turnId, column }),
      'icon prefer',
    );
    b.setAttribute('aria-pressed', String(on));
    bar.append(b);
  }
  if (answer.rating) col.el.classList.add(`rated-${answer.rating}`);
  if (answer.edited !== undefined) col.el.classList.add('edited');
  col.foot.append(bar);
}

/** The answer's text in a box to rewrite; Save sends it, Cancel puts the answer back. */
function startEdit(col, answer) {
  if (col.el.querySelector('.editor')) return;
  const box = document.createElement('div');
  box.className = 'editor';
  const area = document.createElement('textarea');
  area.value = answer.edited ?? col.text;
  area.rows = Math.min(16, Math.max(4, area.value.split('\n').length + 1));
  area.setAttribute('aria-label', 'Your version of the answer');
  const close = () => {
    box.remove();
    col.body.hidden = false;
  };
  const actions = document.createElement('div');
  actions.className = 'editor-actions';
  box.append(area, actions);
  actions.append(
    button(
      'Save',
      'Save your version as the preferred answer',
      () => {
        vscode.postMessage({ type: 'edit', turnId: col.turn.id, column: col.column, text: area.value });
        close();
      },
      'save',
    ),
    button('Cancel', 'Keep the answer as it is', close, 'secondary'),
  );
  col.body.hidden = true;
  col.body.after(box);
  area.focus();
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
      for (const t of m.history ?? []) fill(t, addTurn(t));
      $('empty').hidden = turns.size > 0;
      transcript.scrollTop = transcript.scrollHeight;
      break;
    }
    case 'compareTarget':
      $('compare-label').textContent = m.label ? `Compare with ${m.label}` : 'Compare with base model';
      $('compare-base').hidden = !m.label;
      if (m.label) compareBox.checked = true;
      break;
    case 'adapter':
      $('adapter-label').textContent = m.label;
      $('adapter').classList.toggle('warning', !!m.problem);
      $('adapter').title = m.problem ?? 'Switch the adapter for this workspace';
      $('model').textContent = m.model ?? '';
      break;
    case 'turn':
      for (const c of Object.values(addTurn(m.turn))) c.el.classList.add('streaming');
      break;
    case 'update':
      updateTurn(m.turn, m.labels, m.streaming);
      break;
    case 'pairs':
      $('refine').hidden = !m.adapter;
      $('pairs').textContent = m.problem ? '!' : `${m.count} pair${m.count === 1 ? '' : 's'}`;
      $('refine').title =
        m.problem ?? `Refine “${m.adapter}” from the ${m.count} preference pairs of this workspace (Aligner: Refine Style from Feedback)`;
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
      if (!c || c.done) break;
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
$('refine').addEventListener('click', () => vscode.postMessage({ type: 'refine' }));
$('compare-base').addEventListener('click', () => vscode.postMessage({ type: 'compareBase' }));
compareBox.addEventListener('change', () => vscode.postMessage({ type: 'setCompare', compare: compareBox.checked }));
$('clear').addEventListener('click', () => {
  transcript.textContent = '';
  turns.clear();
  $('empty').hidden = false;
  vscode.postMessage({ type: 'clear' });
});

vscode.postMessage({ type: 'ready' });
input.focus();
