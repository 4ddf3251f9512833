import { describe, expect, it } from 'vitest';
import type { KeygateError } from '../../src/errors/keygate-error.ts';
import { parseStrictJson } from '../../src/pipeline/proving/strict-json.ts';

const codeOf = (text: string): string | undefined => {
  try {
    parseStrictJson(text);
    return undefined;
  } catch (err) {
    return (err as KeygateError).code;
  }
};

describe('strict JSON', () => {
  it.each(['{"deviceId":"d1","input":{"a":[1,-7,true,false,null]}}', '  {"a" : "\\u00e9\\n\\"" }  ', '[]', '"x"', '0', '{"a":{"a":1}}'])('parses %s like JSON.parse', (text) => {
    expect(parseStrictJson(text)).toEqual(JSON.parse(text));
  });

  it.each(['{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"x":{"b":1,"b":1}}', '[{"k":1,"k":1}]'])('refuses duplicate keys in %s', (text) => {
    expect(codeOf(text)).toBe('DUPLICATE_JSON_KEY');
  });

  it.each(['', '{', '{"a":1,}', '[1,]', "{'a':1}", '{"a":01}', '{"a":1} x', 'NaN', '{"a":"\u0001"}', '{"a":"\\x"}', '['.repeat(100) + ']'.repeat(100)])('refuses invalid JSON %j', (text) => {
    expect(codeOf(text)).toBe('INVALID_JSON');
  });

  it.each([['2.5'], ['-3e2'], ['1.0'], ['-0'], ['9007199254740992'], ['9007199254740993'], ['12345678901234567890']])('keeps %s as its exact text, never a rounded float', (text) => {
    const v = parseStrictJson(`{"n":${text}}`) as { n: unknown };
    expect(typeof v.n).toBe('object');
    expect(JSON.stringify(v)).toBe(`{"n":${text}}`);
  });

  it.each([
    ['0', 0],
    ['-5', -5],
    ['9007199254740991', 9007199254740991],
  ])('reads the safe integer %s as a number', (text, n) => {
    expect((parseStrictJson(`{"n":${text}}`) as { n: unknown }).n).toBe(n);
  });

  it.each([
    '{"deviceId":"a","DeviceId":"b"}',
    '{"deviceId":"a","DEVICEID":"b"}',
    '{"deviceId":"a","device_id":"b"}',
    '{"deviceId":"a","devıceId":"b"}',
    '{"deviceId":"a","ｄｅｖｉｃｅＩｄ":"b"}',
    '{"x":{"siteKey":"a","siteKey":"b"}}',
    '{"x":{"siteKey":"a","siteKey":"b"}}'.replace('K', '\u212a'),
    '{"class":"a","claſs":"b"}',
  ])('refuses keys that fold into one: %s', (text) => {
    expect(codeOf(text)).toBe('DUPLICATE_JSON_KEY');
  });

  it.each(['{"deviceId\\u0000":"b"}', '{"deviceId\u007f":"b"}', '{"device\\u200bId":"b"}', '{"a":{"k\\u0001":1}}'])('refuses a key with a control or format character: %s', (text) => {
    expect(codeOf(text)).toBe('INVALID_JSON_KEY');
  });

  it('keeps __proto__ as plain data', () => {
    const v = parseStrictJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(v)).toEqual(['__proto__']);
  });
});
