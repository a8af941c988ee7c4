// The baseline: a bare node:http server answering a fixed small JSON body. Every scenario is compared with it.
import { createServer } from 'node:http';
const body = JSON.stringify({ ok: true, lease: { id: 'lse_00000000000000000000', expiresAt: '2026-01-01T00:00:00.000Z' } });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
