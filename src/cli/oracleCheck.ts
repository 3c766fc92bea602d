// Checks the engine against the PyTorch-autograd vectors of ../shared/oracle
// (schema and tolerances in its README): every case recomputes its expected
// fields from its inputs and compares element-wise with the file's tolerances.

import * as fs from 'fs';
import * as path from 'path';
import { argmax } from '../generate/sampler';
import { AdamW } from '../train/adamw';
import type { Engine } from '../engine/engine';
import type { AdapterWeights } from '../adapter/types';
import type { TokenBatch } from '../data/batches';

type Nested = number | Nested[];
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface FieldResult {
  field: string;
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  detail?: string;
}

export interface FileResult {
  file: string;
  case: string;
  ok: boolean;
  fields: FieldResult[];
  error?: string;
}

/** Computes a case's fields from its inputs (`expected` only tells the layout of single-row logits). */
type CaseRunner = (engine: Engine, inputs: Json, expected: Json) => Promise<Record<string, Nested>>;

const CASES: Record<string, CaseRunner> = {
  base_logits: async (e, inp) => ({ logits: rows((await e.logits([inp.input_ids], [null]))[0], e) }),
  sft_batch: sftCase,
  sft_batch_n3: sftCase,
  zero_gate: sftCase,
  adamw_step: adamwCase,
  dpo: dpoCase,
  generate: generateCase,
  multi_adapter: multiCase,
  multi_adapter_mixed: multiCase,
};

export async function checkOracleFile(engine: Engine, file: string): Promise<FileResult> {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  const base = { file: path.basename(file), case: String(data.case) };
  const run = CASES[data.case];
  if (data.schema !== 'aligner-oracle/1') return { ...base, ok: false, fields: [], error: `unknown schema ${JSON.stringify(data.schema)}` };
  if (!run) return { ...base, ok: false, fields: [], error: `unknown case "${data.case}"` };
  try {
    const actual = await run(engine, data.inputs, data.expected);
    const fields = Object.keys(data.expected).map((f) => compareField(f, actual[f], data.expected[f], data.tolerances[f]));
    return { ...base, ok: fields.every((f) => f.ok), fields };
  } catch (err) {
    return { ...base, ok: false, fields: [], error: (err as Error).message };
  }
}

function compareField(field: string, actual: Nested | undefined, expected: Nested, tol: Json | undefined): FieldResult {
  const fail = (detail: string): FieldResult => ({ field, ok: false, maxAbs: NaN, maxRel: NaN, detail });
  if (actual === undefined) return fail('not computed');
  if (!tol) return fail('no tolerance in the file');
  const a: number[] = [];
  const e: number[] = [];
  const shapeProblem = flattenPair(actual, expected, a, e, field);
  if (shapeProblem) return fail(shapeProblem);
  let maxAbs = 0;
  let maxRel = 0;
  let ok = true;
  for (let i = 0; i < e.length; i++) {
    const diff = Math.abs(a[i] - e[i]);
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, diff / Math.max(Math.abs(e[i]), 1e-30));
    ok &&= tol.exact ? a[i] === e[i] : diff <= tol.atol + tol.rtol * Math.abs(e[i]);
  }
  return { field, ok, maxAbs, maxRel };
}

/** Flattens both side by side, so ragged rows are compared row by row; returns a shape mismatch, if any. */
function flattenPair(a: Nested, e: Nested, outA: number[], outE: number[], at: string): string | null {
  if (typeof e === 'number') {
    if (typeof a !== 'number') return `${at}: expected a number`;
    outA.push(a);
    outE.push(e);
    return null;
  }
  if (!Array.isArray(a) || a.length !== e.length)
    return `${at}: expected ${e.length} entries, got ${Array.isArray(a) ? a.length : 'a number'}`;
  for (let i = 0; i < e.length; i++) {
    const p = flattenPair(a[i], e[i], outA, outE, `${at}[${i}]`);
    if (p) return p;
  }
  return null;
}

// ---- cases ----

function adapterOf(a: Json | null): AdapterWeights | null {
  if (!a) return null;
  return {
    tokens: a.n_prefix,
    startLayer: a.start_layer,
    prefix: Float32Array.from((a.prefix as number[][]).flat()),
    gates: Float32Array.from((a.gates as number[][]).flat()),
  };
}

/** The oracle's aligned labels (authors' convention) as next-token targets and a shifted mask. */
function batchOf(ids: number[][], labels: number[][], mask: number[][]): TokenBatch {
  const rows = ids.length;
  const length = ids[0].length;
  const targets = new Int32Array(rows * length);
  const m = new Uint8Array(rows * length);
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t < length; t++) {
      targets[b * length + t] = t + 1 < length ? Math.max(labels[b][t + 1], 0) : 0;
      m[b * length + t] = mask[b][t];
    }
  }
  return { rows, length, inputIds: Int32Array.from(ids.flat()), targets, mask: m };
}

function rows(flat: Float32Array, e: Engine): number[][] {
  const V = e.model.config.vocabSize;
  return Array.from({ length: flat.length / V }, (_, t) => Array.from(flat.subarray(t * V, (t + 1) * V)));
}

function shaped(data: Float32Array, cols: number): number[][] {
  return Array.from({ length: data.length / cols }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols)));
}

async function sftCase(e: Engine, inp: Json, expected: Json) {
  const adapter = adapterOf(inp.adapter)!;
  const step = await e.sftStep(batchOf(inp.input_ids, inp.labels, inp.target_mask), adapter);
  const real = (inp.input_ids as number[][]).map((r, b) => r.slice(0, inp.lengths[b]));
  const logits = (
    await e.logits(
      real,
      real.map(() => adapter),
    )
  ).map((l) => rows(l, e));
  return {
    // A single sequence is stored as [T][V] (like base_logits), a batch as ragged [B][T][V].
    logits: typeof expected.logits[0][0] === 'number' ? logits[0] : logits,
    loss: step.loss,
    n_targets: step.targets,
    grad_prefix: shaped(step.gradPrefix, e.model.config.hiddenSize),
    grad_gates: shaped(step.gradGates, e.model.config.numHeads),
  };
}

async function adamwCase(e: Engine, inp: Json) {
  const adapter = adapterOf(inp.adapter)!;
  const batch = batchOf(inp.input_ids, inp.labels, inp.target_mask);
  const before = await e.sftStep(batch, adapter);
  const o = inp.optimizer;
  new AdamW([adapter.prefix, adapter.gates], { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }).update([
    before.gradPrefix,
    before.gradGates,
  ]);
  const after = await e.sftStep(batch, adapter);
  const { hiddenSize, numHeads } = e.model.config;
  return {
    grad_prefix: shaped(before.gradPrefix, hiddenSize),
    grad_gates: shaped(before.gradGates, numHeads),
    loss_before: before.loss,
    prefix_after: shaped(adapter.prefix, hiddenSize),
    gates_after: shaped(adapter.gates, numHeads),
    loss_after: after.loss,
  };
}

async function dpoCase(e: Engine, inp: Json) {
  if (!String(inp.reference).startsWith('base')) throw new Error(`unsupported reference ${JSON.stringify(inp.reference)}`);
  const adapter = adapterOf(inp.adapter)!;
  const batch = batchOf(
    [...inp.chosen_input_ids, ...inp.rejected_input_ids],
    [...inp.chosen_labels, ...inp.rejected_labels],
    [...inp.chosen_target_mask, ...inp.rejected_target_mask],
  );
  const ref = await e.sequenceLogps(batch, null);
  const step = await e.dpoStep(batch, adapter, ref, inp.beta);
  const P = batch.rows / 2;
  const half = (x: Float32Array, i: number) => Array.from(x.subarray(i * P, (i + 1) * P));
  return {
    policy_chosen_logps: half(step.logps, 0),
    policy_rejected_logps: half(step.logps, 1),
    reference_chosen_logps: half(ref, 0),
    reference_rejected_logps: half(ref, 1),
    loss: step.loss,
    grad_prefix: shaped(step.gradPrefix, e.model.config.hiddenSize),
    grad_gates: shaped(step.gradGates, e.model.config.numHeads),
  };
}

/** Greedy decoding through the KV cache, with and without the adapter, in one batch of two rows. */
async function generateCase(e: Engine, inp: Json) {
  const adapter = adapterOf(inp.adapter);
  const prompt: number[] = inp.prompt_ids;
  let { state, logits } = await e.prefill([prompt, prompt], [adapter, null]);
  const ids: number[][] = [[], []];
  const stepLogits: number[][] = [];
  for (let i = 0; i < inp.n_new; i++) {
    stepLogits.push(Array.from(logits[0]));
    const next = logits.map(argmax);
    next.forEach((t, b) => ids[b].push(t));
    if (i + 1 < inp.n_new) logits = await e.decode(state, next);
  }
  return { generated_ids: ids[0], step_logits: stepLogits, base_generated_ids: ids[1] };
}

async function multiCase(e: Engine, inp: Json) {
  const adapters = (inp.adapters as (Json | null)[]).map(adapterOf);
  const logits = await e.logits(inp.input_ids, adapters);
  return { logits: logits.map((l) => rows(l, e)) };
}
