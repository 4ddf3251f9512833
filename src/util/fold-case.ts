/**
 * `text` as a router that ignores case would compare it: compatibility forms folded
 * (fullwidth `ａ` is `a`, NFKC), then upper and back to lower case, so letters whose lower
 * case is not their folded form meet theirs too (the long s `ſ` is `s`, the Kelvin sign
 * `K` is `k`). For deciding whether a path is one of Keygate's own, never for routing.
 */
export function foldCase(text: string): string {
  return text.normalize('NFKC').toUpperCase().toLowerCase();
}
