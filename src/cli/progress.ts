// A one-line progress bar on stderr for `aligner train`.

import type { TrainProgress } from '../train/trainer';
import { formatDuration } from '../util/duration';

export function formatProgress(p: TrainProgress, width = 24): string {
  const done = Math.round((p.step / p.totalSteps) * width);
  const bar = '='.repeat(done) + ' '.repeat(width - done);
  const val = p.valLoss !== undefined ? ` val ${p.valLoss.toFixed(4)}` : '';
  return `step ${p.step}/${p.totalSteps} [${bar}] epoch ${p.epoch} loss ${p.loss.toFixed(4)}${val} | ${Math.round(p.tokensPerSec)} tok/s | ETA ${formatDuration(p.etaSec)}`;
}
