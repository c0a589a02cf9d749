// Package entry "@ripple-rt/client/react": the provider and hooks.
export { RealtimeProvider, useRealtimeClient } from "./context.js";
export type { RealtimeProviderProps } from "./context.js";
export { useRealtimeStatus, useRealtimeSubscription } from "./hooks.js";
export type { UseRealtimeSubscriptionOptions } from "./hooks.js";
