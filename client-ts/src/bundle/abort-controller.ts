// esbuild injects this module into dist/ripple-bundle.js (--inject): free
// references to `AbortController` in the bundle (query-core creates one per
// fetch) resolve to the runtime's own class when it has one, and otherwise
// to the small stand-in below. QuickJS has none. Nothing global is changed.

type AbortListener = (event: { type: "abort" }) => void;

/** AbortSignalStandIn is the part of AbortSignal query-core and query functions use. */
class AbortSignalStandIn {
  aborted = false;
  reason: unknown = undefined;
  onabort: AbortListener | null = null;
  readonly #listeners = new Set<AbortListener>();

  addEventListener(type: string, listener: AbortListener): void {
    if (type === "abort") this.#listeners.add(listener);
  }

  removeEventListener(type: string, listener: AbortListener): void {
    if (type === "abort") this.#listeners.delete(listener);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** fire marks the signal aborted once and tells every listener. */
  fire(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error("This operation was aborted");
    const event = { type: "abort" as const };
    this.onabort?.(event);
    for (const listener of [...this.#listeners]) listener(event);
  }
}

/** AbortControllerStandIn aborts its signal. */
class AbortControllerStandIn {
  readonly signal = new AbortSignalStandIn();

  abort(reason?: unknown): void {
    this.signal.fire(reason);
  }
}

const native = (globalThis as unknown as { AbortController?: typeof AbortControllerStandIn }).AbortController;

/** AbortController is the runtime's class, or the stand-in where there is none. */
export const AbortController: typeof AbortControllerStandIn = typeof native === "function" ? native : AbortControllerStandIn;
