// `Aligner: Select Base Model` and `Aligner: Download Base Model` (Hugging Face id,
// progress, resumable: see src/model/download.ts). The download is the only thing
// Aligner ever fetches from the network.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { downloadModel } from '../model/download';
import { baseModelSetting } from './config';
import { resolveModelDir } from './worker';


export function modelsDir(ctx: vscode.ExtensionContext): string {
  return path.join(ctx.globalStorageUri.fsPath, 'models');
}

function isModelFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'config.json')) && (fs.existsSync(path.join(dir, 'model.safetensors')) || fs.existsSync(path.join(dir, 'model.safetensors.index.json')));
}

async function setBaseModel(dir: string): Promise<void> {
  await vscode.workspace.getConfiguration('aligner').update('baseModel', dir, vscode.ConfigurationTarget.Global);
}

export async function selectBaseModel(ctx: vscode.ExtensionContext): Promise<void> {
  type Item = vscode.QuickPickItem & { dir?: string; action?: 'browse' | 'download' };
  const items: Item[] = [];
  const current = baseModelSetting() ? resolveModelDir(baseModelSetting()) : '';
  const seen = new Set<string>();
  const add = (dir: string): void => {
    if (seen.has(dir) || !isModelFolder(dir)) return;
    seen.add(dir);
    let arch = '';
    try {
      arch = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).architectures?.[0] ?? '';
    } catch {
      /* shown without it */
    }
    items.push({ label: `$(database) ${path.basename(dir)}`, description: [dir === current ? 'active' : '', arch].filter(Boolean).join(' · '), detail: dir, dir });
  };
  if (current) add(current);
  try {
    for (const n of fs.readdirSync(modelsDir(ctx))) add(path.join(modelsDir(ctx), n));
  } catch {
    /* nothing downloaded yet */
  }
  items.push({ label: '$(folder-opened) Browse for a model folder…', action: 'browse' }, { label: '$(cloud-download) Download from Hugging Face…', action: 'download' });
  const pick = await vscode.window.showQuickPick(items, { title: 'Aligner: Select Base Model', placeHolder: 'A Hugging Face model folder (Llama, Mistral or Qwen2)' });
  if (!pick) return;
  if (pick.action === 'download') return void (await vscode.commands.executeCommand('aligner.downloadBaseModel'));
  let dir = pick.dir;
  if (pick.action === 'browse') {
    const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this model' });
    if (!uris?.[0]) return;
    dir = uris[0].fsPath;
    if (!isModelFolder(dir)) {
      void vscode.window.showErrorMessage(`Aligner: ${dir} has no config.json and model.safetensors.`);
      return;
    }
  }
  if (dir) await setBaseModel(dir);
}

export async function downloadBaseModel(ctx: vscode.ExtensionContext): Promise<void> {
  const id = await vscode.window.showInputBox({
    title: 'Aligner: Download Base Model',
    prompt: 'Hugging Face model id (safetensors weights; Llama, Mistral or Qwen2 family)',
    value: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? undefined : 'Expected "owner/name"'),
  });
  if (!id) return;
  const dest = path.join(modelsDir(ctx), id.trim().replace('/', '__'));
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Aligner: downloading ${id}`, cancellable: true },
      async (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        let last = 0;
        await downloadModel(id.trim(), dest, {
          signal: ac.signal,
          onProgress: (file, done, total) => {
            if (Date.now() - last < 250) return;
            last = Date.now();
            progress.report({ message: `${file} ${mb(done)}${total ? ` / ${mb(total)}` : ''}` });
          },
        });
      },
    );
  } catch (err) {
    const msg = (err as Error).name === 'AbortError' ? 'download cancelled (run it again to resume)' : (err as Error).message;
    void vscode.window.showErrorMessage(`Aligner: ${id}: ${msg}`);
    return;
  }
  await setBaseModel(dest);
  void vscode.window.showInformationMessage(`Aligner: ${id} downloaded and selected as the base model.`);
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}
