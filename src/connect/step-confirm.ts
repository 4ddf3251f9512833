import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import { bufferedRequest } from '../pipeline/forward.ts';
import { linkRequestHeaders } from './backend-devices.ts';

export interface StepReturn {
  readonly referenceId: string;
  /** The backend's one-time code, as the browser brought it back. */
  readonly code: string;
  /** The step's state, as Keygate sent it to the step: a code is for the step it was issued in. */
  readonly state: string;
  /** The return address Keygate gave the step: the backend links nothing for a code it sent elsewhere. */
  readonly returnUrl: string;
}

/**
 * Asks the backend, server to server, to link the devices of a finished device step
 * (`connect.deviceStepConfirm`), once the step's return came to the browser the link is
 * bound to. 2xx: linked; 400/403/404/409/410: the backend refuses the code (unknown, used,
 * expired, for another referenceId or return address); anything else is the backend's
 * failure. The code's value is never logged: it is a bearer secret until used.
 */
export async function confirmStep(upstream: Dispatcher, path: string, step: StepReturn, link: { id: string; createdBy: string }, requestId: string): Promise<boolean> {
  const body = Buffer.from(JSON.stringify(step));
  const headers = linkRequestHeaders(link, step.referenceId, requestId, 'connect-step-confirm');
  headers.push('content-type', 'application/json', 'content-length', String(body.length));
  const res = await bufferedRequest(upstream, { method: 'POST', path, headers, body });
  if (res.status >= 200 && res.status < 300) return true;
  if (REFUSALS.has(res.status)) return false;
  throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `device step confirmation answered ${res.status}` });
}

const REFUSALS = new Set([400, 403, 404, 409, 410, 422]);
