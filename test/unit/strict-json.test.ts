import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../src/errors/keygate-error.ts';
import { parseStrictJson } from '../../src/pipeline/strict-json.ts';

const codeOf = (text: string): string | undefined => {
  try {
    parseStrictJson(text);
    return undefined;
  } catch (err) {
    return (err as KeygateError).code;
  }
};

describe('strict JSON', () => {
  it.each([
    '{"deviceId":"d1","input":{"a":[1,2.5,-3e2,true,false,null]}}',
    '  {"a" : "\\u00e9\\n\\"" }  ',
    '[]',
    '"x"',
    '0',
    '{"a":{"a":1}}',
  ])('parses %s like JSON.parse', (text) => {
    expect(parseStrictJson(text)).toEqual(JSON.parse(text));
  });

  it.each(['{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"x":{"b":1,"b":1}}', '[{"k":1,"k":1}]'])('refuses duplicate keys in %s', (text) => {
    expect(codeOf(text)).toBe('DUPLICATE_JSON_KEY');
  });

  it.each(['', '{', '{"a":1,}', '[1,]', "{'a':1}", '{"a":01}', '{"a":1} x', 'NaN', '{"a":"\u0001"}', '{"a":"\\x"}', '[' .repeat(100) + ']'.repeat(100)])('refuses invalid JSON %j', (text) => {
    expect(codeOf(text)).toBe('INVALID_JSON');
  });

  it('keeps __proto__ as plain data', () => {
    const v = parseStrictJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(v)).toEqual(['__proto__']);
  });
});
