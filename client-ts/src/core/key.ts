import type { Filter } from "../generated/protocol.js";

/**
 * stableStringify is JSON.stringify with object keys sorted at every depth,
 * so that two equal values always give the same string.
 */
export function stableStringify(value: unknown): string {
  if (value === undefined) return "";
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** subscriptionKey identifies the shared subscription for a channel and filter. */
export function subscriptionKey(channel: string, filter: Filter | undefined): string {
  return `${channel}\u0000${stableStringify(filter)}`;
}
