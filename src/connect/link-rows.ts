import type { LinkRecord } from './link-store.ts';

/** The connect_links columns, in the order both stores select them. */
export const LINK_COLUMNS =
  'id, created_by, reference_id, client_name, redirect_url, state, tags, customer_info, manufacturer_filters, allowed_origins, created_at, expires_at, session_key, session_hash, step_hash, linked_at, used_at, outcome, key_id, maker_secret_hash, reference_chosen';

export interface LinkRow {
  id: string;
  created_by: string;
  reference_id: string;
  client_name: string | null;
  redirect_url: string;
  state: string | null;
  tags: string;
  customer_info: string | null;
  manufacturer_filters: string | null;
  allowed_origins: string;
  created_at: string;
  expires_at: string;
  session_key: string;
  session_hash: string | null;
  step_hash: string | null;
  linked_at: string | null;
  used_at: string | null;
  outcome: string | null;
  key_id: string | null;
  maker_secret_hash: string | null;
  /** INTEGER 0/1 in SQLite, BOOLEAN in PostgreSQL. */
  reference_chosen: number | boolean;
}

export function rowToLink(row: LinkRow): LinkRecord {
  return {
    id: row.id,
    createdBy: row.created_by,
    referenceId: row.reference_id,
    clientName: row.client_name,
    redirectUrl: row.redirect_url,
    state: row.state,
    tags: JSON.parse(row.tags) as string[],
    customerInfo: row.customer_info === null ? null : (JSON.parse(row.customer_info) as Record<string, string>),
    manufacturerFilters: row.manufacturer_filters === null ? null : (JSON.parse(row.manufacturer_filters) as Record<string, string[]>),
    allowedOrigins: JSON.parse(row.allowed_origins) as string[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    sessionKey: row.session_key,
    sessionHash: row.session_hash,
    stepHash: row.step_hash,
    linkedAt: row.linked_at,
    usedAt: row.used_at,
    outcome: row.outcome === 'key' || row.outcome === 'denied' ? row.outcome : null,
    keyId: row.key_id,
    makerSecretHash: row.maker_secret_hash,
    referenceChosen: row.reference_chosen === 1 || row.reference_chosen === true,
  };
}

/** The values of an INSERT, in LINK_COLUMNS order, then the token hash. */
export function linkValues(link: LinkRecord, tokenHash: string): Array<string | null> {
  return [
    link.id,
    link.createdBy,
    link.referenceId,
    link.clientName,
    link.redirectUrl,
    link.state,
    JSON.stringify(link.tags),
    link.customerInfo === null ? null : JSON.stringify(link.customerInfo),
    link.manufacturerFilters === null ? null : JSON.stringify(link.manufacturerFilters),
    JSON.stringify(link.allowedOrigins),
    link.createdAt,
    link.expiresAt,
    link.sessionKey,
    link.sessionHash,
    link.stepHash,
    link.linkedAt,
    link.usedAt,
    link.outcome,
    link.keyId,
    link.makerSecretHash,
    // '1'/'0': SQLite's INTEGER column stores it as the number, PostgreSQL reads it as a boolean.
    link.referenceChosen ? '1' : '0',
    tokenHash,
  ];
}
