import { describe, expect, it } from 'vitest';
import { isJsonMediaType, judgeBody } from '../../src/pipeline/proving/request-body.ts';
import { parseStrictJson } from '../../src/pipeline/proving/strict-json.ts';

describe('the JSON media types a judged body may have', () => {
  it.each([
    'application/json',
    'APPLICATION/JSON',
    'application/json; charset=utf-8',
    'application/json;charset="UTF-8"',
    'application/json ; charset=utf-8',
    'application/vnd.texture+json',
    'application/merge-patch+json',
    'application/problem+json; charset=utf-8',
    'application/vnd.platform+json',
  ])('accepts %s', (type) => {
    expect(isJsonMediaType(type)).toBe(true);
  });

  it.each([
    'application/x-www-form-urlencoded+json',
    'application/vnd.urlencoded+json',
    'application/multipart+json',
    'application/vnd.form+json',
    'application/form-data+json',
    'application/octet-stream+json',
    'application/json, application/x-www-form-urlencoded',
    'application/json; boundary=x',
    'application/json; charset=utf-8; charset=utf-8',
    'application/json; charset=latin1',
    'application/json;',
    'text/json',
    'application/jsonp',
    'application/+json',
    'application/a_b+json',
    'application/json\u0000',
    ' application/json',
  ])('refuses %j', (type) => {
    expect(isJsonMediaType(type)).toBe(false);
  });
});

describe('judgeBody', () => {
  const code = (text: string, idKey?: string): string | undefined => {
    try {
      judgeBody(parseStrictJson(text), idKey);
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };

  it.each(['{"_method":"DELETE"}', '{"_METHOD":"PUT"}', '{"X-HTTP-Method-Override":"DELETE"}', '{"x_method_override":"DELETE"}', '{"X-Http-Method":"PUT"}'])(
    'refuses a method override field: %s',
    (text) => {
      expect(code(text)).toBe('INVALID_JSON_KEY');
    },
  );

  it.each(['{"id":"x"}', '{"ID":"x"}', '{"_id":"x"}', '{"Id":1}'])('refuses a field naming the proven id: %s', (text) => {
    expect(code(text, 'id')).toBe('RESOURCE_ID_OVERRIDE');
  });

  it('refuses a field naming a filtered attribute, in any spelling', () => {
    for (const text of ['{"referenceId":"bob"}', '{"Reference_Id":"bob"}']) {
      let code: string | undefined;
      try {
        judgeBody(parseStrictJson(text), undefined, new Set(['referenceid']));
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      expect(code, text).toBe('INVALID_JSON_KEY');
    }
  });

  it('allows the same names nested, and other fields', () => {
    expect(code('{"name":"x","input":{"id":"y","_method":"z"},"method":"heat"}', 'id')).toBeUndefined();
    expect(code('[{"id":"x"}]', 'id')).toBeUndefined();
  });
});
