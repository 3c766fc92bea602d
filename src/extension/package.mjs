// `npm run package`: bundles the extension, the worker (JSON-RPC and compute threads)
// and the webview scripts with esbuild, lays out a staging folder with
// onnxruntime-node's Linux x64 binaries under out/node_modules, and packs it with
// @vscode/vsce --no-dependencies (works offline). Output: aligner-vscode-<version>.vsix
// in the repository root (or the path in ALIGNER_VSIX).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const stage = path.join(root, '.cache', 'vsix');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = process.env.ALIGNER_VSIX ? path.resolve(process.env.ALIGNER_VSIX) : path.join(root, `${pkg.name}-${pkg.version}.vsix`);
const t0 = Date.now();
const log = (m) => console.log(`[package] ${m}`);

const rel = (...p) => path.join(root, ...p);
const copy = (from, to) => {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true });
};

// 1. Webview bundles, also into the repository's dist/media for runs from out/.
async function buildWebviews(outDir) {
  await esbuild.build({
    entryPoints: { chat: rel('media/webview/chat.js'), train: rel('media/webview/train.js') },
    outdir: outDir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120'],
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  for (const css of ['chat.css', 'train.css']) fs.copyFileSync(rel('media/webview', css), path.join(outDir, css));
}

fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
await buildWebviews(rel('dist/media'));
copy(rel('dist/media'), path.join(stage, 'dist/media'));

// 2. Extension host and worker (Node, CommonJS); vscode and onnxruntime-node stay external.
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: false,
  minify: false,
  keepNames: true,
  logLevel: 'warning',
  external: ['vscode', 'onnxruntime-node'],
  // ESM-only dependencies may read import.meta.url; give them this file's URL.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('url').pathToFileURL(__filename).href;" },
};
await esbuild.build({
  ...common,
  entryPoints: [rel('src/extension/extension.ts')],
  outfile: path.join(stage, 'out/src/extension/extension.js'),
});
// The CLI, which the extension runs as `aligner serve` for the local server.
await esbuild.build({ ...common, entryPoints: [rel('src/cli/main.ts')], outfile: path.join(stage, 'out/src/cli/main.js') });
await esbuild.build({
  ...common,
  entryPoints: {
    server: rel('src/worker/server.ts'),
    compute: rel('src/worker/compute.ts'),
    templateThread: rel('src/model/templateThread.ts'),
    templateProcess: rel('src/model/templateProcess.ts'),
  },
  outdir: path.join(stage, 'out/src/worker'),
});
log(`bundled in ${Date.now() - t0} ms`);

// 3. onnxruntime-node (Linux x64 binaries only) and onnxruntime-common, resolvable from out/src/worker.
const nm = path.join(stage, 'out', 'node_modules');
const ort = rel('node_modules/onnxruntime-node');
copy(path.join(ort, 'package.json'), path.join(nm, 'onnxruntime-node/package.json'));
copy(path.join(ort, 'dist'), path.join(nm, 'onnxruntime-node/dist'));
copy(path.join(ort, 'bin/napi-v6/linux/x64'), path.join(nm, 'onnxruntime-node/bin/napi-v6/linux/x64'));
for (const f of ['README.md', 'LICENSE'])
  if (fs.existsSync(path.join(ort, f))) copy(path.join(ort, f), path.join(nm, 'onnxruntime-node', f));
const common_ = rel('node_modules/onnxruntime-common');
copy(path.join(common_, 'package.json'), path.join(nm, 'onnxruntime-common/package.json'));
copy(path.join(common_, 'dist/cjs'), path.join(nm, 'onnxruntime-common/dist/cjs'));
for (const dir of [path.join(nm, 'onnxruntime-node/dist'), path.join(nm, 'onnxruntime-common/dist')]) {
  for (const f of fs.readdirSync(dir, { recursive: true }))
    if (String(f).endsWith('.map') || String(f).endsWith('.d.ts')) fs.rmSync(path.join(dir, String(f)));
}

// 4. Manifest, readme, licence, icon.
const manifest = { ...pkg };
delete manifest.devDependencies;
delete manifest.scripts;
delete manifest.bin;
delete manifest.allowScripts;
manifest.dependencies = {};
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
// The README without its screenshots: vsce only accepts images from the extension's public
// repository, and this package names none.
const readme = fs.readFileSync(rel('README.md'), 'utf8').replace(/^!\[[^\]]*\]\([^)]*\)\n\n?/gm, '');
fs.writeFileSync(path.join(stage, 'README.md'), readme);
copy(rel('LICENSE'), path.join(stage, 'LICENSE'));
copy(rel('media/icon.png'), path.join(stage, 'media/icon.png'));
copy(rel('.vscodeignore'), path.join(stage, '.vscodeignore'));

// 5. Pack.
const vsce = rel('node_modules/@vscode/vsce/vsce');
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--out', vsix], {
  cwd: stage,
  stdio: ['ignore', 'inherit', 'inherit'],
});
log(
  `${path.relative(process.cwd(), vsix)} (${(fs.statSync(vsix).size / 1e6).toFixed(1)} MB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
