// AdamW with torch.optim.AdamW semantics (SPEC §2): decoupled weight decay and
// bias-corrected moments, with eps added after the bias-corrected sqrt(v):
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// Parameters are updated in place. Per-element math is done in float64 and the
// moments are stored as float32, as torch keeps them for float32 parameters.

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** Plain-JSON optimizer state, for checkpointing a run. */
export interface AdamWState {
  step: number;
  m: number[][];
  v: number[][];
}

export const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 };

export class AdamW {
  private readonly opts: AdamWOptions;
  private stepCount = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(
    private readonly params: Float32Array[],
    opts: Partial<AdamWOptions> = {},
  ) {
    this.opts = { ...ADAMW_DEFAULTS, ...opts };
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  get step(): number {
    return this.stepCount;
  }

  /** One update from `grads` (same order and sizes as the params); `lr` overrides the configured rate (schedules). */
  update(grads: Float32Array[], lr = this.opts.lr): void {
    if (grads.length !== this.params.length) {
      throw new Error(`AdamW: got ${grads.length} gradients for ${this.params.length} parameters`);
    }
    this.stepCount++;
    const [b1, b2] = this.opts.betas;
    const stepSize = lr / (1 - b1 ** this.stepCount);
    const bias2Sqrt = Math.sqrt(1 - b2 ** this.stepCount);
    const decay = 1 - lr * this.opts.weightDecay;
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (g.length !== p.length) throw new Error(`AdamW: gradient ${i} has ${g.length} values, parameter has ${p.length}`);
      const m = this.m[i];
      const v = this.v[i];
      for (let j = 0; j < p.length; j++) {
        const mj = b1 * m[j] + (1 - b1) * g[j];
        const vj = b2 * v[j] + (1 - b2) * g[j] * g[j];
        m[j] = mj;
        v[j] = vj;
        p[j] = p[j] * decay - (stepSize * mj) / (Math.sqrt(vj) / bias2Sqrt + this.opts.eps);
      }
    });
  }

  getState(): AdamWState {
    return { step: this.stepCount, m: this.m.map((a) => Array.from(a)), v: this.v.map((a) => Array.from(a)) };
  }

  /** Restores a state saved by getState for the same parameter shapes. */
  loadState(state: AdamWState): void {
    const fits = (arrays: number[][]) => arrays.length === this.params.length && arrays.every((a, i) => a.length === this.params[i].length);
    if (!Number.isInteger(state.step) || state.step < 0 || !fits(state.m) || !fits(state.v)) {
      throw new Error('AdamW: saved state does not match the parameters (step, count or sizes differ)');
    }
    this.stepCount = state.step;
    state.m.forEach((a, i) => this.m[i].set(a));
    state.v.forEach((a, i) => this.v[i].set(a));
  }
}
