// A second extension for the e2e tests, installed beside Aligner: it reaches Aligner's
// models only through VS Code's Language Model API, as any other extension would. Its
// command reads lm-request.json in the workspace, asks the model it names, and writes what
// came back (the models listed, the token count, the streamed fragments) to lm-result.json.
// A second command writes the aligner.* settings as the extension host sees them to
// lm-settings.json, so a test that edits settings.json can wait until they apply.
// Packed into a .vsix by e2e.test.ts.
//
// No cancellation here: in VS Code 1.106 a consumer's token reaches the provider only through
// the RPC call that starts the request ($tryStartChatRequest → $startChatRequest), which
// returns as soon as the provider starts, so a later cancel is dropped (and one made before
// the call is never sent). The Chat view's @aligner requests are cancelled (chat participant).

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

interface LmRequest {
  vendor: string;
  model: string;
  prompt: string;
  modelOptions: Record<string, unknown>;
}

async function ask(dir: string): Promise<Record<string, unknown>> {
  const req = JSON.parse(fs.readFileSync(path.join(dir, 'lm-request.json'), 'utf8')) as LmRequest;
  const models = await vscode.lm.selectChatModels({ vendor: req.vendor });
  const out: Record<string, unknown> = {
    models: models.map((m) => ({ id: m.id, name: m.name, family: m.family, maxInputTokens: m.maxInputTokens })),
  };
  const model = models.find((m) => m.id === req.model);
  if (!model) throw new Error(`no model ${req.model} among ${models.map((m) => m.id).join(', ')}`);
  out.tokens = await model.countTokens(req.prompt);
  const messages = [vscode.LanguageModelChatMessage.User(req.prompt)];
  const response = await model.sendRequest(messages, { modelOptions: req.modelOptions });
  const fragments: string[] = [];
  for await (const f of response.text) fragments.push(f);
  out.fragments = fragments;
  return out;
}

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('alignerE2e.ask', async () => {
      const dir = vscode.workspace.workspaceFolders![0].uri.fsPath;
      let out: Record<string, unknown>;
      try {
        out = await ask(dir);
      } catch (err) {
        out = { error: String((err as Error).stack ?? err) };
      }
      fs.writeFileSync(path.join(dir, 'lm-result.json'), JSON.stringify(out, null, 2));
    }),
    vscode.commands.registerCommand('alignerE2e.settings', () => {
      const dir = vscode.workspace.workspaceFolders![0].uri.fsPath;
      const generation = vscode.workspace.getConfiguration('aligner.generation');
      const out = { temperature: generation.get('temperature'), maxNewTokens: generation.get('maxNewTokens') };
      fs.writeFileSync(path.join(dir, 'lm-settings.json'), JSON.stringify(out));
    }),
  );
}
