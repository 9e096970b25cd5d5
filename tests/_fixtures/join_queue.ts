// A join queue under test: its budget over an unsent count the test sets by hand, with metrics of
// its own, and joiners that are open, have nothing on their way and ignore sweeps.
import { type Joiner, JoinQueue, type JoinQueueOptions } from "../../src/_join_queue.ts";
import { Metrics } from "../../src/_metrics.ts";

/** A joiner that is open, has no join on its way, and ignores sweeps. */
export const joiner = (): Joiner => ({
  isOpen: true,
  joinInFlight: false,
  sweep() {},
  joined() {},
});

/**
 * A queue of `joinQueueLength` waiters under `maxTotalBufferedBytes`; `unsent` bytes are unsent
 * to start (default 0) and `metrics` its own unless given.
 */
export function budgetQueue(
  maxTotalBufferedBytes: number,
  joinQueueLength: number,
  { unsent = 0, metrics = new Metrics(), ...options }: JoinQueueOptions & {
    unsent?: number;
    metrics?: Metrics;
  } = {},
): { queue: JoinQueue; metrics: Metrics; setUnsent: (bytes: number) => void } {
  const limits = { maxTotalBufferedBytes, joinQueueLength };
  const queue = new JoinQueue(limits, () => unsent, metrics, options);
  return { queue, metrics, setUnsent: (bytes) => void (unsent = bytes) };
}
