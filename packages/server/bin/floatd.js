#!/usr/bin/env node
// The `floatd` command as npm links it. It is committed (not built) so that `npm ci` in a fresh
// clone links it before anything is compiled; it loads the built code, or says how to build it.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('floatd: the server is not built yet: run `npm run build` in the floatd clone first (`npm start` does it too)\n');
  process.exit(1);
}
await import(built.href);
