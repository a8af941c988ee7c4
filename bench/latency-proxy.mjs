#!/usr/bin/env node
// A TCP proxy that delays every byte by a fixed time each way, in order: the database as if across a network
// (bench/run.mjs --db-latency MS starts one between floatd and PostgreSQL, which measures and prints the round trip
// it makes). It runs in its own process, so its work is not the load generator's. Node's timers have millisecond
// granularity: a chunk leaves at the first timer tick at or after its due time, so each way takes MS or a little more.
//   node bench/latency-proxy.mjs <listen-port|0> <target-host> <target-port> <one-way-ms>
// prints "listening on http://127.0.0.1:<port>" once it listens (the line bench/run.mjs waits for, as for floatd's).
import { connect, createServer } from 'node:net';

const [listen, host, port, oneWayMs] = process.argv.slice(2);
const oneWay = Number(oneWayMs);

/** Forwards `from` to `to`, each chunk `oneWay` ms after it arrived, in arrival order. */
function delayed(from, to) {
  const queue = [];
  let timer = null;
  // A timer fires on the loop's millisecond clock, up to a millisecond off `performance.now()`: chunks due within
  // half a millisecond go now, so that two chunks sent together (the driver writes a large batch in parts) are not
  // split across two ticks, a delay no network adds.
  const drain = () => {
    timer = null;
    const now = performance.now();
    while (queue.length && queue[0].due <= now + 0.5) to.write(queue.shift().chunk);
    if (queue.length) timer = setTimeout(drain, Math.max(1, queue[0].due - now));
  };
  from.on('data', (chunk) => {
    queue.push({ due: performance.now() + oneWay, chunk });
    if (timer === null) timer = setTimeout(drain, oneWay);
  });
  from.on('end', () => {
    const finish = () => (queue.length ? setTimeout(finish, oneWay) : to.end());
    finish();
  });
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port: Number(port), noDelay: true });
  const drop = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  delayed(client, upstream);
  delayed(upstream, client);
});
server.listen(Number(listen), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
