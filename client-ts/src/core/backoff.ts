/** BackoffOptions shape the reconnect delays. */
export interface BackoffOptions {
  /** initialMs is the cap of the first delay. Default 500. */
  initialMs?: number;
  /** maxMs is the largest delay ever waited. Default 30000. */
  maxMs?: number;
}

/** DEFAULT_BACKOFF holds the defaults of {@link BackoffOptions}. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 500, maxMs: 30_000 };

/**
 * backoffDelay returns the delay before reconnect attempt `attempt` (0 for
 * the first): capped exponential backoff with full jitter, a uniform draw
 * in [0, min(maxMs, initialMs·2^attempt)). `random` returns [0, 1).
 */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>, random: () => number): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}
