import { build } from "esbuild";
import { createContext, runInContext } from "node:vm";
import { beforeAll, describe, expect, it } from "vitest";
import { bundleOptions } from "../scripts/build-bundle.mjs";
import { fakeSockets } from "./fakeSocket.js";

/**
 * The bundle runs in a bare V8 context holding only ECMAScript built-ins plus
 * timers, like the e2e tests' QuickJS: no WebSocket, AbortController, URL,
 * TextEncoder, fetch, window or process.
 */
let source = "";
beforeAll(async () => {
  const result = await build({ ...bundleOptions, write: false });
  source = result.outputFiles[0]!.text;
});

function bareContext() {
  const context = createContext({ setTimeout, clearTimeout, setInterval, clearInterval });
  runInContext(source, context, { filename: "ripple-bundle.js" });
  for (const name of ["WebSocket", "AbortController", "URL", "TextEncoder", "fetch", "window", "process"]) {
    expect(runInContext(`typeof ${name}`, context)).toBe("undefined");
  }
  return context;
}

describe("ripple-bundle.js", () => {
  it("exposes the client, the binding, the patch functions and query-core", () => {
    const context = bareContext();
    const names = runInContext("Object.keys(RippleBundle).sort()", context) as string[];
    expect([...names]).toEqual(
      expect.arrayContaining(["QueryClient", "QueryObserver", "RealtimeClient", "applyChange", "applyChangeToRecord", "bindQuery", "notifyManager"]),
    );
  });

  it("fetches, binds and patches a QueryClient cache without browser globals", async () => {
    const context = bareContext();
    const fake = fakeSockets();
    context.FakeWebSocket = fake.WebSocket;
    const run = runInContext(
      `(async () => {
        const { QueryClient, RealtimeClient, bindQuery } = RippleBundle;
        const queryClient = new QueryClient();
        const realtime = new RealtimeClient({ url: "ws://gateway/ws", WebSocket: FakeWebSocket, heartbeat: false });
        await queryClient.fetchQuery({ queryKey: ["projects"], queryFn: async ({ signal }) => {
          if (signal.aborted) throw new Error("aborted");
          return [{ id: 1, name: "a" }];
        } });
        globalThis.unbind = bindQuery(queryClient, realtime, { channel: "projects", queryKey: ["projects"] });
        globalThis.read = () => JSON.stringify(queryClient.getQueryData(["projects"]));
      })()`,
      context,
    ) as Promise<void>;
    await run;
    const socket = fake.last();
    socket.open();
    const sub = socket.sentOfType("subscribe")[0]!.sub;
    socket.receive(
      { type: "subscribed", sub, channel: "projects", epoch: "e", seq: 0 },
      { type: "change", sub, seq: 1, change: { op: "INSERT", table: "projects", new: { id: 2, name: "b" } } },
      { type: "change", sub, seq: 2, change: { op: "UPDATE", table: "projects", new: { id: 1, name: "a2" }, old: { id: 1 } } },
    );
    expect(JSON.parse(runInContext("read()", context) as string)).toEqual([
      { id: 1, name: "a2" },
      { id: 2, name: "b" },
    ]);
    runInContext("unbind()", context);
    expect(socket.sentOfType("unsubscribe")).toEqual([{ type: "unsubscribe", sub }]);
  });

  it("cancels a fetch through the AbortController stand-in", async () => {
    const context = bareContext();
    const aborted = await (runInContext(
      `(async () => {
        const queryClient = new RippleBundle.QueryClient();
        let seen;
        const fetching = queryClient.fetchQuery({ queryKey: ["slow"], queryFn: ({ signal }) => new Promise((resolve) => {
          seen = signal;
          signal.addEventListener("abort", () => resolve("aborted"));
        }) });
        await Promise.resolve();
        await queryClient.cancelQueries({ queryKey: ["slow"] });
        await fetching.catch(() => {});
        return seen.aborted;
      })()`,
      context,
    ) as Promise<boolean>);
    expect(aborted).toBe(true);
  });
});
