// An older floatd, built, for `npm run bench -- --before DIR` (issue #17: every figure before and after, in the same
// run). It checks the revision out into DIR as a git worktree, gives it this checkout's installed packages (node_modules
// linked, @floatd/* pointing at DIR's own packages) and compiles its protocol and server packages:
//   node bench/before.mjs <revision> [DIR]      (DIR defaults to $TMPDIR/floatd-before-<revision>)
// then: npm run bench -- --write --before DIR. The packages are this checkout's, so a revision whose dependencies
// differ in a way its code notices will not build or run; the revisions since 2026-11-24 (31c65d0, the build issue #17
// was measured on) do.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [rev, dirArg] = process.argv.slice(2);
if (!rev) {
  console.error('usage: node bench/before.mjs <revision> [DIR]');
  process.exit(2);
}
const git = (...a) => execFileSync('git', ['-C', root, ...a], { encoding: 'utf8' }).trim();
const sha = git('rev-parse', '--short', `${rev}^{commit}`);
const dir = dirArg ?? join(tmpdir(), `floatd-before-${sha}`);
if (existsSync(dir)) {
  git('worktree', 'remove', '--force', dir);
  rmSync(dir, { recursive: true, force: true });
}
git('worktree', 'add', '--force', '--detach', dir, sha);

// This checkout's packages, except floatd's own, which are DIR's.
const modules = join(dir, 'node_modules');
mkdirSync(join(modules, '@floatd'), { recursive: true });
for (const name of readdirSync(join(root, 'node_modules'))) {
  if (name !== '@floatd') symlinkSync(join(root, 'node_modules', name), join(modules, name));
}
for (const pkg of readdirSync(join(dir, 'packages'))) {
  symlinkSync(join(dir, 'packages', pkg), join(modules, '@floatd', pkg));
  const own = join(root, 'packages', pkg, 'node_modules');
  if (existsSync(own) && !existsSync(join(dir, 'packages', pkg, 'node_modules')))
    symlinkSync(own, join(dir, 'packages', pkg, 'node_modules'));
}
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/protocol', 'packages/server'], {
  cwd: dir,
  stdio: 'inherit',
});
if (!existsSync(join(dir, 'packages/server/dist/cli.js'))) throw new Error(`${sha} built no packages/server/dist/cli.js`);
console.log(`${sha} built in ${dir}\nnpm run bench -- --write --before ${dir}`);
