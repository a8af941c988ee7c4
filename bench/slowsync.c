/*
 * A slow disk for the bench (bench/run.mjs --slow-sync MS): preloaded into the floatd processes, it makes every
 * fsync and fdatasync take MS milliseconds longer (SLOW_SYNC_US microseconds), as on a spinning disk or a network
 * volume, so that what a sync on the event loop costs the other requests can be measured on a machine whose disk
 * syncs in a fraction of a millisecond. Built by the bench with the system's C compiler.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void pause_after_sync(void) {
  const char *e = getenv("SLOW_SYNC_US");
  long us = e ? atol(e) : 0;
  struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
  if (us > 0) nanosleep(&ts, NULL);
}

/* The libc function `name`, then the pause. */
#define SLOWED(name)                                                  \
  int name(int fd) {                                                  \
    static int (*real)(int);                                          \
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, #name);          \
    int r = real(fd);                                                 \
    pause_after_sync();                                               \
    return r;                                                         \
  }

SLOWED(fsync)
SLOWED(fdatasync)
