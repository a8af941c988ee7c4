/**
 * Syncs shared by the commits that wait for them (the SQLite store's WAL, store/sqlite/store.ts): `after()` resolves
 * once a sync that *began after the call* has finished, so it covers everything written before the call. One sync
 * runs at a time; every caller that arrives while one runs shares the next, which starts when the running one ends.
 * A failed sync fails the callers that waited for it, and only them.
 */
export class SyncAfter {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** syncs started so far (for tests and metrics) */
  started = 0;

  constructor(private readonly sync: () => Promise<void>) {}

  after(): Promise<void> {
    if (this.queued) return this.queued;
    const running = this.running;
    if (!running) return this.start();
    const queued = running.then(noop, noop).then(() => {
      this.queued = undefined;
      return this.start();
    });
    this.queued = queued;
    return queued;
  }

  /** Resolves when no sync runs or waits to run. */
  async idle(): Promise<void> {
    while (this.running || this.queued) await Promise.all([this.running, this.queued]).catch(noop);
  }

  private start(): Promise<void> {
    this.started++;
    let running: Promise<void>;
    try {
      running = this.sync();
    } catch (err) {
      running = Promise.reject(err);
    }
    this.running = running;
    void running.then(noop, noop).then(() => {
      if (this.running === running) this.running = undefined;
    });
    return running;
  }
}

function noop(): void {}
