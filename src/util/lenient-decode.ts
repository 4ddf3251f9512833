const ESCAPE = /%([0-9A-Fa-f]{2})/g;

/**
 * `%XX` escapes decoded as single characters (each byte one UTF-16 unit, so multi-byte
 * UTF-8 stays as its bytes), whatever else the text holds — where decodeURIComponent
 * throws on one bad escape and decodes nothing. Up to `rounds` times, so double encoding
 * (`%2500`) does not hide a character. For comparing and masking, never for forwarding.
 */
export function decodeLeniently(text: string, rounds = 3): string {
  let out = text;
  for (let i = 0; i < rounds && out.includes('%'); i++) out = out.replace(ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return out;
}
