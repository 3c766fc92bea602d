// `Aligner: Select Base Model` and `Aligner: Download Base Model` (Hugging Face id,
// progress, resumable: see src/model/download.ts). The download is the only thing
// Aligner ever fetches from the network.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { downloadModel } from '../model/download';
import { isGgufFile } from '../model/gguf';
import { discoverModels, type ModelEntry } from '../model/sources';
import { baseModelSetting } from './config';
import { resolveModelDir } from './worker';

export function modelsDir(ctx: vscode.ExtensionContext): string {
  return path.join(ctx.globalStorageUri.fsPath, 'models');
}

async function setBaseModel(value: string): Promise<void> {
  await vscode.workspace.getConfiguration('aligner').update('baseModel', value, vscode.ConfigurationTarget.Global);
}

/** What the baseModel setting stores for an entry: Ollama names (blobs change with each pull), else the path. */
function settingFor(m: ModelEntry): string {
  return m.source === 'ollama' ? m.id : m.location;
}

/**
 * Every model found in the Ollama store, LM Studio's folders, the Hugging Face cache and the
 * download folder (src/model/sources.ts), unsupported ones after a separator with the reason;
 * picking one of those only shows the reason. Then Browse… and Download….
 */
export async function selectBaseModel(ctx: vscode.ExtensionContext): Promise<void> {
  type Item = vscode.QuickPickItem & { value?: string; reason?: string; action?: 'browse' | 'download' };
  const current = baseModelSetting() ? resolveModelDir(baseModelSetting()) : '';
  const found = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'Aligner: looking for local models' },
    () => discoverModels({ downloads: modelsDir(ctx) }),
  );
  const item = (m: ModelEntry): Item => {
    const facts = [
      m.architecture,
      m.parameters == null ? '' : `${formatCount(m.parameters)} parameters`,
      m.quantization,
      mb(m.sizeBytes),
      SOURCE_NAMES[m.source],
    ];
    if (settingFor(m) === current) facts.unshift('active');
    return m.unsupported
      ? {
          label: `$(circle-slash) ${m.id}`,
          description: facts.filter(Boolean).join(' · '),
          detail: `Not supported: ${m.unsupported}`,
          reason: m.unsupported,
        }
      : {
          label: `$(database) ${m.source === 'ollama' || m.source === 'hf-cache' ? m.id : path.basename(m.location)}`,
          description: facts.filter(Boolean).join(' · '),
          detail: m.location,
          value: settingFor(m),
        };
  };
  const usable = found.filter((m) => !m.unsupported).map(item);
  const unusable = found.filter((m) => m.unsupported).map(item);
  const items: Item[] = [
    ...usable,
    ...(unusable.length ? [{ label: 'Found but not supported', kind: vscode.QuickPickItemKind.Separator }, ...unusable] : []),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Browse for a model folder or .gguf file…', action: 'browse' },
    { label: '$(cloud-download) Download from Hugging Face…', action: 'download' },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Aligner: Select Base Model',
    placeHolder: found.length
      ? 'Local models: Ollama, LM Studio, the Hugging Face cache, downloads'
      : 'No local models found: browse for one or download one',
    matchOnDescription: true,
  });
  if (!pick) return;
  if (pick.reason) {
    void vscode.window.showWarningMessage(`Aligner: ${pick.label.replace('$(circle-slash) ', '')} cannot be used: ${pick.reason}`);
    return;
  }
  if (pick.action === 'download') return void (await vscode.commands.executeCommand('aligner.downloadBaseModel'));
  if (pick.action === 'browse') {
    const uris = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: true,
      filters: { 'GGUF model': ['gguf'] },
      openLabel: 'Use this model',
    });
    if (!uris?.[0]) return;
    const chosen = uris[0].fsPath;
    if (!fs.statSync(chosen).isDirectory() && !isGgufFile(chosen)) {
      void vscode.window.showErrorMessage(`Aligner: ${chosen} is not a GGUF file.`);
      return;
    }
    if (fs.statSync(chosen).isDirectory() && !fs.existsSync(path.join(chosen, 'config.json'))) {
      void vscode.window.showErrorMessage(`Aligner: ${chosen} has no config.json; pick a Hugging Face model folder or a .gguf file.`);
      return;
    }
    return setBaseModel(chosen);
  }
  if (pick.value) await setBaseModel(pick.value);
}

const SOURCE_NAMES: Record<ModelEntry['source'], string> = {
  ollama: 'Ollama',
  lmstudio: 'LM Studio',
  'hf-cache': 'Hugging Face cache',
  downloads: 'downloaded',
};

function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(0)}M` : `${(n / 1e3).toFixed(0)}K`;
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
