import type { NotificationPayload, Row } from "../generated/protocol.js";

/** GetKey returns a row's identity; rows with equal keys are the same row. */
export type GetKey<TRow> = (row: TRow) => unknown;

/** PatchOptions tell the patch functions how to identify and order rows. */
export interface PatchOptions<TRow> {
  /** getKey returns a row's key. Default: its `id` column. */
  getKey?: GetKey<TRow>;
  /** sort orders the list after an insert or update (Array.prototype.sort semantics, stable). */
  sort?: (a: TRow, b: TRow) => number;
  /** maxLength truncates the list after sorting, e.g. for a "latest 50" view. */
  maxLength?: number;
  /**
   * upsertOnUpdate inserts the row of an UPDATE whose key is not in the
   * list (the list then matches what the subscription covers). Default true;
   * set false when the list shows a narrower set than its subscription.
   */
  upsertOnUpdate?: boolean;
}

/** defaultGetKey reads the `id` column. */
export function defaultGetKey<TRow>(row: TRow): unknown {
  return (row as { id?: unknown } | null | undefined)?.id;
}

/**
 * changeRow returns the row a change carries: `new` for INSERT and UPDATE,
 * `old` (or, for a truncated DELETE, `key`) for DELETE. Undefined when the
 * change is truncated and carries no row.
 */
export function changeRow(change: NotificationPayload): Row | undefined {
  if (change.op === "DELETE") return change.old ?? change.key;
  return change.truncated ? undefined : change.new;
}

/**
 * needsRefetch is true for a change no patch can apply: a truncated INSERT or
 * UPDATE the gateway could not hydrate, or a change without a row.
 */
export function needsRefetch(change: NotificationPayload): boolean {
  return changeRow(change) === undefined;
}

/**
 * applyChange returns `list` with one row change applied: an INSERT adds the
 * row (or merges it into the row with the same key: no duplicates), an
 * UPDATE merges the new values into the row with its key (inserting it when
 * absent, see {@link PatchOptions.upsertOnUpdate}), a DELETE removes the row
 * with its key. It never mutates `list`, and returns `list` itself when
 * nothing changed (an absent row deleted, an update that changes no value, a
 * change that needs a refetch), so React and TanStack Query see no update.
 */
export function applyChange<TRow>(list: readonly TRow[], change: NotificationPayload, options: PatchOptions<TRow> = {}): TRow[] {
  const row = changeRow(change) as TRow | undefined;
  if (row === undefined) return list as TRow[];
  const getKey = options.getKey ?? defaultGetKey;
  const key = keyString(getKey(row));
  const movedFrom = previousKey(change, key, getKey);
  let source = list;
  if (movedFrom !== undefined) {
    // An UPDATE that changed the key: the row under its previous key is the one updated.
    const oldIndex = list.findIndex((item) => keyString(getKey(item)) === movedFrom);
    if (oldIndex >= 0) source = [...list.slice(0, oldIndex), ...list.slice(oldIndex + 1), { ...list[oldIndex], ...row } as TRow];
  }
  const index = source.findIndex((item) => keyString(getKey(item)) === key);

  if (change.op === "DELETE") {
    if (index < 0) return list as TRow[];
    return list.filter((_, i) => i !== index);
  }
  if (index < 0 && change.op === "UPDATE" && options.upsertOnUpdate === false) return list as TRow[];

  let next: TRow[];
  if (index < 0) {
    next = [...source, row];
  } else {
    const merged = mergeRow(source[index], row);
    if (merged === source[index] && source === list) return list as TRow[];
    next = source.slice();
    next[index] = merged;
  }
  if (options.sort) next.sort(options.sort);
  if (options.maxLength !== undefined && next.length > options.maxLength) next.length = Math.max(0, options.maxLength);
  return sameElements(list, next) ? (list as TRow[]) : next;
}

/**
 * applyChangeToRecord returns a detail query's `record` with one change
 * applied when the change concerns it (same key): an UPDATE or INSERT merges
 * the new values, a DELETE gives `null`. A change to another row, a change
 * that changes no value and a change that needs a refetch return `record`
 * itself. A `null`/`undefined` record is returned as it is: a record is never
 * made up from a change.
 */
export function applyChangeToRecord<TRow>(
  record: TRow | null | undefined,
  change: NotificationPayload,
  options: Pick<PatchOptions<TRow>, "getKey"> = {},
): TRow | null | undefined {
  const row = changeRow(change) as TRow | undefined;
  if (row === undefined || record === null || record === undefined) return record;
  const getKey = options.getKey ?? defaultGetKey;
  const recordKey = keyString(getKey(record));
  const key = keyString(getKey(row));
  if (recordKey !== key && recordKey !== previousKey(change, key, getKey)) return record;
  if (change.op === "DELETE") return null;
  return mergeRow(record, row);
}

/**
 * previousKey returns the key an UPDATE's row had before, when the update
 * changed it (`old` holds the previous values of changed columns), else undefined.
 */
function previousKey<TRow>(change: NotificationPayload, key: string, getKey: GetKey<TRow>): string | undefined {
  if (change.op !== "UPDATE" || !change.old) return undefined;
  const before = getKey(change.old as TRow);
  if (before === undefined || before === null) return undefined;
  const previous = keyString(before);
  return previous === key ? undefined : previous;
}

/** mergeRow returns `current` with `update`'s columns, or `current` itself when no value differs. */
function mergeRow<TRow>(current: TRow, update: TRow): TRow {
  if (typeof current !== "object" || current === null) return update;
  const base = current as Record<string, unknown>;
  const values = update as Record<string, unknown>;
  const changed = Object.keys(values).some((column) => !Object.is(base[column], values[column]) && !jsonEqual(base[column], values[column]));
  return changed ? ({ ...base, ...values } as TRow) : current;
}

/** jsonEqual compares JSON-shaped values (jsonb columns arrive as fresh objects every time). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** keyString makes keys comparable: 7 and "7" (a bigint sent as text) are the same row. */
function keyString(key: unknown): string {
  return typeof key === "object" && key !== null ? JSON.stringify(key) : String(key);
}

function sameElements<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
