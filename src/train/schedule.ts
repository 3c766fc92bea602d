// Learning-rate schedules, indexed by the 0-based optimizer step. Warm-up is
// linear from peak/warmupSteps (not 0, so the first update is not wasted) to the
// peak at step warmupSteps-1; cosine then decays towards minRatio*peak, reaching
// it after totalSteps.

export interface ScheduleOptions {
  kind: 'cosine' | 'constant';
  peakLr: number;
  warmupSteps: number;
  /** Optimizer steps in the whole run (cosine only). */
  totalSteps: number;
  /** Floor of the cosine decay as a fraction of the peak (default 0). */
  minRatio?: number;
}

export interface Schedule {
  lrAt(step: number): number;
}

export function makeSchedule(opts: ScheduleOptions): Schedule {
  const { peakLr, warmupSteps, totalSteps } = opts;
  const minRatio = opts.minRatio ?? 0;
  if (!(warmupSteps >= 0) || !(minRatio >= 0 && minRatio <= 1)) {
    throw new RangeError(`invalid schedule: warmupSteps ${warmupSteps}, minRatio ${minRatio}`);
  }
  return {
    lrAt(step: number): number {
      if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
      if (opts.kind === 'constant') return peakLr;
      const decaySteps = Math.max(1, totalSteps - warmupSteps);
      const progress = Math.min(1, (step - warmupSteps) / decaySteps);
      const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
      return peakLr * (minRatio + (1 - minRatio) * cosine);
    },
  };
}
