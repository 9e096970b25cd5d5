/**
 * The one place that calls the hooks (internal): with a deadline, with the
 * result checked by zod, and with every failure turned into a log line naming
 * the callback and a value the caller can answer the client with.
 *
 * @module
 */
import { z } from "zod";
import { errorText } from "./_errors.ts";
import { describeZodError } from "./_zod.ts";
import type { Callbacks, MaybePromise, StaticResult } from "./callbacks.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";

/**
 * The names of the hooks.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { type CallbackName, CallbackRunner } from "./_callback_runner.ts";
 * import { Logger, type LogRecord } from "./log.ts";
 * import { Metrics } from "./_metrics.ts";
 * const lines: LogRecord[] = [];
 * const metrics = new Metrics();
 * const runner = new CallbackRunner(50, new Logger("error", (r) => lines.push(r)), metrics);
 * const name: CallbackName = "getClientId";
 * const ok = await runner.run(name, () => "77", z.string());
 * const late = await runner.run(name, () => new Promise(() => {}), z.string());
 * if (!ok.ok || ok.value !== "77" || late.ok) throw new Error("deadline not kept");
 * if (metrics.callbacks.getClientId.errors !== 1) throw new Error("failure not counted");
 * if (lines[0].message !== "callback getClientId timed out: no answer within 50 ms") {
 *   throw new Error(lines[0].message);
 * }
 * ```
 */
export type CallbackName = keyof Callbacks;

/** Outcome of one guarded callback call. */
export type Guarded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Calls hooks with a deadline and checks what they return. */
export class CallbackRunner {
  #timeoutMs: number;
  #log: Logger;
  #metrics: Metrics;

  /** `timeoutMs` is the deadline for each call. */
  constructor(timeoutMs: number, log: Logger, metrics: Metrics) {
    this.#timeoutMs = timeoutMs;
    this.#log = log;
    this.#metrics = metrics;
  }

  /**
   * Run `call`, wait at most the deadline, and parse its result with `schema`.
   * Never throws; a failure is logged once with the callback's name.
   */
  async run<T>(
    name: CallbackName,
    call: () => MaybePromise<unknown>,
    schema: z.ZodType<T>,
    conn?: string,
  ): Promise<Guarded<T>> {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reason: string;
    try {
      await undefined; // the hook runs after the caller's current turn, as it always has
      const answer = call();
      // A synchronous answer needs no deadline: no timer (and its promise) per call.
      const value = !isThenable(answer) ? answer : await Promise.race([
        answer,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
            this.#timeoutMs,
          );
        }),
      ]);
      const parsed = schema.safeParse(value);
      if (parsed.success) {
        this.#metrics.observeCallback(name, (performance.now() - started) / 1000, false);
        return { ok: true, value: parsed.data };
      }
      reason = `returned the wrong shape (${describeZodError(parsed.error)})`;
    } catch (err) {
      reason = err instanceof Error && err.message.startsWith("no answer within")
        ? `timed out: ${err.message}`
        : `threw: ${errorText(err)}`;
    } finally {
      clearTimeout(timer);
    }
    this.#metrics.observeCallback(name, (performance.now() - started) / 1000, true);
    this.#log.error(`callback ${name} ${reason}`, conn);
    return { ok: false, reason };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
}

/** Schema for `validateDiscordUser` results: strictly a boolean. */
export const validationResultSchema: z.ZodType<boolean> = z.boolean();

/** Schema for `getClientId` results. */
export const clientIdResultSchema: z.ZodType<string | undefined> = z
  .union([z.string().min(1), z.number().int().nonnegative(), z.null(), z.undefined()])
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));

/** Schema for `staticRequest` results. */
export const staticResultSchema: z.ZodType<StaticResult | null | undefined> = z.union([
  z.tuple([z.string().min(1), z.union([z.string(), z.instanceof(Uint8Array)])]),
  z.instanceof(Response),
  z.null(),
  z.undefined(),
]);
