#!/usr/bin/env node
// Cost of writing the SDK's trusted time (issue 12, item 5): what one persist does, timed N times in a row
// on a real state directory (default: the OS temporary directory; pass another directory to measure its disk).
//   npm run build && node packages/client/bench/persist.mjs [dir] [N]
// Prints the mean and the 50th/99th percentile per operation. Each write is a sealed JSON file written to a
// temporary file, fsync'd, and renamed over the old one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDir } from '../dist/state.js';

const base = process.argv[2] ?? tmpdir();
const N = Number(process.argv[3] ?? 1000);
const root = await mkdtemp(join(base, 'floatd-persist-bench-'));
try {
  const state = new StateDir(root, 'https://licenses.example.com', 'ABCDE-FGHJK-MNPQR-STVWX-YZ012', 'bench-device-fingerprint');
  await state.ensure();
  const token = 'x'.repeat(700); // about the size of an offline lease token
  await state.writeSealed('offline.json', { token, receivedAt: Date.now(), trustedAt: Date.now() });

  const cases = {
    // one clock.json write: what a persist costs with no offline token
    'write clock.json (async)': async (t) => state.writeSealed('clock.json', { t }),
    // the full persist while a seat is borrowed: read clock.json, write it, read offline.json, write it
    'persist with an offline token (async: 2 reads, 2 writes)': async (t) => {
      await state.readSealed('clock.json');
      await state.writeSealed('clock.json', { t });
      const off = await state.readSealed('offline.json');
      await state.writeSealed('offline.json', { ...off.data, trustedAt: t });
    },
    // the process exit handler's version
    'persist at exit (sync: 2 reads, 2 writes)': (t) => {
      state.readSealedSync('clock.json');
      state.writeSealedSync('clock.json', { t });
      const off = state.readSealedSync('offline.json');
      state.writeSealedSync('offline.json', { ...off.data, trustedAt: t });
    },
  };
  console.log(`${N} runs each in ${root} (node ${process.version})`);
  for (const [name, fn] of Object.entries(cases)) {
    for (let i = 0; i < 20; i++) await fn(Date.now()); // warm-up
    const ms = [];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const s = performance.now();
      await fn(Date.now());
      ms.push(performance.now() - s);
    }
    const total = performance.now() - t0;
    ms.sort((a, b) => a - b);
    const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(3);
    console.log(`${name}: total ${total.toFixed(0)} ms, mean ${(total / N).toFixed(3)} ms, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
