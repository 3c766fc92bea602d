// What VS Code gives a webview page: a channel to its host, typed per page by the
// messages it may send (src/extension/webviewMessages.ts).

interface WebviewApi<FromWebview> {
  postMessage(message: FromWebview): void;
}

declare function acquireVsCodeApi<FromWebview>(): WebviewApi<FromWebview>;
