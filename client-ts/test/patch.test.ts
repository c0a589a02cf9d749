import { describe, expect, it } from "vitest";
import { applyChange, applyChangeToRecord, needsRefetch, type PatchOptions } from "../src/core/patch.js";
import type { NotificationPayload } from "../src/generated/protocol.js";

interface Project {
  id: number;
  name: string;
  rank?: number;
  meta?: unknown;
}

const ins = (row: Project): NotificationPayload => ({ op: "INSERT", table: "projects", new: { ...row } });
const upd = (row: Partial<Project>): NotificationPayload => ({ op: "UPDATE", table: "projects", new: { ...row } });
const del = (id: number): NotificationPayload => ({ op: "DELETE", table: "projects", old: { id } });

describe("applyChange", () => {
  const a: Project = { id: 1, name: "a", rank: 1 };
  const b: Project = { id: 2, name: "b", rank: 2 };
  const list: readonly Project[] = Object.freeze([a, b]);

  const cases: {
    name: string;
    change: NotificationPayload;
    options?: PatchOptions<Project>;
    want: Project[] | "same";
  }[] = [
    { name: "insert appends", change: ins({ id: 3, name: "c" }), want: [a, b, { id: 3, name: "c" }] },
    { name: "duplicate insert merges instead of duplicating", change: ins({ id: 2, name: "b2", rank: 2 }), want: [a, { id: 2, name: "b2", rank: 2 }] },
    { name: "identical duplicate insert changes nothing", change: ins({ ...b }), want: "same" },
    { name: "update merges new values into the row", change: upd({ id: 1, name: "a2" }), want: [{ id: 1, name: "a2", rank: 1 }, b] },
    { name: "update with equal values changes nothing", change: upd({ id: 1, name: "a" }), want: "same" },
    { name: "update of an absent row inserts it", change: upd({ id: 9, name: "z" }), want: [a, b, { id: 9, name: "z" }] },
    { name: "update of an absent row is ignored when upsertOnUpdate is false", change: upd({ id: 9, name: "z" }), options: { upsertOnUpdate: false }, want: "same" },
    { name: "delete removes by key", change: del(1), want: [b] },
    { name: "delete of an absent row changes nothing", change: del(42), want: "same" },
    {
      name: "truncated delete removes by the key it carries",
      change: { op: "DELETE", table: "projects", truncated: true, key: { id: 2 } },
      want: [a],
    },
    { name: "truncated update changes nothing (needs a refetch)", change: { op: "UPDATE", table: "projects", truncated: true, key: { id: 1 } }, want: "same" },
    { name: "keys compare as text: 2 and '2' are one row", change: upd({ id: "2" as unknown as number, name: "b3" }), want: [a, { id: "2" as unknown as number, name: "b3", rank: 2 }] },
    {
      name: "update that changes the key replaces the row under its previous key",
      change: { op: "UPDATE", table: "projects", new: { id: 5, name: "a", rank: 1 }, old: { id: 1 } },
      want: [b, { id: 5, name: "a", rank: 1 }],
    },
    {
      name: "update that changes the key of an absent row inserts it",
      change: { op: "UPDATE", table: "projects", new: { id: 5, name: "e" }, old: { id: 4 } },
      want: [a, b, { id: 5, name: "e" }],
    },
    {
      name: "custom getKey",
      change: ins({ id: 99, name: "a", rank: 5 }),
      options: { getKey: (p) => p.name },
      want: [{ id: 99, name: "a", rank: 5 }, b],
    },
    {
      name: "sort keeps the order on insert",
      change: ins({ id: 3, name: "c", rank: 0 }),
      options: { sort: (x, y) => (x.rank ?? 0) - (y.rank ?? 0) },
      want: [{ id: 3, name: "c", rank: 0 }, a, b],
    },
    {
      name: "sort keeps the order on update",
      change: upd({ id: 1, rank: 3 }),
      options: { sort: (x, y) => (x.rank ?? 0) - (y.rank ?? 0) },
      want: [b, { id: 1, name: "a", rank: 3 }],
    },
    {
      name: "maxLength truncates after sorting",
      change: ins({ id: 3, name: "c", rank: 0 }),
      options: { sort: (x, y) => (x.rank ?? 0) - (y.rank ?? 0), maxLength: 2 },
      want: [{ id: 3, name: "c", rank: 0 }, a],
    },
    {
      name: "an insert that sorts past maxLength changes nothing",
      change: ins({ id: 3, name: "c", rank: 9 }),
      options: { sort: (x, y) => (x.rank ?? 0) - (y.rank ?? 0), maxLength: 2 },
      want: "same",
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const got = applyChange(list, c.change, c.options);
      if (c.want === "same") expect(got).toBe(list);
      else {
        expect(got).not.toBe(list);
        expect(got).toEqual(c.want);
      }
      expect(list).toEqual([a, b]);
    });
  }

  it("keeps untouched rows by reference", () => {
    const got = applyChange(list, upd({ id: 1, name: "a2" }));
    expect(got[1]).toBe(b);
  });

  it("treats equal jsonb values as unchanged", () => {
    const withMeta = [{ id: 1, name: "a", meta: { tags: ["x"] } }];
    expect(applyChange(withMeta, upd({ id: 1, meta: { tags: ["x"] } }))).toBe(withMeta);
  });
});

describe("applyChangeToRecord", () => {
  const record: Project = Object.freeze({ id: 1, name: "a" });

  it("merges an update of the same row", () => {
    expect(applyChangeToRecord(record, upd({ id: 1, name: "b" }))).toEqual({ id: 1, name: "b" });
  });
  it("returns the same record for another row, equal values or a truncated change", () => {
    expect(applyChangeToRecord(record, upd({ id: 2, name: "b" }))).toBe(record);
    expect(applyChangeToRecord(record, upd({ id: 1, name: "a" }))).toBe(record);
    expect(applyChangeToRecord(record, { op: "UPDATE", table: "projects", truncated: true, key: { id: 1 } })).toBe(record);
    expect(applyChangeToRecord(record, del(2))).toBe(record);
  });
  it("follows an update that changes the record's key", () => {
    expect(applyChangeToRecord(record, { op: "UPDATE", table: "projects", new: { id: 5, name: "a" }, old: { id: 1 } })).toEqual({ id: 5, name: "a" });
  });
  it("gives null when the row is deleted", () => {
    expect(applyChangeToRecord(record, del(1))).toBeNull();
  });
  it("never makes a record up from a change", () => {
    expect(applyChangeToRecord<Project>(undefined, ins({ id: 1, name: "a" }))).toBeUndefined();
    expect(applyChangeToRecord<Project>(null, ins({ id: 1, name: "a" }))).toBeNull();
  });
});

describe("needsRefetch", () => {
  it("is true only for a truncated insert or update", () => {
    expect(needsRefetch({ op: "INSERT", table: "t", truncated: true, key: { id: 1 } })).toBe(true);
    expect(needsRefetch({ op: "UPDATE", table: "t", truncated: true, key: { id: 1 } })).toBe(true);
    expect(needsRefetch({ op: "DELETE", table: "t", truncated: true, key: { id: 1 } })).toBe(false);
    expect(needsRefetch(ins({ id: 1, name: "a" }))).toBe(false);
  });
});
