/**
 * Renaming between our camelCase objects and a file's snake_case keys, by one table per file, so
 * that the file's schema, its writer and its readers all take their names from that table.
 */

/** For each field a file carries, its name there; fields not listed stay out of the file. */
export type KeyTable<T> = { readonly [K in keyof T]?: string };

/** `T`'s fields that `M` lists, under the file's names, optionality kept. */
export type Renamed<T, M> = {
  [K in keyof T as K extends keyof M ? (M[K] extends string ? M[K] : never) : never]: T[K];
};

function rename(value: object, pairs: [string, string][]): Record<string, unknown> {
  const from = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // In the table's order, which is the file's key order.
  for (const [ours, theirs] of pairs) if (from[ours] !== undefined) out[theirs] = from[ours];
  return out;
}

const entries = (table: object) => Object.entries(table) as [string, string][];

/** Our object (or a schema's shape) under the file's names. */
export function toFileKeys<T extends object, const M extends KeyTable<T>>(value: T, table: M): Renamed<T, M> {
  return rename(value, entries(table)) as Renamed<T, M>;
}

/** The file's object under our names: the fields `table` lists. */
export function fromFileKeys<T extends object, const M extends KeyTable<T>>(value: Renamed<T, M>, table: M): Pick<T, keyof M & keyof T> {
  return rename(
    value,
    entries(table).map(([ours, theirs]) => [theirs, ours]),
  ) as Pick<T, keyof M & keyof T>;
}
