// Entry of dist/ripple-bundle.js: an IIFE exposing the global `RippleBundle`
// for JavaScript engines without a module loader (the e2e tests' QuickJS,
// and Node via eval for the cross-check). It holds the core, the TanStack
// Query binding and query-core itself, so the host uses one QueryClient
// implementation with the binding.
export { RealtimeClient, applyChange, applyChangeToRecord, backoffDelay, stableStringify } from "../core/index.js";
export { bindQuery } from "../query/index.js";
export { QueryClient, QueryObserver, notifyManager, hashKey } from "@tanstack/query-core";
