/**
 * Checkpoints of the SQLite store's WAL on a thread of their own (checkpointWorker.ts).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on the event loop: it syncs the WAL,
 * copies a thousand pages into the file and syncs the file. Under checkout + check-in that was one COMMIT in twenty,
 * 2-8 ms each, half of all the time spent in COMMITs (docs/performance.md). Here another connection copies the pages
 * while the store goes on writing (`pass`); the WAL can start over only once every page in it is in the file, so when
 * it is long the store stops starting transactions for one last short pass (`SqliteStore.drain`), and the next
 * transaction writes the WAL from its start. The event loop serves everything else meanwhile.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { Worker } from 'node:worker_threads';

/** One pass's answer: the frames in the WAL and how many of them are now in the file (SQLite's `wal_checkpoint`). */
export interface Pass {
  /** 1 when another connection's checkpoint was under way (nothing done) */
  busy: number;
  log: number;
  checkpointed: number;
}

export class Checkpointer {
  private readonly worker: Worker;
  private waiting: { resolve(pass: Pass): void; reject(err: Error): void }[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;
  /** passes ended so far (for tests) */
  passes = 0;

  private shm: number | undefined;
  private readonly header = Buffer.alloc(4);

  constructor(
    private readonly path: string,
    /** called once if the thread fails or exits unasked: the store checkpoints on its own again */
    private readonly onFailure: (err: Error) => void,
  ) {
    this.worker = new Worker(new URL('./checkpointWorker.js', import.meta.url), { workerData: { path } });
    this.worker.unref();
    this.worker.on('message', (m: Pass | { error: string }) => {
      const w = this.waiting.shift();
      // Idle, the thread does not keep the process alive; a pass under way does (someone waits for it).
      if (this.waiting.length === 0) this.worker.unref();
      this.passes++;
      if ('error' in m) {
        // A checkpoint that fails (an I/O error) is not retried here: SQLite's own takes over, in the COMMITs.
        const err = new Error(`checkpoint thread: ${m.error}`);
        w?.reject(err);
        this.fail(err);
        void this.worker.terminate();
      } else w?.resolve(m);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`checkpoint thread exited (${code})`)));
  }

  /**
   * The WAL's length in pages now: `mxFrame` of the WAL-index header at the start of the -shm file (offset 16, in the
   * host's byte order; sqlite.org/walformat.html), which every commit updates. One read of 4 bytes.
   */
  walFrames(): number {
    if (this.failed) throw this.failed;
    this.shm ??= openSync(`${this.path}-shm`, 'r');
    readSync(this.shm, this.header, 0, 4, 16);
    return endianness() === 'LE' ? this.header.readUInt32LE(0) : this.header.readUInt32BE(0);
  }

  /** A pass that starts after every pass asked before it has ended (so after the writes committed before the call). */
  pass(): Promise<Pass> {
    const next = this.tail.then(
      () =>
        new Promise<Pass>((resolve, reject) => {
          if (this.failed) return reject(this.failed);
          this.waiting.push({ resolve, reject });
          this.worker.ref();
          this.worker.postMessage('pass');
        }),
    );
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Ends the thread once the passes already asked of it are answered; passes asked after this are refused. */
  async close(): Promise<void> {
    if (!this.failed) {
      const closed = new Error('closed');
      this.failed = closed;
      const exited = new Promise((resolve) => this.worker.once('exit', resolve));
      this.worker.ref();
      this.worker.postMessage('close');
      await exited;
      for (const w of this.waiting.splice(0)) w.reject(closed);
    }
    this.closeShm();
  }

  private closeShm(): void {
    if (this.shm !== undefined) closeSync(this.shm);
    this.shm = undefined;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.closeShm();
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.onFailure(err);
  }
}
