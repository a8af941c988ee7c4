/**
 * Calls made in one turn of the event loop, answered by one piece of work (issue #17: on PostgreSQL every
 * heartbeat's read was its own statement, and a node spent about a fifth of its time writing statements to the
 * database's sockets, one write per statement, with the database waking for each).
 *
 * `call(item)` queues the item; the queue is run with `setImmediate`, after the current turn has parsed every
 * request that arrived together, so a call waits for at most one turn of the loop. Up to `max` items go to one
 * `run`, which answers each item in the order given: a value, or an `Error` for that item alone. A `run` that
 * throws fails every item of its batch.
 */
export class TickBatch<In, Out> {
  private queue: { item: In; resolve: (value: Out) => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: readonly In[]) => Promise<readonly (Out | Error)[]>,
    private readonly max = 256,
  ) {}

  call(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += this.max) void this.runBatch(all.slice(i, i + this.max));
  }

  private async runBatch(batch: typeof this.queue): Promise<void> {
    try {
      const out = await this.run(batch.map((b) => b.item));
      if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} got ${out.length} answers`);
      batch.forEach((b, i) => {
        const answer = out[i] as Out | Error;
        if (answer instanceof Error) b.reject(answer);
        else b.resolve(answer);
      });
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}
