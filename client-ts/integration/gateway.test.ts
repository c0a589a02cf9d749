import { QueryClient, QueryObserver } from "@tanstack/query-core";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { RealtimeClient, type ClientResyncReason, type SubscribedInfo } from "../src/core/index.js";
import { bindQuery } from "../src/query/index.js";
import { startRippleDev, type RippleDev } from "./rippleDev.js";

type Row = Record<string, unknown>;

let ripple: RippleDev;
let db: pg.Client;
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  ripple = await startRippleDev();
  db = new pg.Client({ connectionString: ripple.databaseURL });
  await db.connect();
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

afterAll(async () => {
  await db?.end();
  await ripple?.stop();
});

/** select reads rows as Postgres renders them to JSON: what the trigger sends, so comparable to the cache. */
async function select(sql: string, params: unknown[] = []): Promise<Row[]> {
  const result = await db.query<{ rows: Row[] }>(`SELECT coalesce(json_agg(r ORDER BY r.id), '[]') AS rows FROM (${sql}) r`, params);
  return result.rows[0]!.rows;
}

const byId = (rows: Row[] | undefined) => [...(rows ?? [])].sort((a, b) => Number(a.id) - Number(b.id));

/**
 * live starts a RealtimeClient (the `ws` package as its WebSocket) and a
 * binding, waits for the gateway's ack, then observes a query reading `sql`
 * and resolves once it has data.
 */
async function live(options: { channel: string; sql: string; params?: unknown[]; filter?: Parameters<typeof bindQuery>[2]["filter"] }) {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const realtime = new RealtimeClient({ url: ripple.webSocketURL, WebSocket: WebSocket as never, heartbeat: { intervalMs: 2_000, timeoutMs: 2_000 } });
  const queryKey = [options.channel, options.params ?? []];
  const queryFn = vi.fn(() => select(options.sql, options.params));
  const resyncs: ClientResyncReason[] = [];
  const acks: SubscribedInfo[] = [];
  const unbind = bindQuery<Row[], Row>(queryClient, realtime, {
    channel: options.channel,
    filter: options.filter,
    queryKey,
    onResync: (reason) => resyncs.push(reason),
    onSubscribed: (info) => acks.push(info),
  });
  let stopObserving = () => {};
  cleanups.push(() => {
    unbind();
    stopObserving();
    realtime.close();
    queryClient.clear();
  });
  await vi.waitFor(() => expect(acks).toHaveLength(1), { timeout: 10_000, interval: 10 });
  // Mount the query once live, as a page would, so its first fetch needs no second one.
  stopObserving = new QueryObserver(queryClient, { queryKey, queryFn }).subscribe(() => {});
  await vi.waitFor(() => expect(queryClient.getQueryData(queryKey)).toBeDefined(), { timeout: 10_000, interval: 10 });
  const data = () => byId(queryClient.getQueryData<Row[]>(queryKey));
  /** settled waits until the cache equals a fresh SELECT of the same rows. */
  const settled = async () => {
    const want = await select(options.sql, options.params);
    await vi.waitFor(() => expect(data()).toEqual(want), { timeout: 10_000, interval: 10 });
    return want;
  };
  return { queryClient, realtime, queryFn, resyncs, data, settled };
}

describe("client-ts against the real gateway and Postgres", () => {
  it("patches the cache on insert, update and delete", async () => {
    const projects = await live({
      channel: "projects",
      sql: "SELECT * FROM projects WHERE organization_id = 'org-crud'",
      filter: { column: "organization_id", op: "eq", value: "org-crud" },
    });
    expect(projects.data()).toEqual([]);

    const { rows } = await db.query<{ id: string }>("INSERT INTO projects (name, organization_id) VALUES ('Alpha', 'org-crud'), ('Beta', 'org-crud') RETURNING id");
    const inserted = await projects.settled();
    expect(inserted.map((r) => r.name)).toEqual(["Alpha", "Beta"]);

    await db.query("UPDATE projects SET name = 'Alpha 2', status = 'paused' WHERE id = $1", [rows[0]!.id]);
    const updated = await projects.settled();
    expect(updated[0]).toMatchObject({ name: "Alpha 2", status: "paused" });

    await db.query("DELETE FROM projects WHERE id = $1", [rows[1]!.id]);
    expect(await projects.settled()).toHaveLength(1);
    expect(projects.queryFn).toHaveBeenCalledTimes(1);
    expect(projects.resyncs).toEqual([]);
  });

  it("keeps another project's jobs out of a filtered list", async () => {
    const { rows } = await db.query<{ id: string }>("INSERT INTO projects (name, organization_id) VALUES ('Mine', 'org-f'), ('Theirs', 'org-f') RETURNING id");
    const [mine, theirs] = rows.map((r) => Number(r.id));
    const jobs = await live({
      channel: "extraction_jobs",
      sql: "SELECT * FROM extraction_jobs WHERE project_id = $1",
      params: [mine],
      filter: { column: "project_id", op: "eq", value: mine },
    });
    await db.query(
      "INSERT INTO extraction_jobs (project_id, organization_id, document_name) VALUES ($1, 'org-f', 'a.pdf'), ($2, 'org-f', 'b.pdf'), ($1, 'org-f', 'c.pdf')",
      [mine, theirs],
    );
    const want = await jobs.settled();
    expect(want.map((r) => r.document_name)).toEqual(["a.pdf", "c.pdf"]);
    expect(jobs.data().every((r) => r.project_id === mine)).toBe(true);
  });

  it("refetches on resync after the listener lost its connection, and stays live", async () => {
    const projects = await live({
      channel: "projects",
      sql: "SELECT * FROM projects WHERE organization_id = 'org-gap'",
      filter: { column: "organization_id", op: "eq", value: "org-gap" },
    });
    // Cut every other connection: the gateway's listener reports a gap.
    await db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'",
    );
    await db.query("INSERT INTO projects (name, organization_id) VALUES ('Written around the gap', 'org-gap')");
    await vi.waitFor(() => expect(projects.resyncs).toContain("listener_gap"), { timeout: 20_000, interval: 10 });
    await vi.waitFor(() => expect(projects.queryFn.mock.calls.length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 10 });
    expect((await projects.settled()).map((r) => r.name)).toEqual(["Written around the gap"]);

    await db.query("INSERT INTO projects (name, organization_id) VALUES ('After the gap', 'org-gap')");
    expect((await projects.settled()).map((r) => r.name)).toEqual(["Written around the gap", "After the gap"]);
  });

  it("resumes after its socket drops and catches up on what it missed", async () => {
    const projects = await live({
      channel: "projects",
      sql: "SELECT * FROM projects WHERE organization_id = 'org-resume'",
      filter: { column: "organization_id", op: "eq", value: "org-resume" },
    });
    const statuses: string[] = [];
    projects.realtime.onStatus((s) => statuses.push(s));
    projects.realtime.close();
    await db.query("INSERT INTO projects (name, organization_id) VALUES ('While away', 'org-resume')");
    projects.realtime.connect();
    expect((await projects.settled()).map((r) => r.name)).toEqual(["While away"]);
    expect(projects.resyncs).toEqual([]);
    expect(projects.queryFn).toHaveBeenCalledTimes(1);
    expect(statuses).toEqual(["closed", "connecting", "open"]);
  });
});
