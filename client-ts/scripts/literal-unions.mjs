// literal-unions rewrites tygo's output so that every Go string "enum"
// (a `type X string` plus typed constants) becomes a TypeScript union of its
// constants' literal types, the way tygo's own `enum_style: union` does for
// groups whose constant names start with the type name (ours do not:
// ErrBadMessage is an ErrorCode). It is part of `task client:gen` and is
// deterministic, so the drift check still compares pure generator output.
//
//   node scripts/literal-unions.mjs src/generated/protocol.ts
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
if (!file) {
  console.error("usage: literal-unions.mjs <generated.ts>");
  process.exit(2);
}
const source = readFileSync(file, "utf8");

// tygo writes a typed constant as `export const Name: Type = "value";`,
// optionally followed by the Go line comment.
const typed = /^export const (\w+): (\w+) = ("[^"\n]*");( \/\/[^\n]*)?$/gm;
const members = new Map();
for (const [, name, type] of source.matchAll(typed)) {
  if (!members.has(type)) members.set(type, []);
  members.get(type).push(name);
}

let out = source.replace(typed, (line, name, type, value, comment = "") =>
  isStringAlias(source, type) ? `export const ${name} = ${value};${comment}` : line,
);
for (const [type, names] of members) {
  if (!isStringAlias(source, type)) continue;
  const union = names.map((n) => `typeof ${n}`).join(" | ");
  out = out.replace(`export type ${type} = string;`, `export type ${type} = ${union};`);
}
writeFileSync(file, out);

function isStringAlias(text, type) {
  return text.includes(`export type ${type} = string;`);
}
