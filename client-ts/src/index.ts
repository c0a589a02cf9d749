// Package entry "@ripple-rt/client": core, TanStack Query binding and React hooks.
export * from "./core/index.js";
export * from "./query/index.js";
export * from "./react/index.js";
