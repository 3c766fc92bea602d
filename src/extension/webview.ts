// Shared webview plumbing: a strict Content-Security-Policy with a fresh nonce and
// local resources only. Messages are declared and validated in webviewMessages.ts.

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as vscode from 'vscode';

export function nonce(): string {
  return crypto
    .randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

/** The folder with the bundled webview scripts and styles. */
export function webviewRoot(extensionUri: vscode.Uri): vscode.Uri {
  const dist = vscode.Uri.joinPath(extensionUri, 'dist', 'media');
  return fs.existsSync(dist.fsPath) ? dist : vscode.Uri.joinPath(extensionUri, 'media');
}

/** A panel of ours beside the editor, with the options every one of them needs. */
export function openPanel(ctx: vscode.ExtensionContext, viewType: string, title: string, preserveFocus: boolean): vscode.WebviewPanel {
  return vscode.window.createWebviewPanel(
    viewType,
    title,
    { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
    webviewOptions(ctx.extensionUri),
  );
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: true,
    enableCommandUris: false,
    localResourceRoots: [webviewRoot(extensionUri), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** Gives a panel Aligner's icon and its page. */
export function showPage(
  panel: vscode.WebviewPanel,
  extensionUri: vscode.Uri,
  page: { title: string; script: string; style: string; body: string },
): void {
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
  panel.webview.html = html(panel.webview, extensionUri, page);
}

export function html(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  opts: { title: string; script: string; style: string; body: string },
): string {
  const n = nonce();
  const root = webviewRoot(extensionUri);
  const script = webview.asWebviewUri(vscode.Uri.joinPath(root, opts.script));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(root, opts.style));
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${n}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${n}'`,
    "connect-src 'none'",
    "frame-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" nonce="${n}" href="${style}">
<title>${escapeHtml(opts.title)}</title>
</head>
<body>
${opts.body}
<script nonce="${n}" src="${script}"></script>
</body>
</html>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
