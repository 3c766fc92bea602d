// Downloads a Hugging Face model repository's files into a folder, resumably:
// each file goes to `<name>.part`, continued with a Range request after an
// interruption, and is renamed into place only when complete. Written by hand
// because @huggingface/hub's downloads do not resume.

import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from './errors';

const REQUIRED = ['config.json', 'tokenizer.json'];
const OPTIONAL = ['tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

export interface DownloadOptions {
  /** Default: $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  revision?: string;
  /** Default: $HF_TOKEN, for gated models. */
  token?: string;
  signal?: AbortSignal;
  onProgress?: (file: string, done: number, total: number) => void;
}

/** Fetches config, tokenizer files and the safetensors weights (single or sharded) of `repoId` into `dest`. */
export async function downloadModel(repoId: string, dest: string, opts: DownloadOptions = {}): Promise<void> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new ModelLoadError(`"${repoId}" is not a Hugging Face model id (owner/name)`);
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const base = `${endpoint}/${repoId}/resolve/${encodeURIComponent(opts.revision ?? 'main')}/`;
  fs.mkdirSync(dest, { recursive: true });
  const get = (file: string, optional: boolean) => downloadFile(base + file, path.join(dest, file), optional, opts);
  for (const f of REQUIRED) await get(f, false);
  for (const f of OPTIONAL) await get(f, true);
  if (await get('model.safetensors', true)) return;
  if (!(await get('model.safetensors.index.json', true))) throw new ModelLoadError(`${repoId}: no model.safetensors or model.safetensors.index.json`);
  const index = JSON.parse(fs.readFileSync(path.join(dest, 'model.safetensors.index.json'), 'utf8')) as { weight_map?: Record<string, string> };
  for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
    if (path.basename(shard) !== shard) throw new ModelLoadError(`${repoId}: unexpected shard name "${shard}" in model.safetensors.index.json`);
    await get(shard, false);
  }
}

/** One file through `file.part`; false when an optional file does not exist on the server. */
async function downloadFile(url: string, file: string, optional: boolean, opts: DownloadOptions): Promise<boolean> {
  if (fs.existsSync(file)) return true;
  const part = `${file}.part`;
  const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  const headers: Record<string, string> = { 'User-Agent': 'aligner-vscode' };
  const token = opts.token ?? process.env.HF_TOKEN;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (have > 0) headers.Range = `bytes=${have}-`;
  const res = await fetch(url, { headers, signal: opts.signal, redirect: 'follow' });
  if (res.status === 404 && optional) return false;
  if (!res.ok || !res.body) throw new ModelLoadError(`${path.basename(file)}: download failed with HTTP ${res.status} (${url})`);
  // 206 continues the partial file; 200 means the server ignored the range, so start over.
  const resumed = res.status === 206 ? have : 0;
  const total = resumed + Number(res.headers.get('content-length') ?? 0);
  const out = fs.createWriteStream(part, { flags: resumed ? 'a' : 'w' });
  let done = resumed;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      done += chunk.length;
      opts.onProgress?.(path.basename(file), done, total);
    }
  } finally {
    await new Promise<void>((r) => out.end(() => r()));
  }
  if (total > resumed && done !== total) throw new ModelLoadError(`${path.basename(file)}: download ended at ${done} of ${total} bytes; run it again to resume`);
  fs.renameSync(part, file);
  return true;
}
