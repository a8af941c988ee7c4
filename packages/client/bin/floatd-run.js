#!/usr/bin/env node
// The `floatd-run` command as npm links it. It is committed (not built) so that `npm ci` in a fresh
// clone links it before anything is compiled; it loads the built code, or says how to build it.
import { existsSync } from 'node:fs';

const built = new URL('../dist/run.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('floatd-run: the client is not built yet: run `npm run build` in the floatd clone first\n');
  process.exit(69);
}
await import(built.href);
