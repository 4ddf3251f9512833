import { KeygateError } from '../errors/keygate-error.ts';
import { redactKeyLike } from '../keys/key-format.ts';

/**
 * The refusal as the client is shown it: a message or field that names what the client
 * sent (an unknown field or parameter, a role) has anything shaped like a key replaced by
 * `{key}` — also with other separators or as its bare 38 characters, when their checksum holds. The client sent it, but error bodies are what clients, gateways and support
 * tickets log: `{"<secret>": 1}` must not come back with the secret in `error.field`
 * (invariant 6). The shared catalogue refusals carry no client text and pass as they are.
 */
export function shownError(err: KeygateError): KeygateError {
  const message = redactKeyLike(err.message);
  const field = err.field === undefined ? undefined : redactKeyLike(err.field);
  if (message === err.message && field === err.field) return err;
  return new KeygateError(err.code, {
    message,
    status: err.status,
    ...(err.detail === undefined ? {} : { detail: err.detail }),
    ...(err.headers === undefined ? {} : { headers: err.headers }),
    ...(field === undefined ? {} : { field }),
  });
}
