// The chat page's own script (media/webview/chat.js, bundled as the extension bundles it) in
// headless chromium: model output rendered as markdown cannot give elements an id or a name that
// clobbers the page's own elements (issue 6, defect 12). Skipped where chromium is not installed.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { tempDir } from '../model/paths';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

test(
  'defect 12: model output cannot set id or name attributes on the chat page',
  { skip: !CHROMIUM && 'chromium is not installed' },
  async () => {
    const bundle = path.join(tempDir(), 'chat.js');
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'media/webview/chat.js')],
      outfile: bundle,
      bundle: true,
      format: 'iife',
      platform: 'browser',
      logLevel: 'warning',
    });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      await page.setContent('<div id="app"></div>');
      await page.addScriptTag({
        content: 'window.sent = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.sent.push(m) });',
      });
      await page.addScriptTag({ content: fs.readFileSync(bundle, 'utf8') });
      const answer =
        'Hi <p id="empty">x</p> <a id="send" name="input" href="#y">y</a> <img name="body"> <form name="cookie"></form>\n\n[z](#z)';
      // Runs in the page (plain JS: this project compiles without the DOM typings).
      const result = (await page.evaluate(`(() => {
      const post = (data) => window.dispatchEvent(new MessageEvent('message', { data }));
      post({ type: 'turn', turn: { id: 't1', prompt: 'hello', columns: ['adapter'] } });
      post({ type: 'done', turnId: 't1', column: 'adapter', text: ${JSON.stringify(answer)}, finishReason: 'eos' });
      post({ type: 'turn', turn: { id: 't2', prompt: 'again', columns: ['adapter'] } });
      const transcript = document.getElementById('transcript');
      return {
        rendered: transcript.textContent,
        named: [...transcript.querySelectorAll('[id], [name]')].map((e) => e.outerHTML),
        empties: document.querySelectorAll('#empty').length,
        send: document.getElementById('send')?.tagName,
        emptyHidden: document.querySelector('#app > .empty').hidden,
      };
    })()`)) as { rendered: string; named: string[]; empties: number; send: string; emptyHidden: boolean };
      assert.match(result.rendered, /Hi/);
      assert.deepEqual(result.named, [], 'elements from model output carry an id or a name');
      assert.equal(result.empties, 1);
      assert.equal(result.send, 'BUTTON');
      assert.equal(result.emptyHidden, true, 'the empty-chat notice is still shown: a model element took its id');
    } finally {
      await browser.close();
    }
  },
);
