/** Methods a policy may name. Anything else is refused with 405 before matching. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type Method = (typeof METHODS)[number];

export type TemplateSegment =
  | { readonly kind: 'literal'; readonly values: readonly string[] } // `devices` or `{history|alerts}`
  | { readonly kind: 'param'; readonly name: string }; // `{id}`

export interface RouteTemplate {
  readonly method: Method;
  readonly segments: readonly TemplateSegment[];
  /** Normalised text, e.g. `GET /v1/devices/{id}`: the metrics label and the explain output. */
  readonly text: string;
  readonly params: readonly string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,=:@]+$/;

/** Parses `METHOD /a/{b}/{c|d}`; returns a one-line reason instead of throwing. */
export function parseRouteTemplate(text: string): RouteTemplate | string {
  const m = /^([A-Z]+) +(\/\S*)$/.exec(text.trim());
  if (m === null) return `route "${text}" must be "METHOD /path", e.g. "GET /v1/devices/{id}"`;
  const method = m[1]!;
  if (!(METHODS as readonly string[]).includes(method)) return `route "${text}": unknown method ${method} (expected one of ${METHODS.join(', ')})`;
  const path = m[2]!;
  if (path === '/') return { method: method as Method, segments: [], text: `${method} /`, params: [] };
  const segments: TemplateSegment[] = [];
  const params: string[] = [];
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') return `route "${text}": empty path segment`;
    if (seg.startsWith('{') && seg.endsWith('}')) {
      const inner = seg.slice(1, -1);
      if (inner.includes('|')) {
        const values = inner.split('|');
        if (values.some((v) => !LITERAL.test(v))) return `route "${text}": bad alternative in ${seg}`;
        segments.push({ kind: 'literal', values });
      } else {
        if (!IDENT.test(inner)) return `route "${text}": parameter name ${seg} must be an identifier`;
        if (params.includes(inner)) return `route "${text}": parameter {${inner}} appears twice`;
        params.push(inner);
        segments.push({ kind: 'param', name: inner });
      }
    } else {
      if (!LITERAL.test(seg)) return `route "${text}": segment "${seg}" has characters that are not allowed in a path`;
      segments.push({ kind: 'literal', values: [seg] });
    }
  }
  return { method: method as Method, segments, text: `${method} ${path}`, params };
}

/** Builds a concrete path from a template whose only parameter is filled with `value`. */
export function fillTemplate(template: RouteTemplate, values: Readonly<Record<string, string>>): string {
  let out = '';
  for (const seg of template.segments) {
    out += '/' + (seg.kind === 'param' ? encodeURIComponent(values[seg.name] ?? '') : seg.values[0]);
  }
  return out === '' ? '/' : out;
}
