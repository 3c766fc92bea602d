// Durations for people: the time left of a training run, how long it took.

/** "45 s", "3 min 20 s", "2 h 5 min": rounded to whole seconds, never negative. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
