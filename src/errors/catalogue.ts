/**
 * The one error catalogue. Every refusal Keygate makes carries one of these codes;
 * the README's error table lists each with its status (test/unit/error-catalogue.test.ts
 * checks that it does).
 * Codes are stable: clients and the black-box suite match on them.
 */
export const ERRORS = {
  // 400: the request itself is unusable
  INVALID_PATH: { status: 400, message: 'The request path is not in canonical form' },
  INVALID_QUERY: { status: 400, message: 'The query string cannot be decoded' },
  TOO_MANY_PARAMETERS: { status: 400, message: 'The query has more parameters than this key may send' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON' },
  DUPLICATE_JSON_KEY: { status: 400, message: 'The request body repeats a JSON key' },
  MISSING_RESOURCE_ID: { status: 400, message: 'The request does not name the resource it acts on' },
  DUPLICATE_HEADER: { status: 400, message: 'A request header that must appear once is repeated' },
  INVALID_CONNECTION_HEADER: { status: 400, message: 'The Connection header names a header that is not hop-by-hop' },
  INVALID_JSON_KEY: { status: 400, message: 'The request body has a key that is not allowed' },
  RESOURCE_ID_OVERRIDE: { status: 400, message: 'The request names the resource id a second time' },
  BODY_NOT_ALLOWED: { status: 400, message: 'This request may not carry a body' },
  // Answered on the socket when Node's HTTP parser refuses a request (server/client-error.ts)
  MALFORMED_REQUEST: { status: 400, message: 'The request is not valid HTTP/1.1' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive in time' },
  // 400s of Keygate's own endpoints: the message (and `field`) names what is wrong
  INVALID_FIELD: { status: 400, message: 'A field of the request body is missing, of the wrong type or not allowed' },
  INVALID_PARAMETER: { status: 400, message: 'A query parameter is not valid here' },
  // 401: who are you?
  KEY_MISSING: { status: 401, message: 'The Texture-Api-Key header is missing' },
  KEY_MALFORMED: { status: 401, message: 'The API key is malformed' },
  KEY_INVALID: { status: 401, message: 'The API key is unknown, expired or revoked' },
  // 403: known caller, not allowed
  ROUTE_NOT_ALLOWED: { status: 403, message: 'This key may not use this route' },
  ACTION_NOT_ALLOWED: { status: 403, message: 'This key may not perform this action' },
  RESOURCE_NOT_ALLOWED: { status: 403, message: 'This key may not access this resource' },
  ESCALATION_REFUSED: { status: 403, message: 'The key would be allowed more than the key acting on it' },
  REFERENCE_ID_NOT_ALLOWED: { status: 403, message: 'This key may not choose a referenceId' },
  // Browsers (CORS) and the Connect flow
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'This key may not be used from this origin' },
  KEY_EXPOSED: { status: 403, message: 'This key is secret and may not be used from a browser' },
  REDIRECT_NOT_ALLOWED: { status: 400, message: 'The redirectUrl is not registered on this key' },
  LINK_GONE: { status: 410, message: 'This Connect link is used, expired or not valid' },
  LINK_SESSION_MISMATCH: { status: 403, message: 'This Connect link is open in another browser' },
  DEVICE_STEP_NOT_CONFIRMED: { status: 403, message: 'The backend did not confirm the device sign-in' },
  // 404 is only for Keygate's own endpoints (ops listener, management API)
  NOT_FOUND: { status: 404, message: 'Not found' },
  KEY_NOT_FOUND: { status: 404, message: 'No such key' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This HTTP method is not supported' },
  // 408: the client stalled; its connection closes after this answer
  BODY_TIMEOUT: { status: 408, message: 'The request body did not arrive in time' },
  KEY_NOT_ACTIVE: { status: 409, message: 'The key is revoked or expired and can no longer be changed' },
  ACTING_KEY_CHANGED: { status: 409, message: 'The acting key was revoked or changed while the request was handled; nothing was written' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be uncompressed application/json' },
  // The policy's rateLimits: sent with Retry-After and the RateLimit fields
  RATE_LIMITED: { status: 429, message: 'Too many requests for this key; retry later' },
  // 5xx: something behind Keygate failed; always fail closed
  INTERNAL_ERROR: { status: 500, message: 'Internal error' },
  UPSTREAM_UNREACHABLE: { status: 502, message: 'The backend could not be reached' },
  UPSTREAM_BAD_RESPONSE: { status: 502, message: 'The backend sent a response Keygate could not verify' },
  // Sent with the backend's own (error) status: the body is withheld because Keygate cannot check it.
  UPSTREAM_ERROR: { status: 502, message: 'The backend answered with an error; its body is withheld' },
  STORE_UNAVAILABLE: { status: 503, message: 'The key store is unavailable' },
  // Keygate's own bounds on what one key type may hold; sent with Retry-After
  UPSTREAM_SATURATED: { status: 503, message: 'No backend connection is free for this key type; retry later' },
  ANSWERS_SATURATED: { status: 503, message: 'Too many large answers are being checked at once; retry later' },
  UPLOADS_SATURATED: { status: 503, message: 'Too many request bodies of this key type are being received; retry later' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The backend did not answer in time' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;
