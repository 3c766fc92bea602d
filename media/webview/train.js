// @ts-check
// Aligner training view (webview side): progress, the live loss curve (train and
// validation) drawn as inline SVG, and the before/after sample of one fixed prompt. Bundled by esbuild into dist/media/train.js.
/** @typedef {import('../../src/extension/webviewMessages').TrainFromWebview} FromPage */
/** @typedef {import('../../src/extension/webviewMessages').TrainToWebview} ToPage */

/** @type {WebviewApi<FromPage>} */
const vscode = acquireVsCodeApi();
const app = document.getElementById('app');
app.innerHTML = `
  <h1 id="title">Aligner training</h1>
  <p id="subtitle" class="muted">Waiting for a training run… (Aligner: Train My Style)</p>
  <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0" id="bar"><div id="fill"></div></div>
  <dl class="stats">
    <div><dt>Step</dt><dd id="step">–</dd></div>
    <div><dt>Epoch</dt><dd id="epoch">–</dd></div>
    <div><dt>Train loss</dt><dd id="loss">–</dd></div>
    <div><dt>Validation loss</dt><dd id="val">–</dd></div>
    <div><dt>Tokens/s</dt><dd id="tps">–</dd></div>
    <div><dt>Time left</dt><dd id="eta">–</dd></div>
  </dl>
  <figure>
    <svg id="chart" viewBox="0 0 640 300" role="img" aria-label="Loss curve"></svg>
    <figcaption><span class="key train"></span> train loss <span class="key val"></span> validation loss</figcaption>
  </figure>
  <section id="samples" aria-label="Sample from a fixed prompt and seed" hidden>
    <h2>Sample <span class="muted" id="sample-prompt"></span></h2>
    <div class="samples">
      <div><h3>Before</h3><p class="sample" id="sample-before"></p></div>
      <div><h3 id="sample-after-title">After</h3><p class="sample" id="sample-after">…</p></div>
    </div>
  </section>
  <p id="accuracy" role="status" hidden></p>
  <div class="buttons">
    <button id="cancel" hidden>Cancel training</button>
    <button id="use" hidden>Use in this workspace</button>
  </div>
  <p id="result" role="status"></p>`;

const $ = (id) => document.getElementById(id);
let points = [];
let valPoints = [];
let total = 0;

function draw() {
  const svg = $('chart');
  const W = 640,
    H = 300,
    L = 48,
    R = 12,
    T = 12,
    B = 30;
  const all = [...points, ...valPoints];
  const maxStep = Math.max(total, ...all.map((p) => p[0]), 1);
  let lo = Math.min(...all.map((p) => p[1]));
  let hi = Math.max(...all.map((p) => p[1]));
  if (!all.length) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-6) {
    hi += 0.5;
    lo -= 0.5;
  }
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const x = (s) => L + ((W - L - R) * s) / maxStep;
  const y = (v) => T + ((H - T - B) * (hi - v)) / (hi - lo);
  const path = (ps) => ps.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
  let grid = '';
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    grid += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/><text class="tick" x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`;
  }
  for (let i = 0; i <= 4; i++) {
    const s = Math.round((maxStep * i) / 4);
    grid += `<text class="tick" x="${x(s)}" y="${H - 10}" text-anchor="middle">${s}</text>`;
  }
  const dots = valPoints.map((p) => `<circle class="val" cx="${x(p[0])}" cy="${y(p[1])}" r="3"/>`).join('');
  svg.innerHTML = `${grid}<line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/><line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>
    <path class="train" d="${path(points)}"/><path class="val" d="${path(valPoints)}"/>${dots}
    <text class="tick" x="${W - R}" y="${H - B - 6}" text-anchor="end">step</text>`;
}

window.addEventListener('message', (event) => {
  /** @type {ToPage} */
  const m = event.data;
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'start':
      points = [];
      valPoints = [];
      total = 0;
      $('title').textContent = m.refine ? `Refining “${m.name}” from your feedback` : `Training “${m.name}”`;
      $('accuracy').hidden = true;
      $('subtitle').textContent = `On ${m.source} · ${m.model}`;
      $('result').textContent = '';
      $('samples').hidden = true;
      $('sample-after').textContent = '…';
      $('sample-after-title').textContent = 'After';
      $('cancel').hidden = false;
      $('use').hidden = true;
      document.body.dataset.state = 'running';
      draw();
      break;
    case 'progress': {
      const p = m.p;
      total = p.totalSteps;
      points.push([p.step, p.loss]);
      if (p.valLoss !== undefined && p.valLoss !== null) valPoints.push([p.step, p.valLoss]);
      const pct = total ? Math.round((100 * p.step) / total) : 0;
      $('fill').style.width = `${pct}%`;
      $('bar').setAttribute('aria-valuenow', String(pct));
      $('step').textContent = `${p.step} / ${p.totalSteps}`;
      $('epoch').textContent = String(p.epoch);
      $('loss').textContent = p.loss.toFixed(4);
      if (p.valLoss !== undefined && p.valLoss !== null) $('val').textContent = p.valLoss.toFixed(4);
      $('tps').textContent = Math.round(p.tokensPerSec).toLocaleString();
      $('eta').textContent = m.timeLeft ?? '–';
      draw();
      break;
    }
    case 'sample': {
      const s = m.sample;
      // The prompt is shown once, above; each box holds what the model wrote after it.
      $('samples').hidden = false;
      $('sample-prompt').textContent = `from “${s.prompt}”, same seed`;
      if (s.step === 0) $('sample-before').textContent = s.text;
      else {
        $('sample-after').textContent = s.text;
        $('sample-after-title').textContent = `After step ${s.step}`;
      }
      break;
    }
    case 'done': {
      const r = m.result;
      $('cancel').hidden = true;
      $('use').hidden = false;
      $('fill').style.width = '100%';
      $('eta').textContent = 'done';
      document.body.dataset.state = 'done';
      const s = r.summary;
      const acc = s.preferenceAccuracy;
      if (acc) {
        // DPO with held-out pairs: how often the adapter finds the preferred answer the more likely one.
        $('accuracy').hidden = false;
        $('accuracy').textContent =
          `Preference accuracy on ${s.valExamples} held-out pair${s.valExamples === 1 ? '' : 's'}: ${pct(acc.before)} before → ${pct(acc.after)} after`;
      }
      if ('previous' in r) {
        $('use').hidden = true;
        $('result').textContent =
          `Refined adapter “${r.adapter.name}” — ${s.trainExamples} pairs, ${s.steps} steps, ${(r.ms / 1000).toFixed(1)} s. The previous version is kept (Aligner: Adapter History).`;
        break;
      }
      $('result').textContent =
        `Saved adapter “${r.adapter.name}” (${(r.adapter.bytes / 1024).toFixed(1)} KB, ${r.adapter.tokens} token${r.adapter.tokens === 1 ? '' : 's'}) — ${s.examples} examples, ${s.epochs} epochs, train loss ${s.trainLoss !== null ? s.trainLoss.toFixed(3) : '–'}${s.valLoss !== null ? `, validation loss ${s.valLoss.toFixed(3)}` : ''}, ${(r.ms / 1000).toFixed(1)} s.`;
      break;
    }
    case 'used':
      $('use').hidden = true;
      $('result').textContent += ' Active in this workspace.';
      break;
    case 'cancelled':
      $('cancel').hidden = true;
      document.body.dataset.state = 'cancelled';
      $('result').textContent = 'Cancelled: no adapter was written.';
      break;
    case 'error':
      $('cancel').hidden = true;
      document.body.dataset.state = 'error';
      $('result').textContent = `Training failed: ${m.message}`;
      break;
  }
});

function pct(x) {
  return `${Math.round(100 * x)}%`;
}

$('cancel').addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
$('use').addEventListener('click', () => vscode.postMessage({ type: 'use' }));
draw();
vscode.postMessage({ type: 'ready' });
