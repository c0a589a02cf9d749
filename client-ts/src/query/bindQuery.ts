import type { InvalidateQueryFilters, Query, QueryClient, QueryKey } from "@tanstack/query-core";
import type { ClientResyncReason, ConnectionStatus, RealtimeClient, SubscribedInfo } from "../core/client.js";
import { applyChange, applyChangeToRecord, changeRow, needsRefetch, type PatchOptions } from "../core/patch.js";
import type { ErrorMessage, Filter, NotificationPayload, Row } from "../generated/protocol.js";

/** ChangeHandler computes a query's new data from its current data and one change. */
export type ChangeHandler<TData, TRow> = (data: TData, row: TRow, change: NotificationPayload) => TData;

/**
 * BindQueryOptions connect one subscription to one query. Callbacks are
 * read from this object each time they are needed, so an object whose
 * properties change (the React hook's) always uses the latest ones.
 */
export interface BindQueryOptions<TData = unknown, TRow = Row> extends PatchOptions<TRow> {
  /** channel is the table's channel name. */
  channel: string;
  /** filter restricts the rows delivered (e.g. `{column: "project_id", op: "eq", value: 7}`). */
  filter?: Filter;
  /** queryKey names the query whose cache the changes patch (matched exactly). */
  queryKey: QueryKey;
  /** mode `patch` (default) edits the cached data; `invalidate` refetches on every change. */
  mode?: "patch" | "invalidate";
  /** onInsert replaces the default patch for INSERT changes. */
  onInsert?: ChangeHandler<TData, TRow>;
  /** onUpdate replaces the default patch for UPDATE changes. */
  onUpdate?: ChangeHandler<TData, TRow>;
  /** onDelete replaces the default patch for DELETE changes (`row` then holds the key columns at least). */
  onDelete?: ChangeHandler<TData, TRow>;
  /** refetchType is passed to `invalidateQueries`. Default `active` (TanStack's default). */
  refetchType?: InvalidateQueryFilters["refetchType"];
  /** onResync observes each resync after the query was invalidated. */
  onResync?(reason: ClientResyncReason): void;
  /** onStatus observes the connection status. */
  onStatus?(status: ConnectionStatus): void;
  /** onSubscribed observes each `subscribed` ack: from then on changes flow. */
  onSubscribed?(info: SubscribedInfo): void;
  /** onError observes the gateway's errors about this subscription. */
  onError?(error: ErrorMessage): void;
}

/**
 * bindQuery subscribes to `options.channel` and keeps the query named
 * `options.queryKey` in step with it; it returns the function that unbinds.
 *
 * Rules:
 * - Without cached data (never fetched, or being fetched for the first
 *   time) no change creates data: the fetch will bring it.
 * - A change that arrives while the query fetches is applied to the cached
 *   data at once, kept, and applied again to the fetched data when it lands,
 *   because the fetch may have read the database before the change. The
 *   patches are idempotent (insert de-duplicates, update merges, delete by
 *   key), so applying a change the fetch already saw is harmless; custom
 *   handlers must be idempotent too.
 * - Data read before the subscription first goes live can miss changes made
 *   in between, which never reach the stream: at the first `subscribed` ack,
 *   cached idle data is invalidated, and a fetch still in flight (it may
 *   have read the table before the ack) is followed by a refetch when it
 *   lands. Invalidating would not do for the latter: TanStack joins the
 *   running first fetch instead of starting a new one.
 * - `resync`, and a reconnect that could not resume, invalidate the query.
 * - A truncated change (too large to notify, not hydrated) invalidates it.
 * - `mode: "invalidate"` invalidates on every change.
 * - Invalidating while a fetch is in flight waits for it to land and then
 *   refetches once: the fetch may have read the table before the reason to
 *   invalidate, and restarting it on every change could starve it under a
 *   steady stream of changes.
 */
export function bindQuery<TData = unknown, TRow = Row>(
  queryClient: QueryClient,
  realtimeClient: RealtimeClient,
  options: BindQueryOptions<TData, TRow>,
): () => void {
  const cache = queryClient.getQueryCache();
  const queryKey = options.queryKey;
  let pending: NotificationPayload[] = [];
  let live = false;
  // refetchWhenLanded is set when the fetch in flight may predate a change,
  // a resync or the subscription itself.
  let refetchWhenLanded = false;

  const findQuery = (): Query | undefined => cache.find({ queryKey, exact: true });

  const invalidate = () => {
    void queryClient.invalidateQueries({ queryKey, exact: true, refetchType: options.refetchType });
  };

  /** refresh invalidates now, or once the fetch in flight has landed. */
  const refresh = () => {
    if (findQuery()?.state.fetchStatus === "fetching") refetchWhenLanded = true;
    else invalidate();
  };

  /** patch applies changes to the cached data; no data, no patch; no difference, no write. */
  const patch = (changes: readonly NotificationPayload[]) => {
    const data = queryClient.getQueryData<TData>(queryKey);
    if (data === undefined) return;
    let next: TData = data;
    for (const change of changes) next = patchOne(next, change, options);
    // next is never undefined here (data was not, and patches return data or null).
    if (next !== data) queryClient.setQueryData<TData>(queryKey, () => next as TData & ({} | null));
  };

  // The cache tells its listeners synchronously, so the kept changes are
  // applied the moment a fetch ends, before any newer change can arrive.
  const stopWatchingCache = cache.subscribe((event) => {
    if ((pending.length === 0 && !refetchWhenLanded) || event.type !== "updated") return;
    if (event.query !== findQuery() || event.query.state.fetchStatus === "fetching") return;
    const changes = pending;
    pending = [];
    patch(changes);
    if (refetchWhenLanded) {
      refetchWhenLanded = false;
      invalidate();
    }
  });

  const stopSubscription = realtimeClient.subscribe({
    channel: options.channel,
    filter: options.filter,
    onChange(change) {
      if (options.mode === "invalidate" || needsRefetch(change)) {
        refresh();
        return;
      }
      const query = findQuery();
      if (!query) return;
      if (query.state.fetchStatus === "fetching") pending.push(change);
      patch([change]);
    },
    onResync(reason) {
      refresh();
      options.onResync?.(reason);
    },
    onStatus: (status) => options.onStatus?.(status),
    onSubscribed(info) {
      if (!live) {
        live = true;
        const state = findQuery()?.state;
        if (state && (state.data !== undefined || state.fetchStatus === "fetching")) refresh();
      }
      options.onSubscribed?.(info);
    },
    onError: (error) => options.onError?.(error),
  });

  return () => {
    stopSubscription();
    stopWatchingCache();
    pending = [];
    refetchWhenLanded = false;
  };
}

function patchOne<TData, TRow>(data: TData, change: NotificationPayload, options: BindQueryOptions<TData, TRow>): TData {
  const row = changeRow(change) as TRow;
  const handler = change.op === "INSERT" ? options.onInsert : change.op === "UPDATE" ? options.onUpdate : options.onDelete;
  if (handler) return handler(data, row, change);
  if (Array.isArray(data)) return applyChange(data as TRow[], change, options) as TData;
  if (typeof data === "object" && data !== null) return applyChangeToRecord(data as TRow, change, options) as TData;
  return data;
}
