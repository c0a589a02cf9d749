import type { QueryClient } from "@tanstack/query-core";
import { describe, expectTypeOf, it } from "vitest";
import type { ConnectionStatus, RealtimeClient } from "../src/core/client.js";
import type { ClientMessage, ErrorCode, NotificationPayload, ServerMessage } from "../src/generated/protocol.js";
import { bindQuery } from "../src/query/index.js";
import {
  RealtimeProvider,
  useRealtimeClient,
  useRealtimeStatus,
  useRealtimeSubscription,
  type UseRealtimeSubscriptionOptions,
} from "../src/react/index.js";

interface Job {
  id: number;
  project_id: number;
  status: "queued" | "done";
}

describe("public hook signatures", () => {
  it("useRealtimeSubscription takes its options and returns nothing", () => {
    expectTypeOf(useRealtimeSubscription).returns.toEqualTypeOf<void>();
    expectTypeOf(useRealtimeSubscription<Job[], Job>)
      .parameter(0)
      .toEqualTypeOf<UseRealtimeSubscriptionOptions<Job[], Job>>();
  });

  it("types the handlers with the query data and the row", () => {
    useRealtimeSubscription<Job[], Job>({
      channel: "extraction_jobs",
      queryKey: ["jobs", 7],
      filter: { column: "project_id", op: "eq", value: 7 },
      getKey: (job) => {
        expectTypeOf(job).toEqualTypeOf<Job>();
        return job.id;
      },
      onInsert: (jobs, job, change) => {
        expectTypeOf(jobs).toEqualTypeOf<Job[]>();
        expectTypeOf(job).toEqualTypeOf<Job>();
        expectTypeOf(change).toEqualTypeOf<NotificationPayload>();
        return [...jobs, job];
      },
      sort: (a, b) => a.id - b.id,
      maxLength: 50,
      mode: "patch",
      enabled: true,
    });
  });

  it("rejects what the protocol does not allow", () => {
    // @ts-expect-error mode is "patch" or "invalidate"
    useRealtimeSubscription({ channel: "projects", queryKey: ["p"], mode: "merge" });
    // @ts-expect-error filter ops are eq, neq and in
    useRealtimeSubscription({ channel: "projects", queryKey: ["p"], filter: { column: "id", op: "gt", value: 1 } });
    // @ts-expect-error queryKey is required
    useRealtimeSubscription({ channel: "projects" });
    useRealtimeSubscription<Job[], Job>({
      channel: "extraction_jobs",
      queryKey: ["jobs"],
      // @ts-expect-error a handler returns the query data
      onUpdate: (jobs, job) => job,
    });
  });

  it("useRealtimeStatus returns a ConnectionStatus", () => {
    expectTypeOf(useRealtimeStatus).returns.toEqualTypeOf<ConnectionStatus>();
    expectTypeOf<ConnectionStatus>().toEqualTypeOf<"connecting" | "open" | "reconnecting" | "closed">();
  });

  it("the provider takes a client; useRealtimeClient returns it", () => {
    expectTypeOf(RealtimeProvider).parameter(0).toHaveProperty("client").toEqualTypeOf<RealtimeClient>();
    expectTypeOf(useRealtimeClient).returns.toEqualTypeOf<RealtimeClient>();
  });

  it("bindQuery returns the function that unbinds", () => {
    expectTypeOf(bindQuery).parameter(0).toEqualTypeOf<QueryClient>();
    expectTypeOf(bindQuery).returns.toEqualTypeOf<() => void>();
  });
});

describe("generated contract", () => {
  it("discriminates messages on type", () => {
    const narrow = (m: ServerMessage) => {
      if (m.type === "change") expectTypeOf(m.change).toEqualTypeOf<NotificationPayload>();
      if (m.type === "subscribed") expectTypeOf(m.seq).toEqualTypeOf<number>();
    };
    expectTypeOf(narrow).toBeFunction();
    expectTypeOf<ClientMessage["type"]>().toEqualTypeOf<"auth" | "subscribe" | "unsubscribe" | "ping">();
    expectTypeOf<ServerMessage["type"]>().toEqualTypeOf<"subscribed" | "unsubscribed" | "change" | "resync" | "pong" | "error">();
  });

  it("error codes are string literals", () => {
    expectTypeOf<"bad_filter">().toMatchTypeOf<ErrorCode>();
    expectTypeOf<"no_such_code">().not.toMatchTypeOf<ErrorCode>();
  });
});
