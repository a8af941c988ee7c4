/**
 * The reclaimer job: the loop that runs the reclaim decision (service/reclaim.ts)
 * every `intervalSeconds` on the node that leads the background jobs
 * (`Leadership`, store/cluster.ts), never two sweeps at once.
 */
import type { Leadership } from '../store/cluster.js';
import type { ReclaimService } from '../service/reclaim.js';

/** The background reclaimer: a sweep every `intervalSeconds` on the leader node, never two at once. */
export function startReclaimer(
  service: ReclaimService,
  intervalSeconds: number,
  onError: (err: unknown) => void,
  leadership: Pick<Leadership, 'isLeader'> = { isLeader: () => true },
): { stop(): Promise<void> } {
  let current: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (leadership.isLeader()) current = service.sweep('reclaimer').catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await current;
    },
  };
}
