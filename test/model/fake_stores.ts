// Fake local model stores for tests, laid out as the real tools lay them out.

import { createHash } from 'node:crypto';
import * as fs from 'fs';
import * as path from 'path';

/** Puts a file into the Ollama store as its blob and writes the manifest that names it. */
export function ollamaPull(root: string, name: string, tag: string, blobSource: string | null, digestOf = blobSource): void {
  const digest = `sha256:${createHash('sha256')
    .update(digestOf ? fs.readFileSync(digestOf) : name)
    .digest('hex')}`;
  fs.mkdirSync(path.join(root, 'blobs'), { recursive: true });
  if (blobSource) fs.copyFileSync(blobSource, path.join(root, 'blobs', digest.replace(':', '-')));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: 'sha256:' + '0'.repeat(64), size: 2 },
    layers: [
      { mediaType: 'application/vnd.ollama.image.model', digest, size: 1 },
      { mediaType: 'application/vnd.ollama.image.template', digest: 'sha256:' + '1'.repeat(64), size: 3 },
    ],
  };
  const dir = path.join(root, 'manifests', 'registry.ollama.ai', 'library', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, tag), JSON.stringify(manifest));
}

/** A hub-cache repo as huggingface_hub lays it out: blobs by hash, snapshots of symlinks, refs/main. */
export function hfCachePut(hub: string, repoId: string, files: Record<string, string>): string {
  const repo = path.join(hub, `models--${repoId.replace('/', '--')}`);
  const rev = 'a'.repeat(40);
  const snap = path.join(repo, 'snapshots', rev);
  fs.mkdirSync(snap, { recursive: true });
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  for (const [name, source] of Object.entries(files)) {
    const blob = path.join(repo, 'blobs', createHash('sha256').update(fs.readFileSync(source)).digest('hex'));
    fs.copyFileSync(source, blob);
    fs.symlinkSync(path.relative(snap, blob), path.join(snap, name));
  }
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), rev);
  return snap;
}
