// Package entry "@ripple-rt/client/query": the TanStack Query binding, without React.
export { bindQuery } from "./bindQuery.js";
export type { BindQueryOptions, ChangeHandler } from "./bindQuery.js";
