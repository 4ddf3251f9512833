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
  const code = (text: string, idKey?: string, provenField?: string): string | undefined => {
    try {
      judgeBody(parseStrictJson(text), idKey === undefined ? {} : { idKeys: new Set([idKey, 'deviceid']), provenField });
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

  it.each(['{"id":"x"}', '{"ID":"x"}', '{"_id":"x"}', '{"Id":1}', '{"deviceId":"x"}', '{"Device_ID":"x"}'])('refuses a field naming the proven id: %s', (text) => {
    expect(code(text, 'id')).toBe('RESOURCE_ID_OVERRIDE');
  });

  it('refuses a field naming a filtered attribute, in any spelling', () => {
    for (const text of ['{"referenceId":"bob"}', '{"Reference_Id":"bob"}']) {
      let code: string | undefined;
      try {
        judgeBody(parseStrictJson(text), { filterKeys: new Set(['referenceid']) });
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      expect(code, text).toBe('INVALID_JSON_KEY');
    }
  });

  it('allows a nested plain id, a nested _method, and other fields', () => {
    expect(code('{"name":"x","input":{"id":"y","_method":"z"},"method":"heat"}', 'id')).toBeUndefined();
    expect(code('[{"id":"x"}]', 'id')).toBeUndefined();
  });

  it.each(['{"deviceId":"a","command":{"deviceId":"b"}}', '{"deviceId":"a","data":{"attributes":{"device_id":"b"}}}', '{"deviceId":"a","input":[{"x":1},{"DeviceID":"b"}]}', '[{"deviceId":"b"}]'])(
    'refuses the id named again at any depth (Rails wrap_parameters, JSON:API): %s',
    (text) => {
      expect(code(text, 'id', 'deviceId')).toBe('RESOURCE_ID_OVERRIDE');
    },
  );

  it("lets the proven field itself through, and refuses another of the id's names beside it", () => {
    expect(code('{"deviceId":"a","input":{"id":"i"}}', 'id', 'deviceId')).toBeUndefined();
    expect(code('{"deviceId":"a","id":"b"}', 'id', 'deviceId')).toBe('RESOURCE_ID_OVERRIDE');
  });

  it('refuses a filtered attribute nested too', () => {
    let caught: string | undefined;
    try {
      judgeBody(parseStrictJson('{"q":{"filter":{"referenceId":"bob"}}}'), { filterKeys: new Set(['referenceid']) });
    } catch (err) {
      caught = (err as { code?: string }).code;
    }
    expect(caught).toBe('INVALID_JSON_KEY');
  });
});
