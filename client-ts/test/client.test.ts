import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF } from "../src/core/backoff.js";
import { RealtimeClient, type ConnectionStatus, type RealtimeClientOptions, type SubscribeOptions } from "../src/core/client.js";
import { globalTimers, type Timers } from "../src/core/environment.js";
import type { NotificationPayload } from "../src/generated/protocol.js";
import { fakeSockets, type FakeSocket } from "./fakeSocket.js";

const URL_ = "ws://gateway.test/ws";
const insert = (id: number): NotificationPayload => ({ op: "INSERT", table: "projects", new: { id, name: `p${id}` } });

function setup(options: Partial<RealtimeClientOptions> = {}) {
  const fake = fakeSockets();
  const errors: unknown[] = [];
  const client = new RealtimeClient({ url: URL_, WebSocket: fake.WebSocket, onError: (e) => errors.push(e), ...options });
  return { client, errors, ...fake };
}

function listener(overrides: Partial<Omit<SubscribeOptions, "onChange" | "onResync">> & { onChange?: SubscribeOptions["onChange"] } = {}) {
  return {
    channel: "projects",
    onResync: vi.fn<SubscribeOptions["onResync"]>(),
    ...overrides,
    onChange: vi.fn<SubscribeOptions["onChange"]>(overrides.onChange),
  };
}

/** recordingDelays returns the global (fake) timers, recording every setTimeout delay in `delays`. */
function recordingDelays(delays: number[]): Timers {
  return {
    ...globalTimers(),
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return setTimeout(fn, ms);
    },
  };
}

/** openAndAck opens the socket and acknowledges every subscribe sent on it. */
function openAndAck(socket: FakeSocket, epoch = "e1", seq = 0) {
  socket.open();
  for (const m of socket.sentOfType("subscribe")) socket.receive({ type: "subscribed", sub: m.sub, channel: m.channel, epoch, seq });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("RealtimeClient connection", () => {
  it("opens one socket lazily, offering the ripple.v1 subprotocol", () => {
    const { client, sockets } = setup();
    expect(sockets).toHaveLength(0);
    expect(client.status).toBe("closed");
    client.subscribe(listener());
    client.subscribe(listener({ channel: "extraction_jobs" }));
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.url).toBe(URL_);
    expect(sockets[0]!.protocols).toEqual(["ripple.v1"]);
    expect(client.status).toBe("connecting");
    sockets[0]!.open();
    expect(client.status).toBe("open");
    expect(sockets[0]!.sentOfType("subscribe").map((m) => m.channel)).toEqual(["projects", "extraction_jobs"]);
  });

  it("sends a synchronous token before the subscriptions", () => {
    const { client, last } = setup({ auth: () => "tok-1" });
    client.subscribe(listener());
    last().open();
    expect(last().sent().map((m) => m.type)).toEqual(["auth", "subscribe"]);
    expect(last().sentOfType("auth")[0]!.token).toBe("tok-1");
  });

  it("waits for an asynchronous token, and asks again on every connection", async () => {
    let n = 0;
    const { client, last } = setup({ auth: async () => `tok-${++n}`, random: () => 0 });
    client.subscribe(listener());
    last().open();
    expect(last().sent()).toEqual([]);
    expect(client.status).toBe("connecting");
    await vi.advanceTimersByTimeAsync(0);
    expect(last().sent().map((m) => m.type)).toEqual(["auth", "subscribe"]);
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().sentOfType("auth")[0]!.token).toBe("tok-2");
  });

  it("reports a failing token provider and reconnects", async () => {
    const { client, sockets, errors } = setup({
      auth: () => Promise.reject(new Error("expired")),
      random: () => 0,
    });
    client.subscribe(listener());
    sockets[0]!.open();
    await vi.advanceTimersByTimeAsync(0);
    expect(String(errors[0])).toContain("auth token provider: expired");
    expect(sockets[0]!.closedWith).toBeDefined();
    expect(client.status).toBe("reconnecting");
    expect(sockets).toHaveLength(2);
  });

  it("does nothing without a WebSocket (server-side rendering)", () => {
    vi.stubGlobal("WebSocket", undefined);
    const client = new RealtimeClient({ url: URL_ });
    const unsubscribe = client.subscribe(listener());
    client.connect();
    expect(client.status).toBe("closed");
    unsubscribe();
    expect(client.status).toBe("closed");
  });

  it("reports every status change to listeners", async () => {
    const { client, last } = setup({ random: () => 0 });
    const seen: ConnectionStatus[] = [];
    const perSubscription: ConnectionStatus[] = [];
    client.onStatus((s) => seen.push(s));
    client.subscribe(listener({ onStatus: (s) => perSubscription.push(s) }));
    last().open();
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    last().open();
    client.close();
    expect(seen).toEqual(["connecting", "open", "reconnecting", "open", "closed"]);
    expect(perSubscription).toEqual(seen);
  });

  it("close() stops reconnecting; connect() starts again and subscribes again", async () => {
    const { client, sockets } = setup({ random: () => 0.5 });
    client.subscribe(listener());
    sockets[0]!.open();
    sockets[0]!.drop();
    client.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(1);
    expect(client.status).toBe("closed");
    client.connect();
    expect(sockets).toHaveLength(2);
    sockets[1]!.open();
    expect(sockets[1]!.sentOfType("subscribe")).toHaveLength(1);
  });

  it("splits frames on newlines, skips blank lines and reports unreadable ones", () => {
    const { client, last, errors } = setup();
    const l = listener();
    client.subscribe(l);
    openAndAck(last());
    const sub = last().sentOfType("subscribe")[0]!.sub;
    last().receiveRaw(
      [
        JSON.stringify({ type: "change", sub, seq: 1, change: insert(1) }),
        "",
        "{not json",
        JSON.stringify({ type: "change", sub, seq: 2, change: insert(2) }),
      ].join("\n"),
    );
    expect(l.onChange.mock.calls.map((c) => c[1].seq)).toEqual([1, 2]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain("unreadable frame");
  });
});

describe("RealtimeClient shared subscriptions", () => {
  it("shares one server subscription between equal (channel, filter) pairs", () => {
    const { client, last } = setup();
    const a = listener({ filter: { column: "project_id", op: "eq", value: 7 } });
    const b = listener({ filter: { value: 7, op: "eq", column: "project_id" } });
    const stopA = client.subscribe(a);
    const stopB = client.subscribe(b);
    openAndAck(last());
    expect(last().sentOfType("subscribe")).toHaveLength(1);
    const sub = last().sentOfType("subscribe")[0]!.sub;
    last().receive({ type: "change", sub, seq: 1, change: insert(1) });
    expect(a.onChange).toHaveBeenCalledTimes(1);
    expect(b.onChange).toHaveBeenCalledTimes(1);

    stopA();
    stopA();
    expect(last().sentOfType("unsubscribe")).toHaveLength(0);
    last().receive({ type: "change", sub, seq: 2, change: insert(2) });
    expect(a.onChange).toHaveBeenCalledTimes(1);
    expect(b.onChange).toHaveBeenCalledTimes(2);

    stopB();
    expect(last().sentOfType("unsubscribe")).toEqual([{ type: "unsubscribe", sub }]);
    last().receive({ type: "change", sub, seq: 3, change: insert(3) });
    expect(b.onChange).toHaveBeenCalledTimes(2);
  });

  it("tells listeners when the subscription is live, and late joiners at once", async () => {
    const { client, sockets } = setup({ random: () => 0 });
    const first = vi.fn();
    const late = vi.fn();
    client.subscribe(listener({ onSubscribed: first }));
    sockets[0]!.open();
    expect(first).not.toHaveBeenCalled();
    const sub = sockets[0]!.sentOfType("subscribe")[0]!.sub;
    sockets[0]!.receive({ type: "subscribed", sub, channel: "projects", epoch: "e1", seq: 3 });
    expect(first).toHaveBeenCalledExactlyOnceWith({ epoch: "e1", seq: 3, resumed: false });
    client.subscribe(listener({ onSubscribed: late }));
    expect(late).toHaveBeenCalledExactlyOnceWith({ epoch: "e1", seq: 3, resumed: false });
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    openAndAck(sockets[1]!, "e1", 5);
    expect(first).toHaveBeenLastCalledWith({ epoch: "e1", seq: 5, resumed: true });
    expect(late).toHaveBeenCalledTimes(2);
  });

  it("counts the same options object subscribed twice as two listeners", () => {
    const { client, last } = setup();
    const l = listener();
    const stopFirst = client.subscribe(l);
    const stopSecond = client.subscribe(l);
    openAndAck(last());
    const sub = last().sentOfType("subscribe")[0]!.sub;
    last().receive({ type: "change", sub, seq: 1, change: insert(1) });
    expect(l.onChange).toHaveBeenCalledTimes(2);
    stopFirst();
    last().receive({ type: "change", sub, seq: 2, change: insert(2) });
    expect(l.onChange).toHaveBeenCalledTimes(3);
    expect(last().sentOfType("unsubscribe")).toHaveLength(0);
    stopSecond();
    expect(last().sentOfType("unsubscribe")).toHaveLength(1);
  });

  it("keeps different filters apart", () => {
    const { client, last } = setup();
    client.subscribe(listener({ filter: { column: "project_id", op: "eq", value: 1 } }));
    client.subscribe(listener({ filter: { column: "project_id", op: "eq", value: 2 } }));
    client.subscribe(listener());
    last().open();
    const subs = last().sentOfType("subscribe");
    expect(subs).toHaveLength(3);
    expect(new Set(subs.map((s) => s.sub)).size).toBe(3);
    expect(subs[0]!.filter).toEqual({ column: "project_id", op: "eq", value: 1 });
    expect(subs[2]!.filter).toBeUndefined();
  });

  it("subscribes at once when the socket is already open, with a fresh id after an unsubscribe", () => {
    const { client, last } = setup();
    const stop = client.subscribe(listener());
    openAndAck(last());
    stop();
    client.subscribe(listener());
    const subs = last().sentOfType("subscribe");
    expect(subs).toHaveLength(2);
    expect(subs[1]!.sub).not.toBe(subs[0]!.sub);
  });

  it("does not send unsubscribe for a subscription that never reached the server", () => {
    const { client, last } = setup();
    const stop = client.subscribe(listener());
    stop();
    last().open();
    expect(last().sent()).toEqual([]);
  });

  it("routes errors about a subscription to its listeners and keeps going when a listener throws", () => {
    const { client, last, errors } = setup();
    const bad = listener({
      onChange: vi.fn(() => {
        throw new Error("boom");
      }),
      onError: vi.fn(),
    });
    const good = listener();
    client.subscribe(bad);
    client.subscribe(good);
    openAndAck(last());
    const sub = last().sentOfType("subscribe")[0]!.sub;
    last().receive({ type: "change", sub, seq: 1, change: insert(1) }, { type: "error", code: "forbidden", message: "no", sub });
    expect(good.onChange).toHaveBeenCalledTimes(1);
    expect(bad.onError).toHaveBeenCalledWith({ type: "error", code: "forbidden", message: "no", sub });
    expect(errors.map(String)).toContain("Error: listener threw: boom");
  });
});

describe("RealtimeClient resume", () => {
  it("resubscribes with the same ids, resuming from the last seq applied", async () => {
    const { client, sockets } = setup({ random: () => 0 });
    const l = listener();
    client.subscribe(l);
    client.subscribe(listener({ channel: "extraction_jobs" }));
    openAndAck(sockets[0]!, "epoch-A", 10);
    const [projects, jobs] = sockets[0]!.sentOfType("subscribe");
    sockets[0]!.receive(
      { type: "change", sub: projects!.sub, seq: 11, change: insert(11) },
      { type: "change", sub: projects!.sub, seq: 12, change: insert(12) },
    );
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    sockets[1]!.open();
    expect(sockets[1]!.sentOfType("subscribe")).toEqual([
      { type: "subscribe", sub: projects!.sub, channel: "projects", resume: { epoch: "epoch-A", seq: 12 } },
      { type: "subscribe", sub: jobs!.sub, channel: "extraction_jobs", resume: { epoch: "epoch-A", seq: 10 } },
    ]);
    // The replay follows the ack; position keeps advancing from it.
    sockets[1]!.receive(
      { type: "subscribed", sub: projects!.sub, channel: "projects", epoch: "epoch-A", seq: 14 },
      { type: "change", sub: projects!.sub, seq: 13, change: insert(13) },
      { type: "change", sub: projects!.sub, seq: 14, change: insert(14) },
    );
    expect(l.onChange.mock.calls.map((c) => c[1].seq)).toEqual([11, 12, 13, 14]);
    expect(l.onResync).not.toHaveBeenCalled();
    sockets[1]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    sockets[2]!.open();
    expect(sockets[2]!.sentOfType("subscribe")[0]!.resume).toEqual({ epoch: "epoch-A", seq: 14 });
  });

  it("passes a server resync on and resumes from the ack afterwards", async () => {
    const { client, sockets } = setup({ random: () => 0 });
    const l = listener();
    client.subscribe(l);
    openAndAck(sockets[0]!, "epoch-A", 5);
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    sockets[1]!.open();
    const sub = sockets[1]!.sentOfType("subscribe")[0]!.sub;
    sockets[1]!.receive(
      { type: "subscribed", sub, channel: "projects", epoch: "epoch-B", seq: 40 },
      { type: "resync", sub, reason: "epoch_changed" },
    );
    expect(l.onResync).toHaveBeenCalledExactlyOnceWith("epoch_changed");
    sockets[1]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    sockets[2]!.open();
    expect(sockets[2]!.sentOfType("subscribe")[0]!.resume).toEqual({ epoch: "epoch-B", seq: 40 });
  });

  it("reports a reconnect without resume as a resync once the server acknowledges", async () => {
    const { client, sockets } = setup({ random: () => 0, resume: false });
    const l = listener();
    client.subscribe(l);
    openAndAck(sockets[0]!, "epoch-A", 5);
    expect(l.onResync).not.toHaveBeenCalled();
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    sockets[1]!.open();
    expect(sockets[1]!.sentOfType("subscribe")[0]!.resume).toBeUndefined();
    expect(l.onResync).not.toHaveBeenCalled();
    openAndAck(sockets[1]!, "epoch-A", 9);
    expect(l.onResync).toHaveBeenCalledExactlyOnceWith("reconnect_without_resume");
  });

  it("treats a subscription lost before its ack as a reconnect without resume", async () => {
    const { client, sockets } = setup({ random: () => 0 });
    const l = listener();
    client.subscribe(l);
    sockets[0]!.open();
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(0);
    openAndAck(sockets[1]!);
    expect(sockets[1]!.sentOfType("subscribe")[0]!.resume).toBeUndefined();
    expect(l.onResync).toHaveBeenCalledExactlyOnceWith("reconnect_without_resume");
  });
});

describe("RealtimeClient backoff", () => {
  it("backoffDelay stays within [0, min(max, initial·2^n)) and spreads with the jitter", () => {
    const options = { initialMs: 100, maxMs: 5_000 };
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5_000, 100 * 2 ** attempt);
      expect(backoffDelay(attempt, options, () => 0)).toBe(0);
      expect(backoffDelay(attempt, options, () => 0.999999)).toBe(ceiling - 1);
      expect(backoffDelay(attempt, options, () => 0.5)).toBe(Math.floor(ceiling / 2));
    }
    expect(backoffDelay(1e6, DEFAULT_BACKOFF, () => 0.999999)).toBe(DEFAULT_BACKOFF.maxMs - 1);
  });

  it("waits longer after each failed attempt, capped, and resets only after a subscribed ack", () => {
    const delays: number[] = [];
    const timers = recordingDelays(delays);
    const { client, sockets } = setup({ timers, random: () => 0.999999, backoff: { initialMs: 100, maxMs: 1_000 }, heartbeat: false });
    client.subscribe(listener());
    for (let i = 0; i < 6; i++) {
      sockets[i]!.drop();
      vi.runOnlyPendingTimers();
    }
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);

    // An open socket without an ack does not reset the backoff...
    sockets[6]!.open();
    sockets[6]!.drop();
    vi.runOnlyPendingTimers();
    expect(delays.at(-1)).toBe(999);
    // ...a subscribed ack does.
    openAndAck(sockets[7]!);
    sockets[7]!.drop();
    expect(delays.at(-1)).toBe(99);
  });

  it("draws every delay from the injected random source", () => {
    const delays: number[] = [];
    const draws = [0.1, 0.9, 0.3];
    const timers = recordingDelays(delays);
    const { client, sockets } = setup({ timers, random: () => draws.shift()!, backoff: { initialMs: 1_000, maxMs: 60_000 } });
    client.subscribe(listener());
    for (let i = 0; i < 3; i++) {
      sockets[i]!.drop();
      vi.runOnlyPendingTimers();
    }
    expect(delays).toEqual([100, 1_800, 1_200]);
  });

  it("dials at once when the page comes back online or visible", () => {
    const handlers = new Map<string, () => void>();
    const doc = { visibilityState: "hidden", addEventListener: (t: string, h: () => void) => handlers.set(`doc:${t}`, h), removeEventListener: vi.fn() };
    vi.stubGlobal("addEventListener", (t: string, h: () => void) => handlers.set(t, h));
    vi.stubGlobal("removeEventListener", vi.fn());
    vi.stubGlobal("document", doc);
    const { client, sockets } = setup({ random: () => 0.999999, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    client.subscribe(listener());
    sockets[0]!.drop();
    expect(sockets).toHaveLength(1);
    handlers.get("online")!();
    expect(sockets).toHaveLength(2);
    sockets[1]!.drop();
    handlers.get("doc:visibilitychange")!();
    expect(sockets).toHaveLength(2);
    doc.visibilityState = "visible";
    handlers.get("doc:visibilitychange")!();
    expect(sockets).toHaveLength(3);
    client.close();
    expect(doc.removeEventListener).toHaveBeenCalled();
  });
});

describe("RealtimeClient heartbeat", () => {
  it("pings every interval and treats a missing answer as a dead socket", () => {
    let clock = 1_000;
    const { client, sockets, errors } = setup({ heartbeat: { intervalMs: 1_000, timeoutMs: 500 }, random: () => 0.5, now: () => clock });
    client.subscribe(listener());
    openAndAck(sockets[0]!);
    vi.advanceTimersByTime(1_000);
    const pings = sockets[0]!.sentOfType("ping");
    expect(pings).toHaveLength(1);
    clock += 40;
    sockets[0]!.receive({ type: "pong", ref: pings[0]!.ref });
    expect(client.roundTripMs).toBe(40);
    vi.advanceTimersByTime(1_000);
    expect(sockets[0]!.sentOfType("ping")).toHaveLength(2);
    vi.advanceTimersByTime(499);
    expect(client.status).toBe("open");
    vi.advanceTimersByTime(1);
    expect(client.status).toBe("reconnecting");
    expect(sockets[0]!.closedWith?.code).toBe(4000);
    expect(String(errors.at(-1))).toContain("heartbeat");
    vi.advanceTimersByTime(250);
    expect(sockets).toHaveLength(2);
  });

  it("counts any frame as an answer", () => {
    const { client, sockets } = setup({ heartbeat: { intervalMs: 1_000, timeoutMs: 500 } });
    client.subscribe(listener());
    openAndAck(sockets[0]!);
    const sub = sockets[0]!.sentOfType("subscribe")[0]!.sub;
    for (let i = 1; i <= 5; i++) {
      vi.advanceTimersByTime(1_000);
      sockets[0]!.receive({ type: "change", sub, seq: i, change: insert(i) });
    }
    expect(sockets[0]!.sentOfType("ping")).toHaveLength(5);
    expect(client.status).toBe("open");
    expect(sockets).toHaveLength(1);
  });

  it("sends no ping when disabled", () => {
    const { client, sockets } = setup({ heartbeat: false });
    client.subscribe(listener());
    openAndAck(sockets[0]!);
    vi.advanceTimersByTime(120_000);
    expect(sockets[0]!.sentOfType("ping")).toHaveLength(0);
  });
});

/** jwt returns an unsigned JWT-shaped token whose exp is expMs (client-side decoding never verifies). */
function jwt(expMs: number, extra: Record<string, unknown> = {}): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: "u", exp: Math.floor(expMs / 1000), ...extra })}.c2ln`;
}

describe("RealtimeClient token refresh", () => {
  it("reads exp from a JWT without verifying it, and nothing from other tokens", async () => {
    const { tokenExpiryMs } = await import("../src/core/client.js");
    expect(tokenExpiryMs(jwt(1_700_000_000_000, { name: "Zoë ✓" }))).toBe(1_700_000_000_000);
    expect(tokenExpiryMs("opaque-token")).toBeUndefined();
    expect(tokenExpiryMs("a.@@@.c")).toBeUndefined();
    expect(tokenExpiryMs(`x.${Buffer.from('{"exp":"soon"}').toString("base64url")}.y`)).toBeUndefined();
  });

  it("sends a fresh token on the open socket before the current one expires", async () => {
    let calls = 0;
    const { client, sockets, last } = setup({
      heartbeat: false, // the fake socket answers no pings
      auth: async () => {
        calls++;
        return jwt(Date.now() + 120_000, { n: calls });
      },
    });
    client.subscribe(listener());
    last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().sentOfType("auth")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(89_000); // exp - 30 s margin is at 90 s
    expect(last().sentOfType("auth")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    const auths = last().sentOfType("auth");
    expect(auths).toHaveLength(2);
    expect(tokenN(auths[1]!.token)).toBe(2);
    await vi.advanceTimersByTimeAsync(90_000); // and again before the fresh token's exp
    expect(last().sentOfType("auth")).toHaveLength(3);
    expect(sockets).toHaveLength(1); // no reconnect was needed
  });

  it("stops refreshing when the socket is lost, and asks again on reconnect", async () => {
    let calls = 0;
    const { client, sockets, last } = setup({ auth: () => jwt(Date.now() + 60_000, { n: ++calls }), random: () => 0 });
    client.subscribe(listener());
    last().open();
    sockets[0]!.drop();
    await vi.advanceTimersByTimeAsync(40_000);
    expect(calls).toBe(1); // the lost socket's refresh timer was cleared
    expect(sockets).toHaveLength(2);
    sockets[1]!.open();
    expect(tokenN(sockets[1]!.sentOfType("auth")[0]!.token)).toBe(2);
  });

  it("reconnects with a fresh token after close 4001", async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const { client, sockets, last } = setup({
      auth: () => jwt(Date.now() + 3_600_000, { n: ++calls }),
      random: () => 0,
      onError: (e) => errors.push(e),
    });
    client.subscribe(listener());
    openAndAck(last());
    last().receive({ type: "error", code: "token_expired", message: "the token expired" });
    last().drop(4001);
    expect(client.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(2);
    sockets[1]!.open();
    expect(sockets[1]!.sent().map((m) => m.type)).toEqual(["auth", "subscribe"]);
    expect(tokenN(sockets[1]!.sentOfType("auth")[0]!.token)).toBe(2);
    expect(errors).toContainEqual(expect.objectContaining({ code: "token_expired" }));
  });

  it("does not refresh in a loop a token that expires beyond the timers' range (~24.8 days)", async () => {
    let calls = 0;
    const { client, last } = setup({ heartbeat: false, auth: () => (calls++, jwt(Date.now() + 60 * 86_400_000)) });
    client.subscribe(listener());
    last().open();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
    expect(last().sentOfType("auth")).toHaveLength(1);
  });

  it("does not refresh in a loop a token already inside the margin", async () => {
    let calls = 0;
    const { client, last } = setup({ auth: () => (calls++, jwt(Date.now() + 10_000)) });
    client.subscribe(listener());
    last().open();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
  });
});

function tokenN(token: string): unknown {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).n;
}
