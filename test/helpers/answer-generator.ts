/**
 * Generated backend answers for the differential tests of the clean-answer proof: device
 * lists and items near every edge the scanners have (foreign and odd owners, nested
 * owners, field names in values, escapes, duplicates, look-alike keys, envelopes, nesting
 * at the limit), and byte-level mutations of them (noise, bad UTF-8). Seeded, so a
 * failure can be replayed.
 */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ws = (): string => (r() < 0.85 ? '' : pick([' ', '\n', '\t ', '\r\n']));
  // Strings past the scanner's four-byte steps, with quotes, escapes and owners at every offset.
  const long = (): string => {
    const pad = 'abcdefghijklmnopqrstuvwxyz0123'.slice(0, Math.floor(r() * 30));
    const inner = pick(['', '\\"', '\\\\', '\\u0041', '\\/', '\\"referenceId\\":\\"bob\\"', 'referenceId', ' ', 'ü', '☃', '\\n']);
    return `"${pad}${inner}${pad.slice(0, Math.floor(r() * pad.length))}"`;
  };
  const STRINGS = [
    '"x"',
    '"alice"',
    '"bob"',
    '"referenceId"',
    '"x\\"referenceId"',
    '"\\"referenceId\\""',
    '"K\\u00fcche"',
    '"Küche"',
    '"a\\\\b"',
    '""',
    '"data"',
    '"{\\"referenceId\\":\\"bob\\"}"',
    '"},{\\"referenceId\\":\\"bob\\"}"',
    '"\\\\"',
  ];
  const OWNERS = ['"alice"', '"alice"', '"alice"', '"bob"', '7', '["alice"]', '{"id":"alice"}', 'null', '"\\u0061lice"', '"referenceId"'];
  const KEYS = ['"id"', '"name"', '"referenceId"', '"referenc\\u0065Id"', '"data"', '"siteId"', '"page"'];
  // Keys other parsers may read as the owner's (case, separators, a dotless i, DEL) or as `data`.
  const LOOK_ALIKES = [
    '"ReferenceId"',
    '"reference_id"',
    '"referenceıd"',
    '"referenceId\u007f"',
    '"Data"',
    '"REFERENCEID"',
    '"reference-id"',
    '"_referenceId"',
    '"referenceId_"',
    '"REFERENCE_ID"',
    '"ReFeReNcEiD"',
    '"ｒｅｆｅｒｅｎｃｅＩｄ"',
    '"refer\u007fenceId"',
    '"referenceId\\u0000"',
    '"reference\u200dId"',
  ];
  const key = (): string => (r() < 0.1 ? pick(LOOK_ALIKES) : pick(KEYS));
  const NUMBERS = ['1', '-2.5e3', '0', '-0', '1E+2', '1e-7', '9007199254740993', '01', '1.', '.5', '-', '1e', '+1', '0x1', '1.0e'];
  const scalar = (): string => (r() < 0.15 ? long() : r() < 0.2 ? pick(NUMBERS) : pick([...STRINGS, '1', '-2.5e3', '0', 'true', 'false', 'null', 'nul', 'True']));
  const value = (depth: number): string => {
    const roll = r();
    if (depth > 3 || roll < 0.6) return scalar();
    // Nesting at the strict parser's limit of 64 (an item's fields are at depth 2 or 3).
    if (roll < 0.62) {
      const d = 58 + Math.floor(r() * 8);
      return `${'['.repeat(d)}${pick(['', '1', '{}', '[]'])}${']'.repeat(d)}`;
    }
    if (roll < 0.8) return `[${Array.from({ length: Math.floor(r() * 3) }, () => ws() + value(depth + 1) + ws()).join(',')}]`;
    const fields = Array.from({ length: Math.floor(r() * 3) }, () => `${ws()}${key()}${ws()}:${ws()}${pick([...OWNERS, scalar(), value(depth + 1)])}`);
    return `{${fields.join(',')}}`;
  };
  const item = (): string => {
    const fields: string[] = [];
    const owners = r() < 0.9 ? 1 : pick([0, 2]);
    for (let i = 0; i < owners; i++) fields.push(`"referenceId":${ws()}${pick(OWNERS)}`);
    const others = Math.floor(r() * 4);
    for (let i = 0; i < others; i++) fields.push(`${r() < 0.1 ? pick(LOOK_ALIKES) : pick(KEYS.filter((k) => k !== '"referenceId"' || r() < 0.1))}:${value(1)}`);
    fields.sort(() => r() - 0.5);
    return `${ws()}{${ws()}${fields.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
  };
  const list = (): string => {
    const items = `[${Array.from({ length: Math.floor(r() * 4) }, item).join(',')}]`;
    if (r() < 0.15) return items;
    const env = [`"data":${ws()}${items}`];
    if (r() < 0.5) env.push(pick(['"page":1', '"page":2', '"page":0', '"page":1.0', '"page":"1"']), '"totalItems":2');
    if (r() < 0.4) env.push(pick(['"perPage":2', '"perPage":3', '"perPage":50', '"perPage":-1', '"perPage":99999999']));
    if (r() < 0.05) env.push('"page":3');
    if (r() < 0.1) env.push(`"links":${value(1)}`);
    if (r() < 0.05) env.push(`"data":[${item()}]`);
    if (r() < 0.05) env.push('"referenceId":"bob"');
    env.sort(() => r() - 0.5);
    return `${ws()}{${env.join(',')}}${ws()}`;
  };
  const NOISE = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x0a, 0x00, 0x1f, 0x80, 0xc0, 0xff, 0x30, 0x31, 0x61, 0x65, 0x2e, 0x2d, 0x75, 0x7f, 0x09];
  // Bad UTF-8: an overlong quote, a truncated sequence, an encoded surrogate, a stray continuation byte.
  const BAD_UTF8 = [[0xc0, 0xa2], [0xe2, 0x98], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];
  const mutate = (b: Buffer): Buffer => {
    let out = b;
    if (r() < 0.1) {
      const at = Math.floor(r() * out.length);
      return Buffer.concat([out.subarray(0, at), Buffer.from(pick(BAD_UTF8)), out.subarray(at)]);
    }
    for (let m = 1 + Math.floor(r() * 3); m > 0 && out.length > 0; m--) {
      const at = Math.floor(r() * out.length);
      const op = r();
      if (op < 0.33) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
      else if (op < 0.66) out = Buffer.concat([out.subarray(0, at), Buffer.from([pick(NOISE)]), out.subarray(at)]);
      else {
        out = Buffer.from(out);
        out[at] = pick(NOISE);
      }
    }
    return out;
  };
  return { r, list, item, mutate };
}
