/**
 * A real small file system for disk-full tests: a tmpfs of a few MiB mounted on
 * a temporary directory (needs root or CAP_SYS_ADMIN; `mountSmallDisk` returns
 * undefined where the mount is refused). `fill()` writes a filler file until the
 * kernel answers ENOSPC, so the next write of anything on it fails as on a full
 * disk; `free()` deletes the filler.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  /** Fills the file system to the last byte. Returns the bytes written. */
  fill(): Promise<number>;
  /** Deletes the filler: space returns. */
  free(): Promise<void>;
  unmount(): Promise<void>;
}

export async function mountSmallDisk(sizeMiB = 8): Promise<SmallDisk | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    await rmdir(dir).catch(() => undefined);
    return undefined;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    async fill() {
      const f = await open(filler, 'a');
      let written = 0;
      try {
        // Big blocks first, then smaller ones, down to single bytes: no room is left for anyone.
        for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
          const block = Buffer.alloc(size, 0x55);
          for (;;) {
            try {
              const { bytesWritten } = await f.write(block);
              written += bytesWritten;
              if (bytesWritten < size) break;
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
      } finally {
        await f.close();
      }
      return written;
    },
    async free() {
      await unlink(filler).catch(() => undefined);
    },
    async unmount() {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
