/**
 * Store URLs: `sqlite:PATH` (relative to the working directory) or
 * `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`).
 * Checked when options are read, so a mistyped URL is refused before anything is opened;
 * no driver is loaded here.
 */

/** The parts of a PostgreSQL store URL (see postgres-store.ts for `schema` and `application_name`). */
export interface PostgresStoreOptions {
  /** Connection string for `pg`, without Keygate's own parameters. */
  readonly connectionString: string;
  readonly schema: string | null;
  readonly applicationName: string;
}

export type StoreLocation = { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly options: PostgresStoreOptions };

export class StoreUrlError extends Error {
  override readonly name = 'StoreUrlError';
}

const DEFAULT_APPLICATION_NAME = 'keygate';
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A URL fit for an error message: the password replaced. */
function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

export function parseStoreLocation(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new StoreUrlError(`"${url}" has no path (expected sqlite:PATH)`);
    return { kind: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgres', options: parsePostgresUrl(url) };
  throw new StoreUrlError(`"${redactStoreUrl(url)}" is not a store URL (expected sqlite:PATH or postgres://…)`);
}

/** Splits a PostgreSQL store URL into the `pg` connection string and Keygate's own parameters. */
export function parsePostgresUrl(url: string): PostgresStoreOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreUrlError(`"${redactStoreUrl(url)}" is not a valid postgres:// URL`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new StoreUrlError(`"${redactStoreUrl(url)}" must start with postgres:// or postgresql://`);
  }
  const schemas = parsed.searchParams.getAll('schema');
  if (schemas.length > 1) throw new StoreUrlError('give schema= at most once');
  const schema = schemas[0] ?? null;
  if (schema !== null && !SCHEMA_NAME.test(schema)) {
    throw new StoreUrlError(`schema "${schema}" must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)`);
  }
  const applicationName = parsed.searchParams.get('application_name') || DEFAULT_APPLICATION_NAME;
  parsed.searchParams.delete('schema');
  parsed.searchParams.delete('application_name');
  return { connectionString: parsed.toString(), schema, applicationName };
}
