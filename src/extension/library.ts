// The adapter library (the extension's global storage plus `.vscode/aligner/*.safetensors`
// in each workspace folder), the per-workspace active adapter (`aligner.adapter`), the
// switcher and the status-bar item.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { freeAdapterName } from '../adapter/names';
import { AdapterImportRequest, AdapterListRequest, type AdapterInfo } from '../protocol';
import { expandHome } from '../util/paths';
import { adapterSetting } from './config';
import { needsConfirmation } from './trust';
import type { WorkerClient } from './worker';

export const WORKSPACE_ADAPTER_DIR = path.join('.vscode', 'aligner');
/** Adapter paths outside the workspace that the user agreed to load for this workspace. */
const APPROVED_KEY = 'aligner.approvedAdapterPaths';

export class AdapterLibrary {
  private readonly _onDidChange = new vscode.EventEmitter<void>();
  readonly onDidChange = this._onDidChange.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly worker: WorkerClient,
  ) {}

  /** Where trained and imported adapters go. */
  get globalDir(): string {
    return path.join(this.context.globalStorageUri.fsPath, 'adapters');
  }

  workspaceDirs(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((f) => path.join(f.uri.fsPath, WORKSPACE_ADAPTER_DIR));
  }

  dirs(): string[] {
    return [...this.workspaceDirs(), this.globalDir];
  }

  changed(): void {
    this._onDidChange.fire();
  }

  async list(): Promise<AdapterInfo[]> {
    return this.worker.request(AdapterListRequest, { dirs: this.dirs() });
  }

  /** The adapter file the setting names, or null for the base model. Throws when it names nothing. */
  resolve(value: string = adapterSetting()): string | null {
    if (!value) return null;
    const looksLikePath = /[\\/]/.test(value) || value.toLowerCase().endsWith('.safetensors');
    if (looksLikePath) {
      let p = expandHome(value);
      if (!path.isAbsolute(p)) {
        const roots = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
        p = roots.map((r) => path.join(r, p)).find((c) => fs.existsSync(c)) ?? path.join(roots[0] ?? '', p);
      }
      if (!fs.existsSync(p)) throw new Error(`The adapter file "${value}" (aligner.adapter) does not exist.`);
      return path.resolve(p);
    }
    for (const dir of this.dirs()) {
      const f = path.join(dir, `${value}.safetensors`);
      if (fs.existsSync(f)) return f;
    }
    throw new Error(`No adapter named "${value}" in the adapter library (aligner.adapter).`);
  }

  /**
   * resolve(), and for an adapter path that the workspace's settings point outside the
   * workspace and the library, the user's confirmation (asked once per path and workspace).
   */
  async resolveConfirmed(value: string = adapterSetting()): Promise<string | null> {
    const file = this.resolve(value);
    if (!file) return null;
    const inspected = vscode.workspace.getConfiguration('aligner').inspect<string>('adapter');
    const fromWorkspace = [inspected?.workspaceValue, inspected?.workspaceFolderValue].some(
      (v) => typeof v === 'string' && v.trim() === value,
    );
    const real = (p: string): string => (fs.existsSync(p) ? fs.realpathSync(p) : p);
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => real(f.uri.fsPath));
    if (!needsConfirmation(real(file), fromWorkspace, folders, this.dirs().map(real))) return file;
    const approved = this.context.workspaceState.get<string[]>(APPROVED_KEY, []);
    if (approved.includes(file)) return file;
    const load = 'Load Adapter';
    const answer = await vscode.window.showWarningMessage(
      `This workspace's settings (aligner.adapter) name the adapter file ${file}, which is outside the workspace and the adapter library. Load it?`,
      { modal: true },
      load,
    );
    if (answer !== load) throw new Error(`The adapter ${file} from this workspace's settings was not loaded.`);
    await this.context.workspaceState.update(APPROVED_KEY, [...approved, file]);
    return file;
  }

  /** A short label for the status bar and the chat panel. */
  label(value: string = adapterSetting()): string {
    if (!value) return 'base model';
    return path.basename(value).replace(/\.safetensors$/i, '');
  }

  /** The setting value that names `info`: a workspace-relative path for `.vscode/aligner`, else the name. */
  settingFor(file: string): string {
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const rel = path.relative(folder.uri.fsPath, file);
      if (!rel.startsWith('..') && !path.isAbsolute(rel)) return rel.split(path.sep).join('/');
    }
    if (path.dirname(file) === this.globalDir) return path.basename(file).replace(/\.safetensors$/i, '');
    return file;
  }

  async setActive(value: string): Promise<void> {
    const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await vscode.workspace.getConfiguration('aligner').update('adapter', value || undefined, target);
  }

  /** `Aligner: Switch Adapter`: the library, "None (base model)" and "Browse…". */
  async pick(): Promise<void> {
    type Item = vscode.QuickPickItem & { value?: string; browse?: boolean };
    const qp = vscode.window.createQuickPick<Item>();
    qp.title = 'Aligner: Switch Adapter (this workspace)';
    qp.placeholder = 'Pick the adapter for this workspace';
    qp.busy = true;
    qp.show();
    const current = adapterSetting();
    const base: Item = { label: '$(circle-slash) None (base model)', description: current ? '' : 'active', value: '' };
    const browse: Item = { label: '$(folder-opened) Browse…', description: 'import an adapter file', browse: true };
    qp.items = [base, browse];
    try {
      await this.worker.ensureModel();
      const adapters = await this.list();
      const items: Item[] = [base];
      const sections: [string, AdapterInfo[]][] = [
        ['This workspace (.vscode/aligner)', adapters.filter((a) => this.workspaceDirs().some((d) => path.dirname(a.path) === d))],
        ['Adapter library', adapters.filter((a) => path.dirname(a.path) === this.globalDir)],
      ];
      let activeFile: string | null = null;
      try {
        activeFile = this.resolve(current);
      } catch {
        activeFile = null;
      }
      for (const [title, list] of sections) {
        if (!list.length) continue;
        items.push({ label: title, kind: vscode.QuickPickItemKind.Separator });
        for (const a of list) {
          items.push({
            label: `${a.compatible ? '$(sparkle)' : '$(warning)'} ${a.name}`,
            description: [
              a.path === activeFile ? 'active' : '',
              `${a.tokens} token${a.tokens === 1 ? '' : 's'}`,
              a.method,
              `${(a.bytes / 1024).toFixed(1)} KB`,
            ]
              .filter(Boolean)
              .join(' · '),
            detail: a.compatible ? summaryOf(a) : a.problem,
            value: this.settingFor(a.path),
          });
        }
      }
      items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, browse);
      qp.items = items;
    } catch (err) {
      qp.items = [base, browse];
      void vscode.window.showWarningMessage(`Aligner: could not list adapters: ${(err as Error).message}`);
    } finally {
      qp.busy = false;
    }
    const chosen = await new Promise<Item | undefined>((resolve) => {
      qp.onDidAccept(() => resolve(qp.selectedItems[0]));
      qp.onDidHide(() => resolve(undefined));
    });
    qp.dispose();
    if (!chosen) return;
    if (chosen.browse) {
      const uri = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Use adapter',
        filters: { 'Aligner adapter': ['safetensors'] },
      });
      if (!uri?.[0]) return;
      try {
        await this.worker.ensureModel();
        const target = await this.importName(uri[0].fsPath);
        if (!target) return;
        const info = await this.worker.request(AdapterImportRequest, { path: uri[0].fsPath, toDir: this.globalDir, ...target });
        await this.setActive(this.settingFor(info.path));
        this.changed();
        void vscode.window.showInformationMessage(`Aligner: using adapter "${info.name}" in this workspace.`);
      } catch (err) {
        void vscode.window.showErrorMessage(`Aligner: ${(err as Error).message}`);
      }
      return;
    }
    if (chosen.value === undefined) return;
    if (chosen.detail && chosen.label.includes('$(warning)')) {
      void vscode.window.showErrorMessage(`Aligner: ${chosen.detail}`);
      return;
    }
    await this.setActive(chosen.value);
  }

  /** The name an imported file gets: its own, or, when the library has one by that name, what the user chooses. */
  private async importName(file: string): Promise<{ name: string; overwrite: boolean } | undefined> {
    const name = path.basename(file).replace(/\.safetensors$/i, '');
    const free = freeAdapterName(this.globalDir, name);
    if (free === name || path.resolve(this.globalDir, `${name}.safetensors`) === path.resolve(file)) return { name, overwrite: false };
    const replace = `Replace "${name}"`;
    const keep = `Import as "${free}"`;
    const answer = await vscode.window.showWarningMessage(
      `Aligner: the adapter library already has an adapter named "${name}".`,
      { modal: true },
      keep,
      replace,
    );
    if (answer === replace) return { name, overwrite: true };
    if (answer === keep) return { name: free, overwrite: false };
    return undefined;
  }

  dispose(): void {
    this._onDidChange.dispose();
  }
}

export function summaryOf(a: AdapterInfo): string {
  const m = a.metadata;
  const parts: string[] = [];
  if (m.examples) parts.push(`${m.examples} examples`);
  if (m.epochs) parts.push(`${m.epochs} epochs`);
  if (m.train_loss) parts.push(`loss ${Number(m.train_loss).toFixed(3)}`);
  if (m.val_loss) parts.push(`val ${Number(m.val_loss).toFixed(3)}`);
  if (m.date) parts.push(m.date.slice(0, 10));
  return parts.join(' · ') || a.baseModel;
}

export class AdapterStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor(
    private readonly library: AdapterLibrary,
    private readonly worker: WorkerClient,
  ) {
    this.item = vscode.window.createStatusBarItem('aligner.adapter', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Aligner Adapter';
    this.item.command = 'aligner.switchAdapter';
    this.update();
    this.item.show();
  }

  update(): void {
    const value = adapterSetting();
    const device = this.worker.loadedModel?.device;
    let missing = false;
    try {
      this.library.resolve(value);
    } catch {
      missing = true;
    }
    const label = this.library.label(value);
    this.item.text = `$(sparkle) ${label}${device ? ` · ${device}` : ''}`;
    this.item.tooltip = new vscode.MarkdownString(
      `**Aligner adapter:** ${value ? label : 'none (base model)'}${missing ? ' — *not found*' : ''}\n\n` +
        `${this.worker.loadedModel ? `Base model: ${this.worker.loadedModel.name} on ${device}` : 'Base model not loaded yet'}\n\nClick to switch the adapter for this workspace.`,
    );
    this.item.backgroundColor = missing ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.accessibilityInformation = { label: `Aligner adapter ${label}. Click to switch.` };
  }

  dispose(): void {
    this.item.dispose();
  }
}
