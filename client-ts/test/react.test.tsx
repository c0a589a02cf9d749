// @vitest-environment jsdom
import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query";
import { act, cleanup, render, renderHook, screen } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RealtimeClient } from "../src/core/client.js";
import type { Filter, NotificationPayload } from "../src/generated/protocol.js";
import { RealtimeProvider, useRealtimeClient, useRealtimeStatus, useRealtimeSubscription } from "../src/react/index.js";
import { fakeSockets } from "./fakeSocket.js";

interface Project {
  id: number;
  name: string;
}

function setup() {
  const fake = fakeSockets();
  const realtime = new RealtimeClient({ url: "ws://test/ws", WebSocket: fake.WebSocket, heartbeat: false, random: () => 0 });
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const wrapper = ({ children }: { children?: ReactNode }) => (
    <QueryClientProvider client={queryClient}>
      <RealtimeProvider client={realtime}>{children}</RealtimeProvider>
    </QueryClientProvider>
  );
  return { realtime, queryClient, wrapper, ...fake };
}

afterEach(() => {
  cleanup();
});

describe("useRealtimeSubscription", () => {
  it("shares one subscription between two hooks and unsubscribes once when both unmount", () => {
    const { wrapper, last } = setup();
    const filter: Filter = { column: "project_id", op: "eq", value: 7 };
    const a = renderHook(() => useRealtimeSubscription({ channel: "extraction_jobs", filter, queryKey: ["jobs", 7] }), { wrapper });
    const b = renderHook(() => useRealtimeSubscription({ channel: "extraction_jobs", filter: { ...filter }, queryKey: ["jobs", 7, "count"] }), { wrapper });
    act(() => last().open());
    expect(last().sentOfType("subscribe")).toHaveLength(1);
    a.unmount();
    expect(last().sentOfType("unsubscribe")).toHaveLength(0);
    b.unmount();
    expect(last().sentOfType("unsubscribe")).toHaveLength(1);
  });

  it("keeps the subscription across re-renders with an equal queryKey and new inline callbacks, using the latest callback", async () => {
    const { wrapper, last, queryClient } = setup();
    queryClient.setQueryData(["projects"], [{ id: 1, name: "a" }]);
    const seen: string[] = [];
    const { rerender } = renderHook(
      ({ label }: { label: string }) =>
        useRealtimeSubscription<Project[], Project>({
          channel: "projects",
          queryKey: ["projects"],
          filter: { column: "organization_id", op: "eq", value: 1 },
          onInsert: (list, row) => {
            seen.push(label);
            return [...list, row];
          },
        }),
      { wrapper, initialProps: { label: "first" } },
    );
    act(() => last().open());
    rerender({ label: "second" });
    rerender({ label: "third" });
    const socket = last();
    expect(socket.sentOfType("subscribe")).toHaveLength(1);
    expect(socket.sentOfType("unsubscribe")).toHaveLength(0);
    const sub = socket.sentOfType("subscribe")[0]!.sub;
    const change: NotificationPayload = { op: "INSERT", table: "projects", new: { id: 2, name: "b" } };
    act(() => socket.receive({ type: "subscribed", sub, channel: "projects", epoch: "e", seq: 0 }, { type: "change", sub, seq: 1, change }));
    expect(seen).toEqual(["third"]);
    expect(queryClient.getQueryData(["projects"])).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ]);
  });

  it("survives StrictMode's double mount: one live subscription, one unsubscribe at unmount", async () => {
    const { wrapper, last, queryClient } = setup();
    queryClient.setQueryData(["strict"], [{ id: 1, name: "a" }]);
    const strictWrapper = ({ children }: { children?: ReactNode }) => <StrictMode>{wrapper({ children })}</StrictMode>;
    const { unmount } = renderHook(() => useRealtimeSubscription({ channel: "projects", queryKey: ["strict"] }), { wrapper: strictWrapper });
    const socket = last();
    act(() => socket.open());
    expect(socket.sentOfType("subscribe")).toHaveLength(1);
    const sub = socket.sentOfType("subscribe")[0]!.sub;
    act(() =>
      socket.receive(
        { type: "subscribed", sub, channel: "projects", epoch: "e", seq: 0 },
        { type: "change", sub, seq: 1, change: { op: "INSERT", table: "projects", new: { id: 2, name: "b" } } },
      ),
    );
    expect(queryClient.getQueryData(["strict"])).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ]);
    unmount();
    expect(socket.sentOfType("unsubscribe")).toEqual([{ type: "unsubscribe", sub }]);
  });

  it("subscribes again when the queryKey or filter changes, and not at all while disabled", () => {
    const { wrapper, last, sockets } = setup();
    const { rerender } = renderHook(
      ({ projectId, enabled }: { projectId: number; enabled: boolean }) =>
        useRealtimeSubscription({
          channel: "extraction_jobs",
          filter: { column: "project_id", op: "eq", value: projectId },
          queryKey: ["jobs", projectId],
          enabled,
        }),
      { wrapper, initialProps: { projectId: 1, enabled: false } },
    );
    expect(sockets).toHaveLength(0);
    rerender({ projectId: 1, enabled: true });
    act(() => last().open());
    rerender({ projectId: 2, enabled: true });
    expect(last().sentOfType("subscribe").map((m) => m.filter?.value)).toEqual([1, 2]);
    expect(last().sentOfType("unsubscribe")).toHaveLength(1);
    rerender({ projectId: 2, enabled: false });
    expect(last().sentOfType("unsubscribe")).toHaveLength(2);
  });

  it("patches what useQuery renders", async () => {
    const { wrapper, last } = setup();
    function Projects() {
      const { data } = useQuery({ queryKey: ["live-projects"], queryFn: async (): Promise<Project[]> => [{ id: 1, name: "first" }] });
      useRealtimeSubscription({ channel: "projects", queryKey: ["live-projects"] });
      return <ul>{data?.map((p) => <li key={p.id}>{p.name}</li>)}</ul>;
    }
    render(<Projects />, { wrapper });
    await screen.findByText("first");
    const socket = last();
    act(() => socket.open());
    const sub = socket.sentOfType("subscribe")[0]!.sub;
    act(() =>
      socket.receive(
        { type: "subscribed", sub, channel: "projects", epoch: "e", seq: 0 },
        { type: "change", sub, seq: 1, change: { op: "INSERT", table: "projects", new: { id: 2, name: "second" } } },
      ),
    );
    expect(await screen.findByText("second")).toBeTruthy();
    expect(screen.getAllByRole("listitem")).toHaveLength(2);
  });
});

describe("useRealtimeStatus", () => {
  it("follows the client's status", async () => {
    const { wrapper, realtime, last } = setup();
    const { result } = renderHook(() => useRealtimeStatus(), { wrapper });
    expect(result.current).toBe("closed");
    act(() => {
      realtime.subscribe({ channel: "projects", onChange: vi.fn(), onResync: vi.fn() });
    });
    expect(result.current).toBe("connecting");
    act(() => last().open());
    expect(result.current).toBe("open");
    act(() => last().drop());
    expect(result.current).toBe("reconnecting");
    act(() => realtime.close());
    expect(result.current).toBe("closed");
  });
});

describe("useRealtimeClient", () => {
  it("throws without a provider", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => renderHook(() => useRealtimeClient())).toThrow("no RealtimeProvider");
  });
});
