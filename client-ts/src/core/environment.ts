/**
 * WebSocketLike is the part of the browser `WebSocket` the client uses. The
 * browser's class, the `ws` package's class and the e2e engine's shim all
 * fit it; the client only sets the `on*` handler properties.
 */
export interface WebSocketLike {
  /** readyState is 1 (OPEN) when frames can be sent. */
  readonly readyState: number;
  /** protocol is the subprotocol the server selected. */
  readonly protocol?: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** WebSocketConstructor builds a WebSocketLike for a URL and subprotocols. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** TimerHandle is whatever the injected timer functions return. */
export type TimerHandle = unknown;

/**
 * Timers are the four timer functions the client schedules with. Tests pass
 * fake ones; the e2e engine passes timers driven by its Go host.
 */
export interface Timers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

/** WEBSOCKET_OPEN is the readyState of an open socket. */
export const WEBSOCKET_OPEN = 1;

/**
 * globalTimers returns the global timer functions, looked up at call time so
 * that fake timers installed after the client was built still apply.
 */
export function globalTimers(): Timers {
  return {
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    setInterval: (callback, ms) => globalThis.setInterval(callback, ms),
    clearInterval: (handle) => globalThis.clearInterval(handle as ReturnType<typeof setInterval>),
  };
}

/** globalWebSocket returns the global WebSocket class, or undefined (SSR, Node 20, QuickJS). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof candidate === "function" ? (candidate as WebSocketConstructor) : undefined;
}

/**
 * watchWakeUps calls wake when the page comes back online or becomes
 * visible, where the runtime has those events, and returns a function that
 * stops watching. Without `addEventListener` (QuickJS, workers without a
 * document) it does nothing.
 */
export function watchWakeUps(wake: () => void): () => void {
  const target = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
    document?: {
      visibilityState?: string;
      addEventListener?: (type: string, listener: () => void) => void;
      removeEventListener?: (type: string, listener: () => void) => void;
    };
  };
  const onVisible = () => {
    if (target.document?.visibilityState === "visible") wake();
  };
  const hasWindow = typeof target.addEventListener === "function";
  const doc = target.document;
  const hasDocument = typeof doc?.addEventListener === "function";
  if (hasWindow) target.addEventListener!("online", wake);
  if (hasDocument) doc!.addEventListener!("visibilitychange", onVisible);
  return () => {
    if (hasWindow) target.removeEventListener?.("online", wake);
    if (hasDocument) doc!.removeEventListener?.("visibilitychange", onVisible);
  };
}
