// Where people already keep local models, and what each one is: the Ollama store
// (manifests pointing at GGUF blobs), LM Studio's folders, the Hugging Face hub
// cache, and the extension's download folder. Also the model names the CLI and the
// extension accept: a folder or file path, `ollama:NAME[:TAG]`, or an HF cache id.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GGMLFileQuantizationType, GGMLQuantizationType } from '@huggingface/gguf';
import { parseConfig } from './config';
import { ModelLoadError } from './errors';
import { GGML_TYPE_CODES } from './ggml';
import { ggufArchitecture, Metadata, readGgufHeader } from './gguf';
import { ggufTokenizerJson } from './gguf_tokenizer';
import { readSafetensorsFolder } from './safetensors';
import { readJson } from './tokenizer';

export type ModelSourceKind = 'ollama' | 'lmstudio' | 'hf-cache' | 'downloads';

export interface ModelEntry {
  /** What `--model` takes: `ollama:NAME:TAG`, an HF cache id `org/name`, or the path itself. */
  id: string;
  source: ModelSourceKind;
  /** The folder or GGUF file that is loaded. */
  location: string;
  /** general.architecture of a GGUF, architectures[0] of a config.json; '?' when unreadable. */
  architecture: string;
  parameters: number | null;
  /** e.g. Q4_K_M, Q8_0, F16, BF16. */
  quantization: string;
  /** Bytes on disk of the weights (and config files). */
  sizeBytes: number;
  /** Why Aligner cannot use it; null when it can. */
  unsupported: string | null;
}

/** Where to look; every field defaults to the user's real locations. */
export interface SourceOptions {
  home?: string;
  env?: NodeJS.ProcessEnv;
  /** The extension's download folder (one Hugging Face folder per model). */
  downloads?: string;
}

const OLLAMA_REGISTRY = 'registry.ollama.ai';
const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';

function roots(opts: SourceOptions) {
  const env = opts.env ?? process.env;
  const home = opts.home ?? os.homedir();
  const hfHome = env.HF_HOME || path.join(home, '.cache', 'huggingface');
  return {
    ollama: env.OLLAMA_MODELS || path.join(home, '.ollama', 'models'),
    lmstudio: [path.join(home, '.lmstudio', 'models'), path.join(home, '.cache', 'lm-studio', 'models')],
    hfHub: env.HF_HUB_CACHE || path.join(hfHome, 'hub'),
  };
}

/** Every model found in the known places, supported ones first, each group by id. */
export async function discoverModels(opts: SourceOptions = {}): Promise<ModelEntry[]> {
  const r = roots(opts);
  const found: ModelEntry[] = [];
  for (const m of ollamaManifests(r.ollama)) {
    found.push(m.blob ? await describe(m.id, 'ollama', m.blob) : missingBlob(m));
  }
  for (const root of r.lmstudio) {
    for (const file of ggufFilesUnder(root, 3)) found.push(await describe(file, 'lmstudio', file));
  }
  for (const snap of hfCacheSnapshots(r.hfHub)) {
    if (isHfFolder(snap.dir)) found.push(await describe(snap.id, 'hf-cache', snap.dir));
    for (const file of ggufFilesUnder(snap.dir, 2)) found.push(await describe(file, 'hf-cache', file));
  }
  if (opts.downloads) {
    for (const name of listDir(opts.downloads)) {
      const dir = path.join(opts.downloads, name);
      if (isHfFolder(dir)) found.push(await describe(dir, 'downloads', dir));
    }
  }
  return found.sort((a, b) => Number(a.unsupported !== null) - Number(b.unsupported !== null) || a.id.localeCompare(b.id));
}

/**
 * The folder or file a model name refers to: an existing path as is, `ollama:NAME[:TAG]` through
 * the Ollama manifests, `org/name` through the Hugging Face cache. Throws one line naming what is
 * missing and where it looked.
 */
export function resolveModel(spec: string, opts: SourceOptions = {}): { location: string; name: string } {
  const r = roots(opts);
  if (spec.startsWith('ollama:')) {
    const { dir, name } = ollamaName(spec.slice('ollama:'.length));
    const manifest = path.join(r.ollama, 'manifests', dir);
    if (!fs.existsSync(manifest)) {
      const installed = ollamaManifests(r.ollama).map((m) => m.id);
      throw new ModelLoadError(
        `${spec}: not in the Ollama store (${r.ollama}); ${installed.length ? `installed: ${installed.join(', ')}` : 'it holds no models'}`,
      );
    }
    const m = readOllamaManifest(r.ollama, manifest, `ollama:${name}`);
    if (!m.blob)
      throw new ModelLoadError(
        `${spec}: the manifest ${manifest} points at ${m.digest ?? 'no model layer'}, which is missing from ${path.join(r.ollama, 'blobs')}`,
      );
    return { location: m.blob, name: `ollama:${name}` };
  }
  if (fs.existsSync(spec)) return { location: spec, name: path.basename(path.resolve(spec), '.gguf') };
  if (/^[\w.-]+\/[\w.-]+$/.test(spec)) {
    const snap = hfCacheSnapshots(r.hfHub).find((s) => s.id === spec);
    if (!snap) throw new ModelLoadError(`${spec}: no such folder or file, and not in the Hugging Face cache (${r.hfHub})`);
    return { location: snap.dir, name: spec };
  }
  throw new ModelLoadError(
    `${spec}: no such model folder or file (also accepted: ollama:NAME[:TAG], an org/name in the Hugging Face cache)`,
  );
}

// ---- Ollama ----

interface OllamaManifest {
  id: string;
  manifest: string;
  /** The model blob's path, or null when the manifest has no model layer or the blob is missing. */
  blob: string | null;
  digest: string | null;
}

/** `qwen2.5:0.5b` → manifests/registry.ollama.ai/library/qwen2.5/0.5b; `hf.co/org/repo:Q4_K_M` → manifests/hf.co/org/repo/Q4_K_M. */
function ollamaName(spec: string): { dir: string; name: string } {
  const colon = spec.lastIndexOf(':');
  const hasTag = colon > spec.lastIndexOf('/');
  const base = hasTag ? spec.slice(0, colon) : spec;
  const tag = hasTag ? spec.slice(colon + 1) : 'latest';
  const parts = base.split('/');
  const full = parts.length === 1 ? [OLLAMA_REGISTRY, 'library', ...parts] : parts.length === 2 ? [OLLAMA_REGISTRY, ...parts] : parts;
  if (!base || !tag || full.some((p) => !p || p === '.' || p === '..'))
    throw new ModelLoadError(`ollama:${spec}: not an Ollama model name (NAME[:TAG])`);
  return { dir: path.join(...full, tag), name: `${base}:${tag}` };
}

/** The manifests of the store: host/namespace/name/tag under manifests/. */
function ollamaManifests(root: string): OllamaManifest[] {
  const out: OllamaManifest[] = [];
  const manifests = path.join(root, 'manifests');
  for (const host of listDir(manifests)) {
    for (const ns of listDir(path.join(manifests, host))) {
      for (const name of listDir(path.join(manifests, host, ns))) {
        for (const tag of listDir(path.join(manifests, host, ns, name))) {
          const file = path.join(manifests, host, ns, name, tag);
          if (!fs.statSync(file).isFile()) continue;
          // Ollama's own short names: library models without registry and namespace.
          const base = host === OLLAMA_REGISTRY ? (ns === 'library' ? name : `${ns}/${name}`) : `${host}/${ns}/${name}`;
          try {
            out.push(readOllamaManifest(root, file, `ollama:${base}:${tag}`));
          } catch (err) {
            out.push({
              id: `ollama:${base}:${tag}`,
              manifest: file,
              blob: null,
              digest: `an unreadable manifest (${(err as Error).message})`,
            });
          }
        }
      }
    }
  }
  return out;
}

function readOllamaManifest(root: string, file: string, id: string): OllamaManifest {
  const json = readJson(file) as { layers?: { mediaType?: unknown; digest?: unknown }[] };
  const layer = Array.isArray(json.layers) ? json.layers.find((l) => l && l.mediaType === OLLAMA_MODEL_LAYER) : undefined;
  const digest = layer && typeof layer.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(layer.digest) ? layer.digest : null;
  if (!digest) return { id, manifest: file, blob: null, digest: null };
  const blob = path.join(root, 'blobs', digest.replace(':', '-'));
  return { id, manifest: file, blob: fs.existsSync(blob) ? blob : null, digest };
}

function missingBlob(m: OllamaManifest): ModelEntry {
  const reason = m.digest ? `the manifest points at blob ${m.digest}, which is missing` : 'the manifest has no model layer';
  return {
    id: m.id,
    source: 'ollama',
    location: m.manifest,
    architecture: '?',
    parameters: null,
    quantization: '?',
    sizeBytes: 0,
    unsupported: reason,
  };
}

// ---- Hugging Face hub cache and folders ----

/** models--org--name/snapshots/<rev>: the revision refs/main names, else the newest snapshot. */
function hfCacheSnapshots(hub: string): { id: string; dir: string }[] {
  const out: { id: string; dir: string }[] = [];
  for (const repo of listDir(hub)) {
    const m = /^models--([^-].*?)--(.+)$/.exec(repo);
    if (!m) continue;
    const snapshots = path.join(hub, repo, 'snapshots');
    let rev = '';
    try {
      rev = fs.readFileSync(path.join(hub, repo, 'refs', 'main'), 'utf8').trim();
    } catch {
      // No refs/main (e.g. a pinned revision only): use the newest snapshot.
    }
    const revs = listDir(snapshots);
    const chosen = revs.includes(rev) ? rev : revs.sort((a, b) => mtime(path.join(snapshots, b)) - mtime(path.join(snapshots, a)))[0];
    if (chosen) out.push({ id: `${m[1]}/${m[2]}`, dir: path.join(snapshots, chosen) });
  }
  return out;
}

function isHfFolder(dir: string): boolean {
  return (
    fs.existsSync(path.join(dir, 'config.json')) &&
    (fs.existsSync(path.join(dir, 'model.safetensors')) || fs.existsSync(path.join(dir, 'model.safetensors.index.json')))
  );
}

// ---- describing one model ----

async function describe(id: string, source: ModelSourceKind, location: string): Promise<ModelEntry> {
  const entry: ModelEntry = {
    id,
    source,
    location,
    architecture: '?',
    parameters: null,
    quantization: '?',
    sizeBytes: 0,
    unsupported: null,
  };
  try {
    Object.assign(entry, fs.statSync(location).isDirectory() ? describeFolder(location) : await describeGguf(location));
  } catch (err) {
    entry.unsupported = (err as Error).message;
  }
  return entry;
}

function describeFolder(dir: string): Partial<ModelEntry> {
  const configFile = path.join(dir, 'config.json');
  const json = readJson(configFile);
  const architecture = Array.isArray(json.architectures) && typeof json.architectures[0] === 'string' ? json.architectures[0] : '?';
  const tensors = readSafetensorsFolder(dir).tensors;
  const files = new Set(tensors.map((t) => t.file));
  const dtypes = [...new Set(tensors.map((t) => t.dtype))];
  let unsupported: string | null = null;
  try {
    parseConfig(json, configFile);
  } catch (err) {
    unsupported = (err as Error).message;
  }
  if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) unsupported ??= `${dir}: no tokenizer.json`;
  return {
    architecture,
    parameters: tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    quantization: dtypes.join('+'),
    sizeBytes: [...files, configFile].reduce((n, f) => n + fs.statSync(f).size, 0),
    unsupported,
  };
}

async function describeGguf(file: string): Promise<Partial<ModelEntry>> {
  const header = await readGgufHeader(file);
  const { arch, unsupported: archReason } = ggufArchitecture(header.metadata);
  const badType = header.tensors.find((t) => !GGML_TYPE_CODES[t.dtype]);
  let unsupported = archReason;
  if (!unsupported && badType)
    unsupported = `tensor type ${GGMLQuantizationType[badType.dtype] ?? badType.dtype} (tensor "${badType.name}") is not supported`;
  if (!unsupported) {
    try {
      ggufTokenizerJson(new Metadata(header.metadata, file));
    } catch (err) {
      unsupported = (err as Error).message.replace(`${file}: `, '');
    }
  }
  const fileType = header.metadata['general.file_type'];
  const named = typeof fileType === 'number' ? GGMLFileQuantizationType[fileType] : undefined;
  return {
    architecture: arch,
    parameters: header.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * Number(b), 1), 0),
    quantization: named?.replace(/^MOSTLY_/, '') ?? mostCommonType(header.tensors.map((t) => t.dtype)),
    sizeBytes: fs.statSync(file).size,
    unsupported,
  };
}

function mostCommonType(codes: number[]): string {
  const counts = new Map<number, number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0];
  return top ? (GGMLQuantizationType[top[0]] ?? '?') : '?';
}

// ---- files ----

/** *.gguf files up to `depth` folders below `root`, vision projectors (mmproj) left out. */
function ggufFilesUnder(root: string, depth: number): string[] {
  const out: string[] = [];
  for (const name of listDir(root)) {
    const p = path.join(root, name);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      continue; // a dangling link
    }
    if (st.isDirectory() && depth > 0) out.push(...ggufFilesUnder(p, depth - 1));
    else if (st.isFile() && name.toLowerCase().endsWith('.gguf') && !name.toLowerCase().startsWith('mmproj')) out.push(p);
  }
  return out.sort();
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

function mtime(p: string): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}
