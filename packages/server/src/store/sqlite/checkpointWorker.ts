/**
 * The checkpointer's thread (checkpointer.ts): a connection of its own to the store's file that copies the WAL into
 * the file when asked, with `wal_checkpoint(PASSIVE)`, which never waits for the writer nor makes it wait. Under
 * `synchronous = NORMAL` SQLite syncs the WAL before it copies and the file after, as it does for its own checkpoints.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort;
if (!port) throw new Error('checkpointWorker runs as a worker thread');
const db = new Database((workerData as { path: string }).path, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 0');

port.on('message', (message: unknown) => {
  if (message === 'close') {
    db.close();
    port.close();
    return;
  }
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    port.postMessage({ busy: row?.busy ?? 1, log: row?.log ?? -1, checkpointed: row?.checkpointed ?? -1 });
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
