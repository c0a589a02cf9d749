import { hashKey, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useSyncExternalStore } from "react";
import type { ConnectionStatus } from "../core/client.js";
import { stableStringify } from "../core/key.js";
import type { Row } from "../generated/protocol.js";
import { bindQuery, type BindQueryOptions } from "../query/bindQuery.js";
import { useRealtimeClient } from "./context.js";

/** UseRealtimeSubscriptionOptions are {@link BindQueryOptions} plus React-side switches. */
export interface UseRealtimeSubscriptionOptions<TData = unknown, TRow = Row> extends BindQueryOptions<TData, TRow> {
  /** enabled subscribes only while true. Default true. */
  enabled?: boolean;
  /** queryClient overrides the one from `QueryClientProvider`. */
  queryClient?: QueryClient;
}

/**
 * useRealtimeSubscription keeps the query `queryKey` patched with the row
 * changes of `channel` (and `filter`) while the component is mounted; it is
 * a thin adapter over {@link bindQuery}. It subscribes again only when the
 * channel, the filter's value, the query key's hash, `enabled`, the client
 * or the QueryClient change: a re-render with an equal (new) queryKey, filter
 * or new inline callbacks keeps the subscription; the latest callbacks are
 * used. Unmounting unsubscribes.
 */
export function useRealtimeSubscription<TData = unknown, TRow = Row>(options: UseRealtimeSubscriptionOptions<TData, TRow>): void {
  const client = useRealtimeClient();
  const queryClient = useQueryClient(options.queryClient);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const enabled = options.enabled ?? true;
  const queryHash = hashKey(options.queryKey);
  const filterKey = stableStringify(options.filter);
  useEffect(() => {
    if (!enabled) return undefined;
    return bindQuery(queryClient, client, readThrough(latest));
  }, [client, queryClient, options.channel, filterKey, queryHash, enabled]);
}

/**
 * useRealtimeStatus returns the client's {@link ConnectionStatus} and
 * re-renders when it changes (`closed` during server rendering).
 */
export function useRealtimeStatus(): ConnectionStatus {
  const client = useRealtimeClient();
  const subscribe = useCallback((onChange: () => void) => client.onStatus(onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.status, () => "closed");
}

/** readThrough returns an object whose every property is read from `ref.current` at the time of reading. */
function readThrough<T extends object>(ref: { readonly current: T }): T {
  return new Proxy({} as T, { get: (_target, property) => Reflect.get(ref.current, property) });
}
