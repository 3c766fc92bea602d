// Where a zoe adapter lets the listed names through (issue 11, the LoRA row): over the zoe
// validation stories, teacher-forced, at each "Zoe" the chance that stylebench's sampling
// (T 0.8, top-p 0.9) starts a listed name instead: a name's first piece (" Lily", " T", ...),
// or the bare " " that "Zoe" also starts with followed by another name's capital ("A" of Amy).
// Slots are grouped by whether a "Zoe" came before in the story (first/later) and by what
// precedes ("named", "friend," or other), one JSON line per adapter ("base" = none).
// A zoe sample fails on one slipped name, so this tells which slots cost adherence, with far
// less noise than 100 samples.
//   npm run build && node out/test/bench/zoeslots.js base A.safetensors ...

import * as fs from 'fs';
import * as path from 'path';
import { readAdapter } from '../../src/adapter/file';
import type { AdapterWeights } from '../../src/adapter/types';
import { Engine } from '../../src/engine/engine';
import { Sampler } from '../../src/generate/sampler';
import { loadModel } from '../../src/model/load';
import { STORIES, STYLE_DIR } from '../model/paths';
import { STYLE_SAMPLING, ZOE_NAMES } from './style';

const ROWS_PER_PASS = 20;

async function main(): Promise<void> {
  const engine = await Engine.create(await loadModel(STORIES));
  const { tokenizer } = engine.model;
  const zoe = tokenizer.encode('x Zoe').slice(-4); // " ", "Z", "o", "e": no " Z" piece in tok512
  const x = tokenizer.encode('x').at(-1) as number;
  const piece = (id: number) => tokenizer.decode([x, id]).slice(1); // keeps a piece's leading space
  const startsName = (w: string) => ZOE_NAMES.some((n) => n.startsWith(w));
  const ids = [...Array(engine.model.config.vocabSize).keys()];
  const first = ids.filter((i) => /^ [A-Z][a-z]*$/.test(piece(i)) && startsName(piece(i).slice(1)));
  const afterSpace = ids.filter((i) => /^[A-Z][a-z]*$/.test(piece(i)) && piece(i) !== 'Z' && startsName(piece(i)));
  const stories = fs
    .readFileSync(path.join(STYLE_DIR, 'zoe.val.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => tokenizer.encode((JSON.parse(l) as { text: string }).text));
  const sampler = new Sampler({ ...STYLE_SAMPLING, seed: 0 });
  try {
    for (const name of process.argv.slice(2)) {
      const adapter: AdapterWeights | null = name === 'base' ? null : readAdapter(name);
      const slots: Record<string, number[]> = {};
      for (let b = 0; b < stories.length; b += ROWS_PER_PASS) {
        const rows = stories.slice(b, b + ROWS_PER_PASS);
        const logits = await engine.logits(
          rows,
          rows.map(() => adapter),
        );
        rows.forEach((row, r) => {
          const V = logits[r].length / row.length;
          const next = (t: number) => sampler.distribution(logits[r].subarray((t - 1) * V, t * V)); // for position t
          let seen = false;
          for (let t = 1; t + 3 < row.length; t++) {
            if (!zoe.every((id, k) => row[t + k] === id)) continue;
            const before = tokenizer.decode(row.slice(Math.max(1, t - 4), t));
            const slot = /named$/.test(before) ? 'named' : /friend,?$/.test(before) ? 'friend' : 'other';
            const key = `${seen ? 'later' : 'first'} ${slot}`;
            seen = true;
            const [p0, p1] = [next(t), next(t + 1)];
            const mass = (p: Float64Array, set: number[]) => set.reduce((a, i) => a + p[i], 0);
            (slots[key] ??= []).push(mass(p0, first) + p0[zoe[0]] * mass(p1, afterSpace));
          }
        });
      }
      const summary = Object.fromEntries(
        Object.entries(slots).map(([k, m]) => [
          k,
          { slots: m.length, nameMass: round(m.reduce((a, c) => a + c, 0) / m.length), over5: m.filter((c) => c > 0.05).length },
        ]),
      );
      const perStory =
        Object.values(slots)
          .flat()
          .reduce((a, c) => a + c, 0) / stories.length;
      console.log(JSON.stringify({ bench: 'zoeslots', adapter: path.basename(name), namesPerStory: round(perStory), slots: summary }));
    }
  } finally {
    await engine.dispose();
  }
}

function round(x: number): number {
  return Number(x.toFixed(4));
}

main().catch((e) => {
  console.error(`zoeslots: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
