// Counters the page shows: cache patches applied (setQueryData from a change)
// versus list refetches (a list's queryFn running while the list was already
// cached), and the channels whose subscription the gateway acknowledged since
// the socket last opened. A tiny external store read with useSyncExternalStore.
import type { QueryClient } from "@tanstack/react-query";
import type { RealtimeClient } from "@ripple-rt/client";
import { useSyncExternalStore } from "react";

/** Stats is a snapshot of the counters. */
export interface Stats {
  patches: number;
  refetches: number;
  /** subscribed lists the channels acknowledged since the socket last opened, sorted. */
  subscribed: string;
}

let stats: Stats = { patches: 0, refetches: 0, subscribed: "" };
const listeners = new Set<() => void>();

function update(next: Partial<Stats>): void {
  stats = { ...stats, ...next };
  for (const listener of listeners) listener();
}

/** countRefetch records one list refetch. */
export function countRefetch(): void {
  update({ refetches: stats.refetches + 1 });
}

/** markSubscribed records the gateway's ack for channel. */
export function markSubscribed(channel: string): void {
  const channels = new Set(stats.subscribed ? stats.subscribed.split(",") : []);
  channels.add(channel);
  update({ subscribed: [...channels].sort().join(",") });
}

/**
 * watch counts every setQueryData (a patch; TanStack marks it `manual`) and
 * forgets the acks whenever the socket is not open. It returns the function
 * that stops watching.
 */
export function watch(queryClient: QueryClient, realtime: RealtimeClient): () => void {
  const stopCache = queryClient.getQueryCache().subscribe((event) => {
    if (event.type === "updated" && event.action.type === "success" && event.action.manual) {
      update({ patches: stats.patches + 1 });
    }
  });
  const stopStatus = realtime.onStatus((status) => {
    if (status !== "open" && stats.subscribed !== "") update({ subscribed: "" });
  });
  return () => {
    stopCache();
    stopStatus();
  };
}

/** useStats returns the current counters and re-renders when they change. */
export function useStats(): Stats {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => stats,
  );
}
