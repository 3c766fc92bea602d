// When the extension restarts a worker that stopped: at once, unless it stopped more
// than MAX_CRASHES times within WINDOW_MS; then never again in this window of VS Code,
// and requests fail with a message instead of starting it (the user was told it "will not
// be restarted"). Pure logic, without the vscode API, so it is unit-tested.

export const MAX_CRASHES = 5;
export const WINDOW_MS = 3 * 60_000;

export class RestartPolicy {
  private crashes: number[] = [];
  private stopped = false;

  /** Records a crash at `now`; 'restart', or 'give-up' once the worker crashed too often. */
  crashed(now: number): 'restart' | 'give-up' {
    this.crashes = this.crashes.filter((t) => now - t < WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length > MAX_CRASHES) this.stopped = true;
    return this.stopped ? 'give-up' : 'restart';
  }

  /** Whether a request may start the worker. */
  get gaveUp(): boolean {
    return this.stopped;
  }
}

export const GAVE_UP_MESSAGE =
  `The Aligner worker stopped ${MAX_CRASHES} times in ${WINDOW_MS / 60_000} minutes and will not be restarted. ` +
  'See "Aligner: Show Worker Log", then reload the window to try again.';
