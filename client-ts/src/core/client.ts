import {
  Subprotocol,
  type ClientMessage,
  type ErrorMessage,
  type Filter,
  type NotificationPayload,
  type Position,
  type ResyncReason,
  type ServerMessage,
} from "../generated/protocol.js";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import {
  globalTimers,
  globalWebSocket,
  watchWakeUps,
  WEBSOCKET_OPEN,
  type TimerHandle,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./environment.js";
import { subscriptionKey } from "./key.js";

/**
 * ConnectionStatus is the state of the client's one socket: `connecting`
 * (first attempt), `open` (connected, token and subscriptions sent),
 * `reconnecting` (lost; waiting or dialling again), `closed` (not connected
 * and not trying: before the first subscription, after `close()`, or with
 * no WebSocket available, as during server-side rendering).
 */
export type ConnectionStatus = "connecting" | "open" | "reconnecting" | "closed";

/**
 * ClientResyncReason says why a subscription must refetch: a server
 * {@link ResyncReason}, or `reconnect_without_resume` when the client
 * subscribed again after a reconnect without a position to resume from.
 */
export type ClientResyncReason = ResyncReason | "reconnect_without_resume";

/** ChangeInfo is what the client knows about a delivered change besides its payload. */
export interface ChangeInfo {
  /** seq is the change's position in its channel's stream. */
  seq: number;
}

/** SubscribedInfo describes a `subscribed` ack: the subscription is live from here on. */
export interface SubscribedInfo {
  /** epoch is the gateway process's stream epoch. */
  epoch: string;
  /** seq is the channel's seq at the ack. */
  seq: number;
  /**
   * resumed is true when the client resumed from a position of this epoch:
   * missed changes are replayed next, unless the gateway no longer holds
   * them, in which case a `resync` follows.
   */
  resumed: boolean;
}

/** SubscribeOptions name a channel (and filter) and the callbacks that receive its events. */
export interface SubscribeOptions {
  /** channel is the table's channel name, e.g. `projects` or `billing.invoices`. */
  channel: string;
  /** filter restricts the rows delivered; equal filters share one server subscription. */
  filter?: Filter;
  /**
   * onChange receives every row change. A change with `truncated: true` was
   * too large for a notification and could not be hydrated by the gateway:
   * it carries only the key, so the consumer must refetch.
   */
  onChange(change: NotificationPayload, info: ChangeInfo): void;
  /** onResync says changes may have been missed: refetch what this subscription covers. */
  onResync(reason: ClientResyncReason): void;
  /** onStatus receives the client's status changes while subscribed. */
  onStatus?(status: ConnectionStatus): void;
  /**
   * onSubscribed is called when the gateway acknowledges the subscription
   * (again after each reconnect), and at once for a listener that joins a
   * subscription already acknowledged on the current connection.
   */
  onSubscribed?(info: SubscribedInfo): void;
  /** onError receives the gateway's errors about this subscription (e.g. `forbidden`). */
  onError?(error: ErrorMessage): void;
}

/** TokenProvider returns the token to authenticate with, synchronously or not. */
export type TokenProvider = () => string | null | undefined | Promise<string | null | undefined>;

/** HeartbeatOptions time the app-level ping. */
export interface HeartbeatOptions {
  /** intervalMs is the time between pings. Default 25000. */
  intervalMs?: number;
  /** timeoutMs is how long a ping may go unanswered (by any frame) before the socket counts as dead. Default 10000. */
  timeoutMs?: number;
}

/** RealtimeClientOptions configure a {@link RealtimeClient}; only `url` is required. */
export interface RealtimeClientOptions {
  /** url is the gateway's WebSocket endpoint, e.g. `wss://example.com/ws`. */
  url: string;
  /**
   * auth provides the token sent in an `auth` message each time the socket
   * opens. When the token is a JWT with an `exp`, the provider is asked
   * again `tokenRefreshMarginMs` before it expires and the fresh token is
   * sent on the open socket; a socket the gateway closes with 4001
   * (unauthorized or expired) reconnects and asks the provider again.
   */
  auth?: TokenProvider;
  /** tokenRefreshMarginMs is how long before a token's `exp` a fresh one is sent. Default 30000. */
  tokenRefreshMarginMs?: number;
  /** WebSocket is the socket class. Default: the global `WebSocket`; without one the client does nothing. */
  WebSocket?: WebSocketConstructor;
  /** timers schedule backoff and heartbeat. Default: the global timer functions. */
  timers?: Timers;
  /** now is the clock in milliseconds. Default `Date.now`. */
  now?: () => number;
  /** random returns a number in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
  /** backoff shapes the reconnect delays. */
  backoff?: BackoffOptions;
  /** heartbeat times the app-level ping, or `false` to send none. */
  heartbeat?: HeartbeatOptions | false;
  /** resume sends each subscription's last position on reconnect. Default true. */
  resume?: boolean;
  /** onError receives gateway errors, unreadable frames, a failing token provider and throwing callbacks. */
  onError?(error: ErrorMessage | Error): void;
}

/** MAX_TIMER_DELAY_MS is the longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** DEFAULT_HEARTBEAT holds the defaults of {@link HeartbeatOptions}. */
export const DEFAULT_HEARTBEAT: Required<HeartbeatOptions> = { intervalMs: 25_000, timeoutMs: 10_000 };

/** Listener is one subscribe() call's options. */
interface Listener {
  readonly options: SubscribeOptions;
}

/** Subscription is one server-side subscription shared by every listener on its (channel, filter). */
interface Subscription {
  sub: string;
  channel: string;
  filter?: Filter;
  /** listeners hold one entry per subscribe() call (the same options twice count twice). */
  listeners: Set<Listener>;
  /** position is the last point applied, resumed from on reconnect. */
  position?: Position;
  /** ack is the position the latest `subscribed` reported. */
  ack?: Position;
  /** live holds the latest ack's info while the connection that got it is up. */
  live?: SubscribedInfo;
  /** resumeSent is the position sent with the latest subscribe frame. */
  resumeSent?: Position;
  /** sentOn is the connection generation the latest subscribe frame went out on (0: never). */
  sentOn: number;
  /** missedWhileAway is set when a reconnect subscribed again without resuming. */
  missedWhileAway: boolean;
}

/**
 * RealtimeClient holds one WebSocket to the Ripple gateway, shared by every
 * subscription. Subscriptions are reference-counted by (channel, filter):
 * the first listener sends `subscribe`, the last one to leave sends
 * `unsubscribe`. On a lost socket it reconnects with capped exponential
 * backoff and full jitter (reset only after a `subscribed` ack), then
 * subscribes again resuming from the last seq applied; an app-level ping
 * detects sockets that died silently.
 */
export class RealtimeClient {
  readonly #url: string;
  readonly #auth?: TokenProvider;
  readonly #refreshMarginMs: number;
  readonly #WebSocket?: WebSocketConstructor;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #backoff: Required<BackoffOptions>;
  readonly #heartbeat: Required<HeartbeatOptions> | false;
  readonly #resume: boolean;
  readonly #onError?: (error: ErrorMessage | Error) => void;

  readonly #byKey = new Map<string, Subscription>();
  readonly #bySub = new Map<string, Subscription>();
  readonly #statusListeners = new Set<(status: ConnectionStatus) => void>();
  #status: ConnectionStatus = "closed";
  #socket?: WebSocketLike;
  #generation = 0;
  #ready = false;
  #everOpened = false;
  #attempt = 0;
  #subCounter = 0;
  #pingCounter = 0;
  #pingSentAt = 0;
  #roundTripMs?: number;
  #closedByUser = false;
  #reconnectTimer?: TimerHandle;
  #heartbeatTimer?: TimerHandle;
  #pongTimer?: TimerHandle;
  #refreshTimer?: TimerHandle;
  #stopWatchingWakeUps?: () => void;

  /** constructor stores the options; no socket opens before the first subscription or {@link connect}. */
  constructor(options: RealtimeClientOptions) {
    this.#url = options.url;
    this.#auth = options.auth;
    this.#refreshMarginMs = options.tokenRefreshMarginMs ?? 30_000;
    this.#WebSocket = options.WebSocket ?? globalWebSocket();
    this.#timers = options.timers ?? globalTimers();
    this.#now = options.now ?? (() => Date.now());
    this.#random = options.random ?? Math.random;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#heartbeat = options.heartbeat === false ? false : { ...DEFAULT_HEARTBEAT, ...options.heartbeat };
    this.#resume = options.resume ?? true;
    this.#onError = options.onError;
  }

  /** status is the connection's current {@link ConnectionStatus}. */
  get status(): ConnectionStatus {
    return this.#status;
  }

  /** roundTripMs is the latest ping→pong time, once a pong has come back. */
  get roundTripMs(): number | undefined {
    return this.#roundTripMs;
  }

  /** onStatus calls listener on every status change and returns a function that stops it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.#statusListeners.add(listener);
    return () => {
      this.#statusListeners.delete(listener);
    };
  }

  /**
   * subscribe adds a listener for (channel, filter) and returns the function
   * that removes it. Listeners with an equal channel and filter share one
   * server subscription. It opens the socket if none is open (unless
   * {@link close} was called).
   */
  subscribe(options: SubscribeOptions): () => void {
    const listener: Listener = { options };
    const key = subscriptionKey(options.channel, options.filter);
    let subscription = this.#byKey.get(key);
    if (!subscription) {
      subscription = {
        sub: `s${++this.#subCounter}`,
        channel: options.channel,
        filter: options.filter,
        listeners: new Set(),
        sentOn: 0,
        missedWhileAway: false,
      };
      this.#byKey.set(key, subscription);
      this.#bySub.set(subscription.sub, subscription);
      if (this.#ready) this.#sendSubscribe(subscription);
    }
    subscription.listeners.add(listener);
    const live = subscription.live;
    if (live) this.#call(() => options.onSubscribed?.(live));
    const stopStatus = options.onStatus ? this.onStatus((s) => options.onStatus?.(s)) : undefined;
    if (!this.#closedByUser && !this.#socket && this.#reconnectTimer === undefined) this.connect();

    let active = true;
    const owner = subscription;
    return () => {
      if (!active) return;
      active = false;
      stopStatus?.();
      owner.listeners.delete(listener);
      if (owner.listeners.size > 0) return;
      this.#byKey.delete(key);
      this.#bySub.delete(owner.sub);
      if (this.#ready && owner.sentOn === this.#generation) this.#send({ type: "unsubscribe", sub: owner.sub });
    };
  }

  /** connect opens the socket now if it is not open or opening; after {@link close} it starts again. */
  connect(): void {
    this.#closedByUser = false;
    if (this.#socket || this.#reconnectTimer !== undefined || !this.#WebSocket) return;
    this.#stopWatchingWakeUps ??= watchWakeUps(() => this.#wake());
    this.#open();
  }

  /** close closes the socket and stops reconnecting; subscriptions are kept for a later {@link connect}. */
  close(): void {
    this.#closedByUser = true;
    this.#stopWatchingWakeUps?.();
    this.#stopWatchingWakeUps = undefined;
    if (this.#reconnectTimer !== undefined) this.#timers.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const socket = this.#socket;
    this.#dropSocket();
    socket?.close(1000, "client closed");
    this.#everOpened = false;
    this.#attempt = 0;
    this.#setStatus("closed");
  }

  #open(): void {
    const WebSocketClass = this.#WebSocket;
    if (!WebSocketClass) return;
    const generation = ++this.#generation;
    this.#setStatus(this.#everOpened ? "reconnecting" : "connecting");
    let socket: WebSocketLike;
    try {
      socket = new WebSocketClass(this.#url, [Subprotocol]);
    } catch (error) {
      this.#report(asError(error, "open WebSocket"));
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      if (generation === this.#generation) this.#authenticate(generation);
    };
    socket.onmessage = (event) => {
      if (generation === this.#generation) this.#receive(event.data);
    };
    socket.onclose = () => {
      if (generation === this.#generation) this.#lost();
    };
    socket.onerror = () => {
      // A close event follows every error; reconnecting happens there.
    };
  }

  #authenticate(generation: number): void {
    const proceed = (token: string | null | undefined) => {
      if (generation !== this.#generation) return;
      this.#start(token);
    };
    const fail = (error: unknown) => {
      if (generation !== this.#generation) return;
      this.#report(asError(error, "auth token provider"));
      const socket = this.#socket;
      this.#lost();
      socket?.close(1000, "no token");
    };
    if (this.#auth) askToken(this.#auth, proceed, fail);
    else proceed(undefined);
  }

  #start(token: string | null | undefined): void {
    if (token) this.#send({ type: "auth", token });
    this.#scheduleRefresh(token);
    this.#ready = true;
    this.#everOpened = true;
    for (const subscription of this.#bySub.values()) this.#sendSubscribe(subscription);
    this.#startHeartbeat();
    this.#setStatus("open");
  }

  /** scheduleRefresh arms the timer that sends a fresh token before token's exp. */
  #scheduleRefresh(token: string | null | undefined): void {
    if (this.#refreshTimer !== undefined) this.#timers.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const expMs = token ? tokenExpiryMs(token) : undefined;
    if (expMs === undefined || !this.#auth) return;
    const delay = expMs - this.#refreshMarginMs - this.#now();
    // A token already inside the margin is not refreshed in a loop: the
    // gateway closes with 4001 at its exp and the reconnect asks again.
    if (delay <= 0) return;
    const generation = this.#generation;
    // Timers fire at once for delays beyond their 32-bit range (a token valid
    // for weeks): such a token is refreshed early instead, once per range.
    this.#refreshTimer = this.#timers.setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#refresh(generation);
    }, Math.min(delay, MAX_TIMER_DELAY_MS));
  }

  #refresh(generation: number): void {
    const auth = this.#auth;
    if (!auth) return;
    const proceed = (token: string | null | undefined) => {
      if (generation !== this.#generation || !token) return;
      this.#send({ type: "auth", token });
      this.#scheduleRefresh(token);
    };
    askToken(auth, proceed, (error) => this.#report(asError(error, "auth token provider (refresh)")));
  }

  #sendSubscribe(subscription: Subscription): void {
    const resume = this.#resume ? subscription.position : undefined;
    subscription.missedWhileAway = subscription.sentOn !== 0 && resume === undefined;
    subscription.resumeSent = resume;
    subscription.sentOn = this.#generation;
    this.#send({
      type: "subscribe",
      sub: subscription.sub,
      channel: subscription.channel,
      ...(subscription.filter !== undefined && { filter: subscription.filter }),
      ...(resume !== undefined && { resume }),
    });
  }

  #receive(data: unknown): void {
    this.#clearPongTimer();
    const text = typeof data === "string" ? data : String(data);
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let message: ServerMessage;
      try {
        message = JSON.parse(line) as ServerMessage;
      } catch (error) {
        this.#report(asError(error, "unreadable frame"));
        continue;
      }
      this.#dispatch(message);
    }
  }

  #dispatch(message: ServerMessage): void {
    switch (message.type) {
      case "subscribed":
        this.#acknowledged(message.sub, { epoch: message.epoch, seq: message.seq });
        return;
      case "change": {
        const subscription = this.#bySub.get(message.sub);
        if (!subscription) return;
        const position = subscription.position;
        if (position && message.seq > position.seq) subscription.position = { epoch: position.epoch, seq: message.seq };
        for (const listener of [...subscription.listeners]) {
          this.#call(() => listener.options.onChange(message.change, { seq: message.seq }));
        }
        return;
      }
      case "resync": {
        const subscription = this.#bySub.get(message.sub);
        if (!subscription) return;
        const { ack, position } = subscription;
        if (ack && (!position || position.epoch !== ack.epoch || position.seq < ack.seq)) subscription.position = ack;
        this.#resync(subscription, message.reason);
        return;
      }
      case "pong":
        if (message.ref === String(this.#pingCounter)) this.#roundTripMs = this.#now() - this.#pingSentAt;
        return;
      case "error": {
        this.#report(message);
        const subscription = message.sub ? this.#bySub.get(message.sub) : undefined;
        for (const listener of subscription ? [...subscription.listeners] : []) {
          this.#call(() => listener.options.onError?.(message));
        }
        return;
      }
      case "unsubscribed":
        return;
    }
  }

  #acknowledged(sub: string, ack: Position): void {
    const subscription = this.#bySub.get(sub);
    if (!subscription) return;
    this.#attempt = 0;
    subscription.ack = ack;
    const resumed = subscription.resumeSent !== undefined && subscription.resumeSent.epoch === ack.epoch;
    if (!resumed) subscription.position = ack;
    const live: SubscribedInfo = { ...ack, resumed };
    subscription.live = live;
    for (const listener of [...subscription.listeners]) this.#call(() => listener.options.onSubscribed?.(live));
    if (subscription.missedWhileAway) {
      subscription.missedWhileAway = false;
      this.#resync(subscription, "reconnect_without_resume");
    }
  }

  #resync(subscription: Subscription, reason: ClientResyncReason): void {
    for (const listener of [...subscription.listeners]) this.#call(() => listener.options.onResync(reason));
  }

  #startHeartbeat(): void {
    const heartbeat = this.#heartbeat;
    if (!heartbeat) return;
    this.#heartbeatTimer = this.#timers.setInterval(() => this.#ping(), heartbeat.intervalMs);
  }

  #ping(): void {
    const heartbeat = this.#heartbeat;
    if (!heartbeat || !this.#ready || this.#pongTimer !== undefined) return;
    this.#pingSentAt = this.#now();
    this.#send({ type: "ping", ref: String(++this.#pingCounter) });
    this.#pongTimer = this.#timers.setTimeout(() => {
      this.#pongTimer = undefined;
      this.#report(new Error(`heartbeat: no answer within ${heartbeat.timeoutMs} ms; reconnecting`));
      const socket = this.#socket;
      this.#lost();
      socket?.close(4000, "heartbeat timeout");
    }, heartbeat.timeoutMs);
  }

  #clearPongTimer(): void {
    if (this.#pongTimer === undefined) return;
    this.#timers.clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  /**
   * lost forgets the current socket and schedules the next attempt. It runs
   * only for the current socket, and {@link close} has already dropped that.
   */
  #lost(): void {
    this.#dropSocket();
    this.#scheduleReconnect();
  }

  #dropSocket(): void {
    this.#generation++;
    this.#ready = false;
    for (const subscription of this.#bySub.values()) subscription.live = undefined;
    if (this.#heartbeatTimer !== undefined) this.#timers.clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    this.#clearPongTimer();
    if (this.#refreshTimer !== undefined) this.#timers.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
    }
  }

  #scheduleReconnect(): void {
    this.#everOpened = true;
    this.#setStatus("reconnecting");
    const delay = backoffDelay(this.#attempt++, this.#backoff, this.#random);
    this.#reconnectTimer = this.#timers.setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open();
    }, delay);
  }

  /** wake reacts to the page coming back online or visible: dial now instead of waiting, or check the socket. */
  #wake(): void {
    if (this.#reconnectTimer !== undefined) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      this.#open();
      return;
    }
    if (this.#ready) this.#ping();
  }

  #send(message: ClientMessage): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WEBSOCKET_OPEN) return;
    socket.send(JSON.stringify(message));
  }

  #setStatus(status: ConnectionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    for (const listener of [...this.#statusListeners]) this.#call(() => listener(status));
  }

  #call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#report(asError(error, "listener threw"));
    }
  }

  #report(error: ErrorMessage | Error): void {
    this.#onError?.(error);
  }
}

/**
 * tokenExpiryMs reads a JWT's `exp` (in ms) without verifying it; undefined
 * for a token that is not a JWT or has no numeric exp. It needs no `atob`
 * or `TextDecoder`, which some JavaScript engines lack.
 */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(base64UrlToLatin1(payload));
    const exp = typeof claims === "object" && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** base64UrlToLatin1 decodes base64url to one char per byte (enough to JSON.parse an ASCII exp). */
function base64UrlToLatin1(input: string): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const ch of input.replace(/=+$/, "")) {
    const digit = BASE64URL.indexOf(ch === "+" ? "-" : ch === "/" ? "_" : ch);
    if (digit < 0) throw new Error("not base64url");
    value = ((value << 6) | digit) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((value >> bits) & 0xff);
    }
  }
  return out;
}

/** askToken calls provider and hands its token, sync or async, to proceed, or what it threw or rejected with to fail. */
function askToken(
  provider: TokenProvider,
  proceed: (token: string | null | undefined) => void,
  fail: (error: unknown) => void,
): void {
  try {
    const token = provider();
    if (isPromiseLike(token)) token.then(proceed, fail);
    else proceed(token);
  } catch (error) {
    fail(error);
  }
}

function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<T>).then === "function";
}

function asError(error: unknown, context: string): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${context}: ${message}`);
}
