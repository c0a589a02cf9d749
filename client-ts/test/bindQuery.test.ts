import { QueryClient, QueryObserver, type QueryKey } from "@tanstack/query-core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RealtimeClient, type RealtimeClientOptions } from "../src/core/client.js";
import type { NotificationPayload } from "../src/generated/protocol.js";
import { bindQuery, type BindQueryOptions } from "../src/query/bindQuery.js";
import { fakeSockets } from "./fakeSocket.js";

interface Project {
  id: number;
  name: string;
}

const ins = (id: number, name = `p${id}`): NotificationPayload => ({ op: "INSERT", table: "projects", new: { id, name } });
const upd = (id: number, name: string): NotificationPayload => ({ op: "UPDATE", table: "projects", new: { id, name }, old: { id } });
const del = (id: number): NotificationPayload => ({ op: "DELETE", table: "projects", old: { id } });

let keyCounter = 0;
const uniqueKey = (): QueryKey => ["projects", ++keyCounter];

/** deferred returns a promise and the functions that settle it. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(clientOptions: Partial<RealtimeClientOptions> = {}) {
  const fake = fakeSockets();
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false, gcTime: Infinity } } });
  const realtime = new RealtimeClient({ url: "ws://test/ws", WebSocket: fake.WebSocket, random: () => 0, heartbeat: false, ...clientOptions });
  let seq = 0;
  let sub = "";
  const bind = <TData = Project[]>(options: Omit<BindQueryOptions<TData, Project>, "channel"> & { channel?: string }) => {
    const unbind = bindQuery<TData, Project>(queryClient, realtime, { channel: "projects", ...options });
    const socket = fake.last();
    if (socket.readyState !== 1) socket.open();
    const subscribe = socket.sentOfType("subscribe").at(-1)!;
    sub = subscribe.sub;
    socket.receive({ type: "subscribed", sub, channel: subscribe.channel, epoch: "e1", seq: 0 });
    return unbind;
  };
  const deliver = (change: NotificationPayload) => fake.last().receive({ type: "change", sub, seq: ++seq, change });
  const resync = () => fake.last().receive({ type: "resync", sub, reason: "listener_gap" });
  return { queryClient, realtime, bind, deliver, resync, ...fake };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("bindQuery patch mode", () => {
  it("patches a fetched list with inserts, updates and deletes", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => [{ id: 1, name: "a" }] });
    bind({ queryKey });
    deliver(ins(2, "b"));
    expect(queryClient.getQueryData(queryKey)).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ]);
    deliver(upd(1, "a2"));
    deliver(del(2));
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "a2" }]);
  });

  it("creates no data for a query that was never fetched", () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    bind({ queryKey });
    deliver(ins(1));
    expect(queryClient.getQueryData(queryKey)).toBeUndefined();
    expect(queryClient.getQueryCache().find({ queryKey })).toBeUndefined();
  });

  it("creates no data for a query whose first fetch failed", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await expect(queryClient.fetchQuery({ queryKey, queryFn: () => Promise.reject(new Error("down")) })).rejects.toThrow("down");
    bind({ queryKey });
    deliver(ins(1));
    expect(queryClient.getQueryData(queryKey)).toBeUndefined();
  });

  it("keeps a change that lands during the first fetch and applies it to the fetched data", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    const response = deferred<Project[]>();
    bind({ queryKey });
    const fetching = queryClient.fetchQuery({ queryKey, queryFn: () => response.promise });
    deliver(ins(3, "c"));
    expect(queryClient.getQueryData(queryKey)).toBeUndefined();
    // The fetch read the table before the insert committed.
    response.resolve([{ id: 1, name: "a" }]);
    await fetching;
    await vi.advanceTimersByTimeAsync(0);
    expect(queryClient.getQueryData(queryKey)).toEqual([
      { id: 1, name: "a" },
      { id: 3, name: "c" },
    ]);
  });

  it("patches at once during a refetch and again when the refetched data lands", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => [{ id: 1, name: "a" }] });
    bind({ queryKey });
    const response = deferred<Project[]>();
    const refetch = queryClient.fetchQuery({ queryKey, queryFn: () => response.promise, staleTime: 0 });
    deliver(upd(1, "renamed"));
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "renamed" }]);
    response.resolve([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ]);
    await refetch;
    await vi.advanceTimersByTimeAsync(0);
    expect(queryClient.getQueryData(queryKey)).toEqual([
      { id: 1, name: "renamed" },
      { id: 2, name: "b" },
    ]);
  });

  it("applies kept changes the moment the fetch lands, before any newer change", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    const response = deferred<Project[]>();
    bind({ queryKey });
    const fetching = queryClient.fetchQuery({ queryKey, queryFn: () => response.promise });
    deliver(upd(1, "first"));
    response.resolve([{ id: 1, name: "stale" }]);
    await fetching;
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "first" }]);
    deliver(upd(1, "second"));
    await vi.advanceTimersByTimeAsync(0);
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "second" }]);
  });

  it("does not write the cache when a change changes nothing", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => [{ id: 1, name: "a" }] });
    bind({ queryKey });
    const before = queryClient.getQueryState(queryKey)!;
    vi.advanceTimersByTime(1_000);
    deliver(del(99));
    deliver(upd(1, "a"));
    const after = queryClient.getQueryState(queryKey)!;
    expect(after.data).toBe(before.data);
    expect(after.dataUpdatedAt).toBe(before.dataUpdatedAt);
  });

  it("uses custom handlers instead of the default patch", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => ({ total: 1, items: [{ id: 1, name: "a" }] }) });
    type Page = { total: number; items: Project[] };
    bind<Page>({
      queryKey,
      onInsert: (page, row) => ({ total: page.total + 1, items: [row, ...page.items] }),
      onDelete: (page, row) => ({ total: page.total - 1, items: page.items.filter((p) => p.id !== row.id) }),
    });
    deliver(ins(2, "b"));
    expect(queryClient.getQueryData<Page>(queryKey)).toEqual({ total: 2, items: [{ id: 2, name: "b" }, { id: 1, name: "a" }] });
    deliver(del(1));
    expect(queryClient.getQueryData<Page>(queryKey)).toEqual({ total: 1, items: [{ id: 2, name: "b" }] });
  });

  it("patches a detail record and ignores other rows", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => ({ id: 1, name: "a" }) });
    bind<Project | null>({ queryKey });
    deliver(upd(2, "other"));
    expect(queryClient.getQueryData(queryKey)).toEqual({ id: 1, name: "a" });
    deliver(upd(1, "b"));
    expect(queryClient.getQueryData(queryKey)).toEqual({ id: 1, name: "b" });
    deliver(del(1));
    expect(queryClient.getQueryData(queryKey)).toBeNull();
  });

  it("stops patching and unsubscribes when unbound", async () => {
    const { queryClient, bind, deliver, last } = setup();
    const queryKey = uniqueKey();
    await queryClient.fetchQuery({ queryKey, queryFn: () => [] as Project[] });
    const unbind = bind({ queryKey });
    unbind();
    expect(last().sentOfType("unsubscribe")).toHaveLength(1);
    deliver(ins(1));
    expect(queryClient.getQueryData(queryKey)).toEqual([]);
  });
});

describe("bindQuery invalidation", () => {
  /** observe makes the query active, as a mounted useQuery would, and counts its fetches. */
  async function observed(queryClient: QueryClient, queryKey: QueryKey, rows: () => Project[]) {
    const queryFn = vi.fn(async () => rows());
    const observer = new QueryObserver(queryClient, { queryKey, queryFn });
    const stop = observer.subscribe(() => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(1);
    return { queryFn, stop };
  }

  it("refetches data that was cached and idle before the subscription went live", async () => {
    const { queryClient, bind } = setup();
    const queryKey = uniqueKey();
    const { queryFn, stop } = await observed(queryClient, queryKey, () => []);
    bind({ queryKey });
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    stop();
  });

  it("does not refetch data fetched after the subscription went live", async () => {
    const { queryClient, bind } = setup();
    const queryKey = uniqueKey();
    bind({ queryKey });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => []);
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(1);
    stop();
  });

  it("refetches on resync", async () => {
    const { queryClient, bind, resync } = setup();
    const queryKey = uniqueKey();
    let rows = [{ id: 1, name: "a" }];
    bind({ queryKey });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => rows);
    rows = [{ id: 1, name: "missed" }];
    resync();
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "missed" }]);
    stop();
  });

  it("refetches when the first ack arrives while a fetch that may predate it is in flight", async () => {
    const { queryClient, realtime, last } = setup();
    const queryKey = uniqueKey();
    let rows: Project[] = [{ id: 1, name: "a" }];
    const first = deferred<Project[]>();
    const queryFn = vi.fn(() => rows);
    queryFn.mockImplementationOnce(() => first.promise as unknown as Project[]);
    const observer = new QueryObserver(queryClient, { queryKey, queryFn });
    const stopObserving = observer.subscribe(() => {});
    const unbind = bindQuery<Project[], Project>(queryClient, realtime, { channel: "projects", queryKey });
    const socket = last();
    socket.open();
    const sub = socket.sentOfType("subscribe")[0]!;
    // The fetch read [a]; then b commits before the subscription is live, so the stream never carries it.
    rows = [...rows, { id: 2, name: "b" }];
    socket.receive({ type: "subscribed", sub: sub.sub, channel: "projects", epoch: "e1", seq: 0 });
    first.resolve([{ id: 1, name: "a" }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    expect(queryClient.getQueryData(queryKey)).toEqual(rows);
    unbind();
    stopObserving();
  });

  it("refetches after a reconnect that could not resume", async () => {
    const { queryClient, bind, last } = setup({ resume: false });
    const queryKey = uniqueKey();
    bind({ queryKey });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => []);
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    const socket = last();
    socket.open();
    const sub = socket.sentOfType("subscribe")[0]!;
    expect(sub.resume).toBeUndefined();
    socket.receive({ type: "subscribed", sub: sub.sub, channel: "projects", epoch: "e1", seq: 3 });
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    stop();
  });

  it("does not refetch after a reconnect that resumed", async () => {
    const { queryClient, bind, last } = setup();
    const queryKey = uniqueKey();
    bind({ queryKey });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => []);
    last().drop();
    await vi.advanceTimersByTimeAsync(0);
    const socket = last();
    socket.open();
    const sub = socket.sentOfType("subscribe")[0]!;
    expect(sub.resume).toEqual({ epoch: "e1", seq: 0 });
    socket.receive({ type: "subscribed", sub: sub.sub, channel: "projects", epoch: "e1", seq: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(1);
    stop();
  });

  it("refetches on a truncated insert or update, and patches a truncated delete", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    let rows = [
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ];
    bind({ queryKey });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => rows);
    rows = [...rows, { id: 3, name: "x".repeat(9000) }];
    deliver({ op: "INSERT", table: "projects", truncated: true, key: { id: 3 } });
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    expect(queryClient.getQueryData<Project[]>(queryKey)).toHaveLength(3);
    deliver({ op: "DELETE", table: "projects", truncated: true, key: { id: 3 } });
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    expect(queryClient.getQueryData(queryKey)).toEqual(rows.slice(0, 2));
    stop();
  });

  it("refetches on every change in invalidate mode and never patches", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    bind({ queryKey, mode: "invalidate" });
    const { queryFn, stop } = await observed(queryClient, queryKey, () => [{ id: 1, name: "a" }]);
    deliver(ins(2));
    expect(queryClient.getQueryData(queryKey)).toEqual([{ id: 1, name: "a" }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    stop();
  });

  it("refetches once after a fetch in flight lands, however many changes arrive meanwhile", async () => {
    const { queryClient, bind, deliver } = setup();
    const queryKey = uniqueKey();
    bind({ queryKey, mode: "invalidate" });
    let rows: Project[] = [{ id: 1, name: "a" }];
    const { queryFn, stop } = await observed(queryClient, queryKey, () => rows);
    const slow = deferred<Project[]>();
    queryFn.mockImplementationOnce(() => slow.promise);
    deliver(ins(2)); // starts a refetch that reads [a] and lands late
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2);
    rows = [...rows, { id: 2, name: "p2" }, { id: 3, name: "p3" }];
    deliver(ins(3));
    deliver(upd(3, "p3"));
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(2); // the fetch in flight was not restarted
    slow.resolve([{ id: 1, name: "a" }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(queryFn).toHaveBeenCalledTimes(3);
    expect(queryClient.getQueryData(queryKey)).toEqual(rows);
    stop();
  });

  it("marks an inactive query invalid, and refetches it with refetchType 'all'", async () => {
    const { queryClient, bind, resync } = setup();
    const inactive = uniqueKey();
    const refetched = uniqueKey();
    const fetches = { inactive: 0, refetched: 0 };
    bind<number>({ queryKey: inactive });
    await queryClient.fetchQuery({ queryKey: inactive, queryFn: () => ++fetches.inactive });
    resync();
    bind<number>({ queryKey: refetched, channel: "other", refetchType: "all" });
    await queryClient.fetchQuery({ queryKey: refetched, queryFn: () => ++fetches.refetched });
    resync();
    await vi.advanceTimersByTimeAsync(0);
    expect(queryClient.getQueryState(inactive)!.isInvalidated).toBe(true);
    expect(fetches).toEqual({ inactive: 1, refetched: 2 });
  });
});
