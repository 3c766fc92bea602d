// Downloads a Hugging Face model repository's files into a folder, resumably and verified.
// The revision is resolved to one commit first (X-Repo-Commit), so every file of a download
// comes from the same snapshot. Each file goes to `<name>.part` (with `<name>.part.json`
// recording which remote file it holds), is continued with Range + If-Range after an
// interruption, checked against the size and, for LFS files, the SHA-256 that the hub
// publishes (X-Linked-Etag), and only then renamed into place. Written by hand because
// @huggingface/hub's downloads do not resume.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { readRegularFile } from '../util/files';
import { excerpt, parseJson } from '../util/json';
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

/** What the hub says about one file at the pinned commit (from a HEAD request, redirects not followed). */
interface RemoteFile {
  name: string;
  /** The file's identity: the LFS SHA-256 or the git blob id, as the hub's ETag gives it. */
  etag: string;
  /** Lower-case hex SHA-256 for LFS files, else null. */
  sha256: string | null;
  size: number | null;
}

/** What `<name>.part.json` records, so a later run only resumes the same remote file. */
interface PartInfo {
  etag: string;
  /** The ETag of the GET response, sent as If-Range when resuming. */
  rangeEtag: string | null;
}

/** Fetches config, tokenizer files and the safetensors weights (single or sharded) of `repoId` into `dest`. */
export async function downloadModel(repoId: string, dest: string, opts: DownloadOptions = {}): Promise<void> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new ModelLoadError(`"${repoId}" is not a Hugging Face model id (owner/name)`);
  const hub = new Hub(repoId, opts);
  const commit = await hub.commitOf(opts.revision ?? 'main');
  fs.mkdirSync(dest, { recursive: true });
  const get = async (file: string, optional: boolean): Promise<boolean> => {
    const remote = await hub.describe(commit, file);
    if (!remote) {
      if (optional) return false;
      throw new ModelLoadError(`${repoId}: ${file} is not in the repository (revision ${commit})`);
    }
    await hub.download(commit, remote, dest);
    return true;
  };
  for (const f of REQUIRED) await get(f, false);
  for (const f of OPTIONAL) await get(f, true);
  if (await get('model.safetensors', true)) return;
  if (!(await get('model.safetensors.index.json', true)))
    throw new ModelLoadError(`${repoId}: no model.safetensors or model.safetensors.index.json`);
  for (const shard of shardsOf(path.join(dest, 'model.safetensors.index.json'), repoId)) await get(shard, false);
}

/** The shard file names of an index, each a plain file name inside the model folder. */
function shardsOf(indexFile: string, repoId: string): Set<string> {
  let index: { weight_map?: unknown };
  try {
    index = parseJson(readRegularFile(indexFile, 64 * 1024 * 1024).toString('utf8')) as { weight_map?: unknown };
  } catch (err) {
    throw new ModelLoadError(`${repoId}: model.safetensors.index.json: ${(err as Error).message}`);
  }
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null) throw new ModelLoadError(`${repoId}: model.safetensors.index.json has no "weight_map"`);
  const shards = new Set<string>();
  for (const shard of Object.values(map)) {
    if (!isPlainFileName(shard))
      throw new ModelLoadError(`${repoId}: unexpected shard name ${excerpt(shard)} in model.safetensors.index.json`);
    shards.add(shard);
  }
  return shards;
}

/** A name that stays inside the folder it is joined to: no separators, not "." or "..", no leading dot. */
function isPlainFileName(name: unknown): name is string {
  return typeof name === 'string' && /^[\w-][\w.-]{0,254}$/.test(name) && !name.includes('..');
}

class Hub {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(
    private readonly repoId: string,
    private readonly opts: DownloadOptions,
  ) {
    const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
    this.base = `${endpoint}/${repoId}/resolve/`;
    const token = opts.token ?? process.env.HF_TOKEN;
    // Identity encoding: sizes and byte ranges then refer to the file itself.
    this.headers = {
      'User-Agent': 'aligner-vscode',
      'Accept-Encoding': 'identity',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    };
  }

  /** The commit a branch, tag or commit id names, so that all files come from one snapshot. */
  async commitOf(revision: string): Promise<string> {
    const res = await this.head(revision, REQUIRED[0]);
    if (res.status === 404 || res.status === 401) {
      throw new ModelLoadError(`${REQUIRED[0]}: download failed with HTTP ${res.status} (${this.url(revision, REQUIRED[0])})`);
    }
    const commit = res.headers.get('x-repo-commit');
    if (commit && /^[0-9a-f]{40}$/.test(commit)) return commit;
    // A server that does not say (a plain mirror): the revision is used as given.
    return revision;
  }

  /** The file's identity, size and hash at `commit`; null when the repository has no such file. */
  async describe(commit: string, name: string): Promise<RemoteFile | null> {
    const res = await this.head(commit, name);
    if (res.status === 404) return null;
    if (res.status >= 400) throw new ModelLoadError(`${name}: download failed with HTTP ${res.status} (${this.url(commit, name)})`);
    const linked = unquote(res.headers.get('x-linked-etag'));
    const etag = linked ?? unquote(res.headers.get('etag')) ?? '';
    const size = Number(res.headers.get('x-linked-size') ?? (res.status < 300 ? res.headers.get('content-length') : NaN));
    return {
      name,
      etag,
      sha256: linked && /^[0-9a-f]{64}$/i.test(linked) ? linked.toLowerCase() : null,
      size: Number.isSafeInteger(size) ? size : null,
    };
  }

  /** Downloads one file through `<name>.part` and moves it into place once its size and hash check out. */
  async download(commit: string, remote: RemoteFile, dest: string): Promise<void> {
    const file = path.join(dest, remote.name);
    if (fs.existsSync(file)) return;
    const part = `${file}.part`;
    const partInfo = `${part}.json`;
    const resume = resumable(part, partInfo, remote);
    const headers: Record<string, string> = { ...this.headers };
    if (resume) {
      headers.Range = `bytes=${resume.bytes}-`;
      if (resume.rangeEtag) headers['If-Range'] = resume.rangeEtag;
    }
    const url = this.url(commit, remote.name);
    const res = await fetch(url, { headers, signal: this.opts.signal, redirect: 'follow' });
    if (res.status === 416 && resume) {
      // Nothing left to send: complete if the part already has every byte, else start over.
      await res.body?.cancel();
      if (remote.size !== null && resume.bytes === remote.size) return this.finish(remote, part, partInfo, file);
      removePart(part, partInfo);
      return this.download(commit, remote, dest);
    }
    if (!res.ok || !res.body) throw new ModelLoadError(`${remote.name}: download failed with HTTP ${res.status} (${url})`);
    const type = res.headers.get('content-type') ?? '';
    if (/^text\/html/i.test(type) && !remote.name.endsWith('.html')) {
      await res.body.cancel();
      throw new ModelLoadError(`${remote.name}: the server sent a web page (${excerpt(type)}) instead of the file (${url})`);
    }
    // 206 continues the part; anything else (200: the range was ignored, or If-Range saw another
    // file) starts over, as does a body the server encoded anyway (its ranges are not file bytes).
    const encoded = !/^(identity)?$/i.test(res.headers.get('content-encoding') ?? '');
    const from = res.status === 206 && resume && !encoded ? resume.bytes : 0;
    const length = Number(res.headers.get('content-length') ?? NaN);
    const size = remote.size ?? (encoded || !Number.isSafeInteger(length) ? null : from + length);
    fs.writeFileSync(partInfo, JSON.stringify({ etag: remote.etag, rangeEtag: res.headers.get('etag') } satisfies PartInfo));
    await this.receive(res, { ...remote, size }, part, from);
    return this.finish({ ...remote, size }, part, partInfo, file);
  }

  /** Appends the body to `part` (truncated to `from` bytes first), reporting progress. */
  private async receive(res: Response, remote: RemoteFile, part: string, from: number): Promise<void> {
    const out = fs.createWriteStream(part, { flags: from > 0 ? 'r+' : 'w', start: from });
    const total = remote.size ?? from + Number(res.headers.get('content-length') ?? 0);
    let done = from;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (remote.size !== null && done + chunk.length > remote.size) {
          throw new ModelLoadError(`${remote.name}: the server sent more than the ${remote.size} bytes the file has`);
        }
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        done += chunk.length;
        this.opts.onProgress?.(remote.name, done, total);
      }
    } finally {
      await new Promise<void>((r) => out.end(() => r()));
    }
  }

  /** Size and SHA-256 checks, then the rename into place; a part that fails them is removed. */
  private async finish(remote: RemoteFile, part: string, partInfo: string, file: string): Promise<void> {
    const size = fs.statSync(part).size;
    if (remote.size !== null && size !== remote.size) {
      if (size > remote.size) removePart(part, partInfo);
      throw new ModelLoadError(`${remote.name}: download ended at ${size} of ${remote.size} bytes; run it again to resume`);
    }
    if (remote.sha256) {
      const actual = await sha256Of(part);
      if (actual !== remote.sha256) {
        removePart(part, partInfo);
        throw new ModelLoadError(
          `${remote.name}: SHA-256 ${actual} does not match the ${remote.sha256} the hub publishes; the partial file was removed`,
        );
      }
    }
    fs.renameSync(part, file);
    fs.rmSync(partInfo, { force: true });
  }

  private url(revision: string, name: string): string {
    return this.base + encodeURIComponent(revision) + '/' + encodeURIComponent(name);
  }

  private async head(revision: string, name: string): Promise<Response> {
    const res = await fetch(this.url(revision, name), {
      method: 'HEAD',
      headers: this.headers,
      signal: this.opts.signal,
      redirect: 'manual',
    });
    await res.body?.cancel();
    return res;
  }
}

/** The part to continue, if it holds a prefix of this very remote file; otherwise it is removed. */
function resumable(part: string, partInfo: string, remote: RemoteFile): (PartInfo & { bytes: number }) | null {
  if (!fs.existsSync(part)) return null;
  const stored = readPartInfo(partInfo);
  const bytes = fs.statSync(part).size;
  if (!stored || !remote.etag || stored.etag !== remote.etag || bytes === 0 || (remote.size !== null && bytes > remote.size)) {
    removePart(part, partInfo);
    return null;
  }
  return { ...stored, bytes };
}

function readPartInfo(file: string): PartInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as PartInfo;
    return typeof info?.etag === 'string' ? info : null;
  } catch {
    return null;
  }
}

function removePart(part: string, partInfo: string): void {
  fs.rmSync(part, { force: true });
  fs.rmSync(partInfo, { force: true });
}

function unquote(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
