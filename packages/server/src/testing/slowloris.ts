/**
 * A connection flood from one address, as issue #24 describes it: `count`
 * sockets from `from` each send a partial request head and then one header
 * byte every `dripMs`; a socket that is closed is opened again. Run as a child
 * process (`node dist/testing/slowloris.js <url> <from> <count> <dripMs> <seconds>`)
 * so that its own descriptor limit can be raised apart from the test runner's;
 * prints one JSON summary line when the time is up.
 */
import { connect, type Socket } from 'node:net';

export interface FloodSummary {
  opened: number;
  /** closed by the server after a `503` answer (a cap refused it at once) */
  refused503: number;
  /** closed by the server without an answer (a deadline) */
  closedSilently: number;
  /** refused before connecting (ECONNREFUSED, EMFILE on our side...) */
  errors: number;
  /** sockets open when the time was up */
  openAtEnd: number;
  /** how long the sockets the server closed had been open, ms (max) */
  longestHeldMs: number;
}

export async function flood(url: string, from: string, count: number, dripMs: number, seconds: number): Promise<FloodSummary> {
  const { hostname, port } = new URL(url);
  const s: FloodSummary = { opened: 0, refused503: 0, closedSilently: 0, errors: 0, openAtEnd: 0, longestHeldMs: 0 };
  const live = new Set<Socket>();
  let stopping = false;
  const open = (): void => {
    if (stopping) return;
    const started = Date.now();
    let answered = '';
    const sock = connect({ host: hostname, port: Number(port), localAddress: from });
    let drip: NodeJS.Timeout | undefined;
    sock.on('connect', () => {
      s.opened++;
      live.add(sock);
      sock.write('GET /healthz HTTP/1.1\r\nHost: floatd\r\nX-Slow: ');
      drip = setInterval(() => sock.write('a'), dripMs);
    });
    sock.on('data', (b) => (answered += b.toString('latin1')));
    sock.on('error', () => {
      if (!live.has(sock)) s.errors++;
    });
    sock.on('close', () => {
      clearInterval(drip);
      if (live.delete(sock)) {
        if (answered.startsWith('HTTP/1.1 503')) s.refused503++;
        else s.closedSilently++;
        s.longestHeldMs = Math.max(s.longestHeldMs, Date.now() - started);
      }
      if (!stopping) setTimeout(open, 200).unref();
    });
  };
  for (let i = 0; i < count; i++) {
    open();
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stopping = true;
  s.openAtEnd = live.size;
  for (const sock of live) sock.destroy();
  return s;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/'))) {
  const [url, from, count, dripMs, seconds] = process.argv.slice(2);
  flood(url!, from!, Number(count), Number(dripMs), Number(seconds)).then(
    (s) => {
      process.stdout.write(JSON.stringify(s) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(String(err) + '\n');
      process.exit(1);
    },
  );
}
