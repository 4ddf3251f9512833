import type { Method, RouteTemplate } from './route-template.ts';

interface Leaf<T> {
  value: T;
  /** Parameter names in path order: the trie shares parameter nodes between routes. */
  names: readonly string[];
}

interface TrieNode<T> {
  literals: Map<string, TrieNode<T>> | null;
  param: TrieNode<T> | null;
  leaves: Map<Method, Leaf<T>> | null;
}

export interface Match<T> {
  readonly value: T;
  readonly params: Record<string, string>;
}

function node<T>(): TrieNode<T> {
  return { literals: null, param: null, leaves: null };
}

/**
 * A segment trie built once at load: matching costs O(path segments) map probes, no
 * regex and no allocation besides the params object. Literals win over parameters and
 * the matcher backtracks, so `/v1/devices/search` and `/v1/devices/{id}` coexist.
 * Matching is case-sensitive (invariant 2).
 */
export class RouteMatcher<T> {
  readonly #root: TrieNode<T> = node();

  /** Returns the value already registered for the same method and shape, if any (a conflict). */
  add(template: RouteTemplate, value: T): T | undefined {
    let conflict: T | undefined;
    const walk = (n: TrieNode<T>, i: number): void => {
      if (i === template.segments.length) {
        n.leaves ??= new Map();
        const existing = n.leaves.get(template.method);
        if (existing !== undefined) conflict ??= existing.value;
        else n.leaves.set(template.method, { value, names: template.params });
        return;
      }
      const seg = template.segments[i]!;
      if (seg.kind === 'param') {
        // Parameter names do not make shapes different: `{id}` and `{deviceId}` collide.
        n.param ??= node();
        walk(n.param, i + 1);
        return;
      }
      n.literals ??= new Map();
      for (const lit of seg.values) {
        let child = n.literals.get(lit);
        if (child === undefined) n.literals.set(lit, (child = node()));
        walk(child, i + 1);
      }
    };
    walk(this.#root, 0);
    return conflict;
  }

  match(method: Method, segments: readonly string[]): Match<T> | undefined {
    const values: string[] = [];
    const leaf = this.#walk(this.#root, method, segments, 0, values);
    if (leaf === undefined) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < leaf.names.length; i++) params[leaf.names[i]!] = values[i]!;
    return { value: leaf.value, params };
  }

  /**
   * The routes, of every method, at the deepest template that matches the whole path or a
   * prefix of it (literals tried first), and whether it matched the whole path; undefined
   * when no template matches any prefix. With `fold`, literals are compared folded (the
   * segments come folded already). Off the hot path: only undeclared requests ask.
   */
  deepest(segments: readonly string[], fold?: (text: string) => string): { readonly values: readonly T[]; readonly methods: readonly Method[]; readonly whole: boolean } | undefined {
    let best: TrieNode<T> | null = null;
    let bestDepth = -1;
    const visit = (n: TrieNode<T>, i: number): void => {
      if (n.leaves !== null && i > bestDepth) {
        best = n;
        bestDepth = i;
      }
      if (i === segments.length) return;
      if (fold === undefined) {
        const lit = n.literals?.get(segments[i]!);
        if (lit !== undefined) visit(lit, i + 1);
      } else if (n.literals !== null) {
        // Folded: the segment (folded by the caller) against every literal, folded alike.
        for (const [literal, child] of n.literals) if (fold(literal) === segments[i]) visit(child, i + 1);
      }
      if (n.param !== null) visit(n.param, i + 1);
    };
    visit(this.#root, 0);
    const found = best as TrieNode<T> | null;
    if (found === null || found.leaves === null) return undefined;
    return { values: [...found.leaves.values()].map((l) => l.value), methods: [...found.leaves.keys()], whole: bestDepth === segments.length };
  }

  #walk(n: TrieNode<T>, method: Method, segments: readonly string[], i: number, values: string[]): Leaf<T> | undefined {
    if (i === segments.length) {
      return n.leaves?.get(method) ?? (method === 'HEAD' ? n.leaves?.get('GET') : undefined);
    }
    const seg = segments[i]!;
    const lit = n.literals?.get(seg);
    if (lit !== undefined) {
      const m = this.#walk(lit, method, segments, i + 1, values);
      if (m !== undefined) return m;
    }
    if (n.param !== null) {
      values.push(seg);
      const m = this.#walk(n.param, method, segments, i + 1, values);
      if (m !== undefined) return m;
      values.pop();
    }
    return undefined;
  }
}
