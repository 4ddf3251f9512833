import { basename } from 'node:path';
import { KeygateError } from '../errors/keygate-error.ts';
import { type Principal, testPrincipal } from '../keys/principal.ts';
import { authorize } from '../pipeline/authorize.ts';
import { canonicalize } from '../pipeline/canonical-path.ts';
import { responseHeaders } from '../pipeline/mutate.ts';
import { type Plan, plan } from '../pipeline/plan.ts';
import type { AttributeSource, Attributes } from '../pipeline/proving/attributes.ts';
import type { CompiledPolicy, CompiledResource } from '../policy/model.ts';
import { formatPosition } from '../policy/source.ts';
import { readTestFiles, type TestCase, type TestFile } from './test-file.ts';

/**
 * `keygate policy test`: YAML cases next to the policies, each from a raw request (and a
 * key) to the request the backend would receive, or to the error code — through the same
 * authorize → mutate → prove code as `serve`, with lookups answered by fixtures.
 */
export interface CaseResult {
  readonly file: string;
  readonly name: string;
  readonly ok: boolean;
  readonly failures: string[];
  /** Which rule decided: `role r grants resource:action (file:line:col)` or the error. */
  readonly rule: string;
}

class FixtureAttributes implements AttributeSource {
  readonly #fixtures: NonNullable<TestFile['fixtures']>;
  constructor(fixtures: TestFile['fixtures']) {
    this.#fixtures = fixtures ?? {};
  }
  get(resource: CompiledResource, id: string): Attributes {
    return this.#fixtures[resource.name]?.[id] ?? null;
  }
}

function toQuery(q: TestCase['request']['query']): string {
  if (q === undefined) return '';
  if (typeof q === 'string') return q;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) for (const x of Array.isArray(v) ? v : [v]) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(x)}`);
  return parts.join('&');
}

function conditionsOf(c: TestCase['key']['conditions']): Record<string, string[]> {
  if (c === undefined) return {};
  if (!Array.isArray(c)) return c;
  const out: Record<string, string[]> = {};
  for (const s of c) {
    const i = s.indexOf(':');
    (out[s.slice(0, i)] ??= []).push(s.slice(i + 1));
  }
  return out;
}

function queryMap(path: string): Record<string, string[]> {
  const q = path.indexOf('?');
  const out: Record<string, string[]> = {};
  if (q === -1) return out;
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) (out[k] ??= []).push(v);
  return out;
}

const norm = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

async function runCase(policy: CompiledPolicy, file: TestFile, c: TestCase): Promise<{ failures: string[]; rule: string }> {
  const failures: string[] = [];
  const principal: Principal = testPrincipal({
    type: c.key.type,
    referenceId: c.key.referenceId ?? null,
    name: 'policy test',
    roles: c.key.roles ?? [],
    conditions: conditionsOf(c.key.conditions),
  });
  const method = c.request.method ?? 'GET';
  const query = toQuery(c.request.query);
  const url = (c.request.path ?? '/') + (query === '' ? '' : '?' + query);
  const bodyValue = c.request.body;
  const body = bodyValue === undefined ? null : Buffer.from(typeof bodyValue === 'string' ? bodyValue : JSON.stringify(bodyValue));
  const headerObj: Record<string, string | string[]> = { 'texture-api-key': '<key>', ...(body === null ? {} : { 'content-type': 'application/json', 'content-length': String(body.length) }) };
  for (const [k, v] of Object.entries(c.request.headers ?? {})) headerObj[k.toLowerCase()] = v;
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(headerObj)) for (const x of norm(v)) rawHeaders.push(k, x);
  for (const [k, v] of c.request.rawHeaders ?? []) rawHeaders.push(k!, v!);
  const exp = c.expect;
  let rule = '-';
  let p: Plan | undefined;
  let error: KeygateError | undefined;
  let served: string | null = null;
  try {
    const target = canonicalize(url);
    const decision = authorize(policy, principal, method, target);
    const route = decision.route;
    const role = policy.roles.get(decision.role)!;
    rule = route === null ? `role ${decision.role} grants * (undeclared route)` : `role ${decision.role} grants ${route.permission} via ${route.template.text} (${formatPosition(role.position)})`;
    served = route?.serve ?? null;
    // A served route is answered by its handler, which judges the body and the conditions itself: there is no forwarded request to plan.
    if (served === null)
      p = await plan(
        { policy, attributes: new FixtureAttributes(file.fixtures) },
        principal,
        {
          method,
          target,
          rawHeaders,
          remoteAddress: '127.0.0.1',
          trustedHop: c.request.trustedHop === true,
          requestId: 'test',
          readBody: async () => body ?? Buffer.alloc(0),
          maxBodyBytes: 1024 * 1024,
        },
        decision,
      );
  } catch (err) {
    if (!(err instanceof KeygateError)) throw err;
    error = err;
    rule = `${err.code}${err.detail === undefined ? '' : ` (${err.detail})`}`;
  }
  const decision = error === undefined ? 'allow' : 'deny';
  if (exp.decision !== undefined && exp.decision !== decision) failures.push(`decision: expected ${exp.decision}, got ${decision}${error ? ` ${error.status} ${error.code}` : ''}`);
  if (exp.status !== undefined && exp.status !== (error?.status ?? 200)) failures.push(`status: expected ${exp.status}, got ${error?.status ?? 'forwarded'}`);
  if (exp.code !== undefined && exp.code !== error?.code) failures.push(`code: expected ${exp.code}, got ${error?.code ?? 'none (allowed)'}`);
  if (exp.rule !== undefined && !rule.includes(exp.rule)) failures.push(`rule: expected "${exp.rule}", decided by ${rule}`);
  if (exp.serve !== undefined && exp.serve !== served)
    failures.push(`serve: expected Keygate to answer with ${exp.serve}, got ${served ?? (error === undefined ? 'a forwarded request' : 'a refusal')}`);
  if (served !== null && (exp.upstream !== undefined || exp.response !== undefined)) failures.push(`upstream: ${served} answers this route itself; nothing is forwarded (expect serve: ${served})`);
  const up = exp.upstream;
  if (up !== undefined && served === null) {
    if (p === undefined) failures.push('upstream: expected a forwarded request, but the request was refused');
    else {
      const headers = new Map<string, string>();
      for (let i = 0; i < p.headers.length; i += 2) headers.set(p.headers[i]!, p.headers[i + 1]!);
      const path = p.path.split('?', 1)[0];
      if (up.method !== undefined && up.method !== p.method) failures.push(`upstream.method: expected ${up.method}, got ${p.method}`);
      if (up.path !== undefined && up.path !== path) failures.push(`upstream.path: expected ${up.path}, got ${path}`);
      if (up.query !== undefined) {
        const got = queryMap(p.path);
        const want = Object.fromEntries(Object.entries(up.query).map(([k, v]) => [k, norm(v)]));
        if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(want).sort())) failures.push(`upstream.query: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
      }
      for (const [k, v] of Object.entries(up.headers ?? {})) {
        if (headers.get(k.toLowerCase()) !== String(v)) failures.push(`upstream.headers.${k}: expected ${v}, got ${headers.get(k.toLowerCase()) ?? '(absent)'}`);
      }
      for (const k of up.removedHeaders ?? []) if (headers.has(k.toLowerCase())) failures.push(`upstream.removedHeaders: ${k} is still sent`);
      if (up.body !== undefined) {
        const want = typeof up.body === 'string' ? up.body : JSON.stringify(up.body);
        const got = Buffer.isBuffer(p.body) ? p.body.toString() : p.body === 'stream' ? body?.toString() : '';
        if (got !== want) failures.push(`upstream.body: expected ${want}, got ${got}`);
      }
    }
  }
  if (exp.response !== undefined && served === null) {
    if (p === undefined) failures.push('response: expected a forwarded request, but the request was refused');
    else {
      const res = c.response ?? {};
      const resBody = Buffer.from(typeof res.body === 'string' ? res.body : JSON.stringify(res.body ?? null));
      const answer = { status: res.status ?? 200, headers: { 'content-type': 'application/json', ...res.headers }, body: resBody };
      let status: number;
      let code: string | undefined;
      let out: unknown;
      let text: string | undefined;
      let released: Map<string, string> | undefined;
      try {
        const checked = p.check === null ? answer : await p.check(answer);
        status = checked.status;
        text = checked.body.toString();
        out = JSON.parse(text);
        // What the client gets, as serve writes it (server/proxy-handler.ts: the backend's headers, or Keygate's length for a body it wrote).
        const list = responseHeaders(checked.headers, 'test', checked.body === answer.body ? undefined : checked.body.length);
        released = new Map();
        for (let i = 0; i < list.length; i += 2) released.set(list[i]!, list[i + 1]!);
      } catch (err) {
        if (!(err instanceof KeygateError)) throw err;
        status = err.status;
        code = err.code;
      }
      const r = exp.response;
      if (r.status !== undefined && r.status !== status) failures.push(`response.status: expected ${r.status}, got ${status}${code ? ` ${code}` : ''}`);
      if (r.code !== undefined && r.code !== code) failures.push(`response.code: expected ${r.code}, got ${code ?? 'none'}`);
      if (r.items !== undefined) {
        const items = Array.isArray(out) ? out : (out as { data?: unknown[] } | undefined)?.data;
        if (items?.length !== r.items) failures.push(`response.items: expected ${r.items}, got ${items?.length ?? 'no list'}`);
      }
      if (r.body !== undefined && JSON.stringify(r.body) !== JSON.stringify(out)) failures.push(`response.body: expected ${JSON.stringify(r.body)}, got ${JSON.stringify(out)}`);
      if (r.text !== undefined && r.text !== text) failures.push(`response.text: expected ${r.text}, got ${text ?? '(refused)'}`);
      for (const [k, v] of Object.entries(r.headers ?? {})) {
        const got = released?.get(k.toLowerCase());
        if ((v === null ? undefined : String(v)) !== got) failures.push(`response.headers.${k}: expected ${v ?? '(absent)'}, got ${got ?? '(absent)'}`);
      }
    }
  }
  return { failures, rule };
}

/** Reads every test file (TestFileError: exit 3, nothing run) and runs their cases in order. */
export async function runPolicyTests(policy: CompiledPolicy, testFiles: readonly string[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const file of readTestFiles(testFiles, policy)) {
    for (const c of file.tests) {
      const { failures, rule } = await runCase(policy, file, c);
      results.push({ file: basename(file.file), name: c.name, ok: failures.length === 0, failures, rule });
    }
  }
  return results;
}
