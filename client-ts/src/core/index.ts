// Package entry "@ripple-rt/client/core": the framework-free client.
export { RealtimeClient, DEFAULT_HEARTBEAT } from "./client.js";
export type {
  ChangeInfo,
  ClientResyncReason,
  ConnectionStatus,
  HeartbeatOptions,
  RealtimeClientOptions,
  SubscribeOptions,
  SubscribedInfo,
  TokenProvider,
} from "./client.js";
export { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export type { Timers, TimerHandle, WebSocketConstructor, WebSocketLike } from "./environment.js";
export { stableStringify } from "./key.js";
export { applyChange, applyChangeToRecord, changeRow, defaultGetKey, needsRefetch } from "./patch.js";
export type { GetKey, PatchOptions } from "./patch.js";
export * from "../generated/protocol.js";
