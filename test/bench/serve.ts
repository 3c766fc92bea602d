// Bench of `aligner serve` (JSON lines on stdout): requests/s, generated tokens/s
// and p50/p95 request latency for 1, 8 and 32 concurrent clients, with every
// request on one adapter ("single") or spread over three ("mixed"), on
// stories260K and the random tiny15m. Single and mixed rounds alternate, three
// rounds each, and medians are reported, so the ratio is measured side by side.
//
//   npm run bench:serve        (BENCH_MODELS=stories260K,tiny15m  BENCH_CLIENTS=1,8,32)

import * as os from 'os';
import * as path from 'path';
import { writeAdapter } from '../../src/adapter/file';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import { openModel } from '../../src/model/open';
import { startServer } from '../../src/server/http';
import { ServedModels } from '../../src/server/models';
import { STORIES, tempDir } from '../model/paths';
import { ensureRandomModel, RANDOM_MODELS } from './models';
import { untrainedSummary } from '../adapter/raw';
import { median, percentile } from './stats';

const MAX_TOKENS = 32;
const ROUNDS = 3;
const PROMPTS = ['Once upon a time', 'One day, a little girl', 'The dog ran to', 'Tom and Sue'];
const TOKEN = 'bench';

const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Round {
  reqPerS: number;
  tokPerS: number;
  p50: number;
  p95: number;
}

/** `clients` loops each sending requests back to back until `total` are answered. */
async function round(url: string, models: string[], clients: number, total: number): Promise<Round> {
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  const one = async (i: number) => {
    const t0 = performance.now();
    const res = await fetch(`${url}/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: models[i % models.length],
        prompt: PROMPTS[i % PROMPTS.length],
        max_tokens: MAX_TOKENS,
        temperature: 0,
      }),
    });
    const body = (await res.json()) as { usage?: { completion_tokens: number }; error?: { message: string } };
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${body.error?.message}`);
    latencies.push(performance.now() - t0);
    tokens += body.usage!.completion_tokens;
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) await one(next++);
    }),
  );
  const s = (performance.now() - t0) / 1000;
  return { reqPerS: total / s, tokPerS: tokens / s, p50: percentile(latencies, 50), p95: percentile(latencies, 95) };
}

async function benchModel(name: string, dir: string, clientCounts: number[]): Promise<void> {
  const model = await openModel(dir);
  const engine = await Engine.create(model, { threads: os.cpus().length });
  const adapterDir = tempDir();
  const meta = untrainedSummary(model);
  for (const [i, style] of ['a', 'b', 'c'].entries()) {
    const adapter = newAdapter(model.config, 'auto', 2, i + 1);
    adapter.gates.fill(0.5 * (i + 1));
    writeAdapter(path.join(adapterDir, `${style}.safetensors`), adapter, meta, model.config);
  }
  const server = await startServer(engine, new ServedModels(model, [], [adapterDir]), {
    port: 0,
    token: TOKEN,
    maxBatch: 32,
    maxQueue: 1024,
  });
  const single = [`${model.name}+a`];
  const mixed = ['a', 'b', 'c'].map((s) => `${model.name}+${s}`);
  await round(server.url, mixed, 4, 8); // warm-up: sessions, prefix K/V of each adapter
  for (const clients of clientCounts) {
    const total = Math.max(8, clients * 2);
    const rounds: Record<'single' | 'mixed', Round[]> = { single: [], mixed: [] };
    for (let r = 0; r < ROUNDS; r++) {
      rounds.single.push(await round(server.url, single, clients, total));
      rounds.mixed.push(await round(server.url, mixed, clients, total));
    }
    const summary = (rs: Round[]) => ({
      req_per_s: +median(rs.map((x) => x.reqPerS)).toFixed(2),
      tokens_per_s: +median(rs.map((x) => x.tokPerS)).toFixed(1),
      p50_ms: Math.round(median(rs.map((x) => x.p50))),
      p95_ms: Math.round(median(rs.map((x) => x.p95))),
    });
    const s = summary(rounds.single);
    const m = summary(rounds.mixed);
    emit({
      bench: 'serve',
      model: name,
      clients,
      requests_per_round: total,
      max_tokens: MAX_TOKENS,
      single: s,
      mixed: m,
      mixed_over_single: +(m.req_per_s / s.req_per_s).toFixed(3),
      load_avg_1m: +os.loadavg()[0].toFixed(2),
    });
  }
  await server.close();
  await engine.dispose();
}

async function main(): Promise<void> {
  const want = (process.env.BENCH_MODELS ?? 'stories260K,tiny15m').split(',');
  const clientCounts = (process.env.BENCH_CLIENTS ?? '1,8,32').split(',').map(Number);
  if (want.includes('stories260K')) await benchModel('stories260K', STORIES, clientCounts);
  for (const spec of RANDOM_MODELS) {
    if (want.includes(spec.name)) await benchModel(spec.name, ensureRandomModel(spec, STORIES, log), clientCounts);
  }
}

main().catch((err) => {
  log(`bench:serve: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
