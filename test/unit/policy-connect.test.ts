// The policy's `connect:` section: how the hosted Connect page finds a user's devices.
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { deviceStepUrl } from '../../src/policy/connect-section.ts';
import { formatIssue, PolicyLoadError } from '../../src/policy/policy-error.ts';

const BASE =
  "version: 1\nresources:\n  devices:\n    actions:\n      list: [GET /v1/devices]\nroles:\n  all:\n    permissions: ['*']\nkeyTypes:\n  server: [all]\n  connect: []\n  scoped: []\n  operator: [all]\n  access-token: []\n";
const STEP = 'https://backend.example/connect?ref={referenceId}&back={returnUrl}&state={state}';

function errorsOf(...texts: string[]): string {
  try {
    compilePolicy(
      texts.map((text, i) => ({ file: `p${i}.yaml`, text })),
      '/',
    );
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.issues.map(formatIssue).join('\n');
    throw err;
  }
  return '';
}

describe('connect: in a policy', () => {
  it('is off by default (consent over the devices the backend has), on with a deviceStep', () => {
    expect(compilePolicy([{ file: 'p.yaml', text: BASE }]).connect).toEqual({ deviceStep: null, devicesPath: '/v1/devices', deviceStepConfirm: null });
    const on = compilePolicy([
      { file: 'p.yaml', text: BASE },
      { file: 'c.yaml', text: `version: 1\nconnect:\n  deviceStep: '${STEP}'\n  devices: /v2/devices\n  deviceStepConfirm: /connect/confirm\n` },
    ]);
    expect(on.connect).toEqual({ deviceStep: STEP, devicesPath: '/v2/devices', deviceStepConfirm: '/connect/confirm' });
  });

  it.each([
    ["deviceStep: 'https://b.example/x?ref={referenceId}&back={returnUrl}'", /p1\.yaml:3:15 connect\.deviceStep must carry \{state\}/],
    ["deviceStep: 'https://b.example/x?ref={referenceId}&back={returnUrl}&state={state}&k={key}'", /unknown placeholder \{key\}/],
    ["deviceStep: 'ftp://b.example/{referenceId}{returnUrl}{state}'", /must be an http\(s\) URL/],
    ["deviceStep: 'https://{referenceId}.example/{returnUrl}{state}'", /placeholders may stand in its path or query only/],
    ['devices: v1/devices', /connect\.devices must be a path such as \/v1\/devices/],
    ['deviceSteps: x', /connect: unknown field "deviceSteps"/],
    ['deviceStepConfirm: /connect/confirm', /p1\.yaml:3:3 connect\.deviceStepConfirm needs a connect\.deviceStep/],
    [`deviceStep: '${STEP}'\n  deviceStepConfirm: https://evil.example/confirm`, /p1\.yaml:4:22 connect\.deviceStepConfirm must be a path such as \/connect\/confirm/],
    [`deviceStep: '${STEP}'\n  deviceStepConfirm: /connect/../admin`, /connect\.deviceStepConfirm must be a path/],
    ['devices: /v1/./devices', /connect\.devices must be a path such as \/v1\/devices/],
  ])('refuses %s with file:line:col', (line, expected) => {
    expect(errorsOf(BASE, `version: 1\nconnect:\n  ${line}\n`)).toMatch(expected);
  });

  it('may be given in one file only', () => {
    const c = `version: 1\nconnect:\n  deviceStep: '${STEP}'\n`;
    expect(errorsOf(BASE, c, c)).toMatch(/p2\.yaml:2:1 connect: is given in more than one policy file/);
  });

  it('fills the step URL with each value URL-encoded', () => {
    expect(deviceStepUrl(STEP, { referenceId: 'texture-generated:1', returnUrl: 'https://k.example/connect/links/t/return?display=popup', state: 's&t', manufacturers: '' })).toBe(
      'https://backend.example/connect?ref=texture-generated%3A1&back=https%3A%2F%2Fk.example%2Fconnect%2Flinks%2Ft%2Freturn%3Fdisplay%3Dpopup&state=s%26t',
    );
  });
});
