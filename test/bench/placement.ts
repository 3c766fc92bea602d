// Which execution provider ran each op: runs a training step, a prefill and a
// few decode steps with onnxruntime's profiler on, then sums the profile per
// provider and op type. On a GPU provider, every op listed under
// CPUExecutionProvider is a fallback (shape ops there are expected and cheap).
//
//   node out/test/bench/placement.js --device webgpu --quant f32,q4 DIR...

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { Quantization } from '../../src/engine/quantize';
import type { TokenBatch } from '../../src/data/batches';
import type { Device } from '../../src/engine/types';
import { loadModel } from '../../src/model/load';

interface ProfileEvent {
  cat?: string;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

async function exercise(dir: string, device: Device, quantization: Quantization): Promise<void> {
  const model = await loadModel(dir);
  const engine = await Engine.create(model, { device, quantization, profile: true, log: (m) => console.log(`  ${m}`) });
  console.log(`${model.name} ${quantization}: running on ${engine.device}`);
  const adapter = newAdapter(model.config, 4, 2, 0);
  adapter.gates.fill(0.1);
  const T = 64;
  const ids = Int32Array.from({ length: 2 * T }, (_, i) => 3 + ((i * 7919) % (model.config.vocabSize - 3)));
  const batch: TokenBatch = {
    rows: 2,
    length: T,
    inputIds: ids,
    targets: ids.map((_, i) => ids[(i + 1) % ids.length]),
    mask: Uint8Array.from(ids, (_, i) => (i % T < T - 1 ? 1 : 0)),
  };
  const step = await engine.sftStep(batch, adapter);
  console.log(`  train step loss ${step.loss.toFixed(4)}`);
  const { state } = await engine.prefill([Array.from(ids.subarray(0, T))], [adapter]);
  for (let i = 0; i < 4; i++) await engine.decode(state, [5 + i]);
  await engine.dispose();
}

function summarise(files: string[], device: Device): void {
  const byKey = new Map<string, { count: number; us: number }>();
  for (const f of files) {
    const events = JSON.parse(fs.readFileSync(f, 'utf8')) as ProfileEvent[];
    for (const e of events) {
      if (e.cat !== 'Node' || !e.args?.op_name || !e.args.provider) continue;
      const key = `${e.args.provider} ${e.args.op_name}`;
      const s = byKey.get(key) ?? { count: 0, us: 0 };
      s.count++;
      s.us += e.dur ?? 0;
      byKey.set(key, s);
    }
  }
  const rows = [...byKey.entries()].sort((a, b) => b[1].us - a[1].us);
  console.log('provider op: node runs, total ms');
  for (const [key, s] of rows) console.log(`  ${key}: ${s.count}, ${(s.us / 1000).toFixed(1)}`);
  if (device !== 'cpu') {
    const fallbacks = rows.filter(([k]) => k.startsWith('CPUExecutionProvider')).map(([k]) => k.split(' ')[1]);
    console.log(`ops on the CPU instead of ${device}: ${fallbacks.length ? fallbacks.join(', ') : 'none'}`);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { device: { type: 'string' }, quant: { type: 'string' } }, allowPositionals: true });
  const device = (values.device ?? 'webgpu') as Device;
  const quants = (values.quant ?? 'f32,q4').split(',') as Quantization[];
  for (const dir of positionals) {
    for (const q of quants) {
      // onnxruntime writes profiles into the working directory: one fresh folder per run.
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-placement-'));
      const cwd = process.cwd();
      process.chdir(work);
      try {
        await exercise(path.resolve(cwd, dir), device, q);
      } finally {
        process.chdir(cwd);
      }
      summarise(
        fs
          .readdirSync(work)
          .filter((f) => f.endsWith('.json'))
          .map((f) => path.join(work, f)),
        device,
      );
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

main().catch((e) => {
  console.error(`placement: ${(e as Error).message}`);
  process.exit(1);
});
