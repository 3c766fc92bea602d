// Shared harness of the property-based fuzz tests (fast-check): every target feeds generated
// untrusted input to one parser and accepts only a correct result or one of the parser's typed
// errors with a short message; a case must finish in bounded time, memory must not run away,
// and nothing may be written where the inputs live. Each target reports its case count as a
// "fuzz <target>: N cases" diagnostic line, which `npm run chaos` quotes.
// ALIGNER_FUZZ_RUNS scales the number of cases (default 1,000 per target).

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { TestContext } from 'node:test';
import * as fc from 'fast-check';

export const RUNS = Number(process.env.ALIGNER_FUZZ_RUNS ?? 1000);

/** Longest a single case may take (generous: the machine is shared). */
const CASE_MS = 5000;
/** Growth of resident memory over a whole target that counts as runaway. */
const RSS_GROWTH = 512 * 1024 * 1024;

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Runs `fn`; if it throws, the error must be one of `typed`, with a one-line message of at most
 * 600 characters. Returns the result, or null after a typed error.
 */
export function typedOrResult<T>(fn: () => T, typed: ErrorClass[]): T | null {
  try {
    return fn();
  } catch (err) {
    checkTyped(err, typed);
    return null;
  }
}

export async function typedOrResultAsync<T>(fn: () => Promise<T>, typed: ErrorClass[]): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    checkTyped(err, typed);
    return null;
  }
}

function checkTyped(err: unknown, typed: ErrorClass[]): void {
  if (!typed.some((c) => err instanceof c)) throw new Error(`untyped error: ${(err as Error)?.stack ?? String(err)}`);
  const message = (err as Error).message;
  assert.ok(message.length <= 600, `error message of ${message.length} characters: ${message.slice(0, 200)}…`);
  assert.ok(!message.includes('\n'), `multi-line error message: ${message.slice(0, 200)}`);
}

/**
 * Checks `property` on `runs` generated cases, with the time, memory and no-write bounds, and
 * reports the count. `watch` lists folders that must hold the same files afterwards.
 */
export async function fuzz<T>(
  t: TestContext,
  target: string,
  arb: fc.Arbitrary<T>,
  property: (value: T) => void | Promise<void>,
  opts: { runs?: number; watch?: string[] } = {},
): Promise<void> {
  const runs = opts.runs ?? RUNS;
  const before = (opts.watch ?? []).map(listing);
  const rss = process.memoryUsage().rss;
  const started = Date.now();
  let cases = 0;
  let failure: unknown = null;
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (value) => {
        const t0 = Date.now();
        try {
          await property(value);
        } catch (err) {
          failure = err;
          throw err;
        }
        const ms = Date.now() - t0;
        assert.ok(ms < CASE_MS, `one case took ${ms} ms`);
        cases++;
      }),
      { numRuns: runs },
    );
  } catch (err) {
    // fast-check's report quotes the whole counterexample (megabytes for a tokenizer): keep it short.
    const report = (err as Error).message;
    throw new Error(`${target}: ${String((failure as Error)?.stack ?? failure).slice(0, 2000)}\n${report.slice(0, 3000)}`, { cause: err });
  }
  const grown = process.memoryUsage().rss - rss;
  assert.ok(grown < RSS_GROWTH, `resident memory grew by ${Math.round(grown / 2 ** 20)} MiB`);
  assert.deepEqual((opts.watch ?? []).map(listing), before, 'a parser wrote a file');
  assert.ok(cases >= runs, `${cases} cases ran`);
  t.diagnostic(`fuzz ${target}: ${cases} cases in ${Date.now() - started} ms`);
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

/** Byte-level damage to a valid file: truncation, bit flips, overwritten runs, or none. */
export function mutated(bytes: fc.Arbitrary<Buffer>): fc.Arbitrary<{ bytes: Buffer; intact: boolean }> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('write' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  );
  return fc.tuple(bytes, fc.array(edit, { maxLength: 3 })).map(([original, edits]) => {
    const out = Buffer.from(original);
    let end = out.length;
    for (const e of edits) {
      if (end === 0) break;
      if (e.kind === 'cut') end = e.at % end;
      else if (e.kind === 'flip') out[e.at % end] ^= 1 << e.bit;
      else out.set(e.data.subarray(0, end - (e.at % end)), e.at % end);
    }
    const bytes = out.subarray(0, end);
    return { bytes, intact: bytes.equals(original) };
  });
}

/** A deep copy of `value` with up to three nodes, found by walking random paths, replaced or deleted. */
export function mutatedJson(value: unknown): fc.Arbitrary<unknown> {
  const edit = fc.record({ steps: fc.array(fc.nat(), { maxLength: 6 }), to: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }) });
  return fc.array(edit, { maxLength: 3 }).map((edits) => {
    const root = { value: structuredClone(value) as unknown };
    for (const e of edits) {
      let parent: Record<string, unknown> = root;
      let key = 'value';
      for (const step of e.steps) {
        const node = parent[key];
        if (typeof node !== 'object' || node === null) break;
        const keys = Object.keys(node);
        if (keys.length === 0) break;
        parent = node as Record<string, unknown>;
        key = keys[step % keys.length];
      }
      if (e.to === undefined && !Array.isArray(parent)) delete parent[key];
      else parent[key] = e.to ?? null;
    }
    return root.value;
  });
}
