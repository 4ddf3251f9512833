import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import { bufferedRequest } from '../pipeline/forward.ts';
import { parseUpstreamStrict } from '../pipeline/proving/strict-json.ts';
import type { DeviceLine } from './pages/views.ts';

/** How many of a user's devices the consent page lists (and the confirmation reads). */
const MAX_LISTED = 100;

function stringOr(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Who asks when Keygate calls the backend for a Connect link: the link's maker, for its referenceId. */
export function linkRequestHeaders(link: { id: string; createdBy: string }, referenceId: string, requestId: string, purpose: string): string[] {
  return [
    'accept',
    'application/json',
    'x-request-id',
    requestId,
    'x-keygate-purpose',
    purpose,
    'x-keygate-key-id',
    link.createdBy,
    'x-keygate-key-type',
    'connect',
    'x-keygate-reference-id',
    referenceId,
    'x-keygate-connect-link',
    link.id,
  ];
}

/**
 * The devices the backend has for one referenceId, asked server to server (the list
 * route with `referenceId=` as its filter, as the policy's scoped filter does). Only items
 * that carry this very referenceId count: a backend that ignores the filter shows the
 * user nobody else's devices, and confirms nothing with them.
 */
export async function devicesOf(upstream: Dispatcher, devicesPath: string, referenceId: string, link: { id: string; createdBy: string }, requestId: string): Promise<DeviceLine[]> {
  const path = `${devicesPath}?referenceId=${encodeURIComponent(referenceId)}&perPage=${MAX_LISTED}`;
  const headers = linkRequestHeaders(link, referenceId, requestId, 'connect-link');
  const res = await bufferedRequest(upstream, { method: 'GET', path, headers, body: null });
  if (res.status !== 200) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `device list for a Connect link answered ${res.status}` });
  const body = parseUpstreamStrict(res.body.toString('utf8'), 'device list') as { data?: unknown };
  if (body === null || typeof body !== 'object' || !Array.isArray(body.data)) {
    throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'device list for a Connect link is not {"data": [...]}' });
  }
  const out: DeviceLine[] = [];
  for (const item of body.data as unknown[]) {
    if (item === null || typeof item !== 'object') continue;
    const d = item as Record<string, unknown>;
    if (d.referenceId !== referenceId || typeof d.id !== 'string') continue;
    out.push({ id: d.id, name: stringOr(d.name), manufacturer: stringOr(d.manufacturer), model: stringOr(d.model) });
    if (out.length === MAX_LISTED) break;
  }
  return out;
}
