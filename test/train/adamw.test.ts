import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { AdamW } from '../../src/train/adamw';

const ORACLE = '/work/shared/oracle/adamw_step.json';

function assertClose(actual: Float32Array, expected: number[], tol: { atol: number; rtol: number }, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  expected.forEach((e, i) => {
    const a = actual[i];
    assert.ok(Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e), `${what}[${i}]: ${a} vs ${e}`);
  });
}

test('one step matches torch.optim.AdamW (oracle)', { skip: !fs.existsSync(ORACLE) }, () => {
  const oracle = JSON.parse(fs.readFileSync(ORACLE, 'utf8'));
  const { adapter, optimizer } = oracle.inputs;
  const prefix = Float32Array.from(adapter.prefix.flat());
  const gates = Float32Array.from(adapter.gates.flat());
  const opt = new AdamW([prefix, gates], {
    lr: optimizer.lr,
    betas: optimizer.betas,
    eps: optimizer.eps,
    weightDecay: optimizer.weight_decay,
  });
  opt.update([Float32Array.from(oracle.expected.grad_prefix.flat()), Float32Array.from(oracle.expected.grad_gates.flat())]);
  assert.equal(opt.step, optimizer.step);
  assertClose(prefix, oracle.expected.prefix_after.flat(), oracle.tolerances.prefix_after, 'prefix_after');
  assertClose(gates, oracle.expected.gates_after.flat(), oracle.tolerances.gates_after, 'gates_after');
});

/** torch.optim.AdamW written out in float64, for several steps with a varying learning rate. */
function reference(p: number[], grads: number[][], lrs: number[], b1: number, b2: number, eps: number, wd: number): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let j = 0; j < p.length; j++) {
      p[j] *= 1 - lrs[s] * wd;
      m[j] = b1 * m[j] + (1 - b1) * g[j];
      v[j] = b2 * v[j] + (1 - b2) * g[j] ** 2;
      p[j] -= (lrs[s] / (1 - b1 ** t)) * (m[j] / (Math.sqrt(v[j]) / Math.sqrt(1 - b2 ** t) + eps));
    }
  });
  return p;
}

test('several steps with per-step lr follow the reference formula', () => {
  const start = [0.5, -1, 0, 2];
  const grads = [
    [0.1, -0.2, 0, 3],
    [-0.1, 0.05, 1e-4, 2],
    [0.3, 0.3, -0.3, 1],
  ];
  const lrs = [0.01, 0.02, 0.005];
  const p = Float32Array.from(start);
  const opt = new AdamW([p], { lr: 1, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 });
  grads.forEach((g, s) => opt.update([Float32Array.from(g)], lrs[s]));
  const expected = reference([...start], grads, lrs, 0.9, 0.99, 1e-8, 0.1);
  assertClose(p, expected, { atol: 1e-6, rtol: 1e-5 }, 'p');
});

test('state round-trips through JSON and continues identically', () => {
  const a = Float32Array.from([1, 2, 3]);
  const optA = new AdamW([a], { lr: 0.1 });
  optA.update([Float32Array.from([0.1, 0.2, 0.3])]);
  const b = Float32Array.from(a);
  const optB = new AdamW([b], { lr: 0.1 });
  optB.loadState(JSON.parse(JSON.stringify(optA.getState())));
  const g = Float32Array.from([-0.3, 0.1, 0.2]);
  optA.update([g]);
  optB.update([g]);
  assert.deepEqual(b, a);
  assert.equal(optB.step, 2);
  assert.throws(() => optB.loadState({ step: 1, m: [[0]], v: [[0]] }), /does not match/);
});

test('mismatched gradients are refused', () => {
  const opt = new AdamW([new Float32Array(2)]);
  assert.throws(() => opt.update([new Float32Array(3)]), /gradient 0 has 3 values/);
  assert.throws(() => opt.update([]), /got 0 gradients for 1 parameters/);
});
