import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scopedAbilities } from '../../../src/connect/abilities.ts';
import { consentPage, gonePage, handBackPage } from '../../../src/connect/pages/views.ts';
import { loadPolicy } from '../../../src/policy/load.ts';
import { ROOT } from '../../helpers/sidecar.ts';

const policy = loadPolicy(join(ROOT, 'policies'));

function view(overrides: Partial<Parameters<typeof consentPage>[0]> = {}): Parameters<typeof consentPage>[0] {
  return {
    clientName: 'Acme <script>alert(1)</script>',
    abilities: scopedAbilities(policy),
    returnTo: 'app.example.com',
    devices: [{ id: 'dev_1', name: 'Living room "thermostat"', manufacturer: 'ecobee', model: 'Premium' }],
    offerLinking: false,
    action: '/connect/links/tok',
    csrf: 'c"s<rf',
    popup: true,
    formTargets: ['https://app.example.com'],
    ...overrides,
  };
}

describe('hosted Connect pages', () => {
  it('say what the scoped role may do, in words, from the shipped policy', () => {
    expect(scopedAbilities(policy).phrases).toEqual(['see your devices and their history', 'send commands to them', 'see the commands sent to them']);
  });

  it('escape every value the link creator chose', () => {
    const page = consentPage(view());
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).toContain('Acme &lt;script&gt;alert(1)&lt;/script&gt; wants to use your devices');
    expect(page.body).toContain('value="c&quot;s&lt;rf"');
    expect(page.body).toContain('Living room &quot;thermostat&quot;');
  });

  it('carry no-store, no-referrer, no framing and a CSP that runs no inline script and admits the one stylesheet by hash', () => {
    const page = consentPage(view());
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('DENY');
    const csp = page.headers['content-security-policy']!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('script-src');
    expect(csp).toContain("form-action 'self' https://app.example.com");
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.body)![1]!;
    expect(csp).toContain(`style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page.body).not.toMatch(/\son[a-z]+=/i);
  });

  it('run the popup hand-back only as a same-origin script with a fresh nonce', () => {
    const a = handBackPage({
      targetOrigin: 'https://app.example.com',
      scopedKey: 'scoped_x',
      state: 's',
      fallbackUrl: 'https://app.example.com/?texture_scoped_key=scoped_x',
      script: '/connect/handback.js',
    });
    const b = handBackPage({ targetOrigin: 'https://app.example.com', scopedKey: 'scoped_x', state: 's', fallbackUrl: 'https://app.example.com/', script: '/connect/handback.js' });
    const nonce = /script-src 'nonce-([^']+)'/.exec(a.headers['content-security-policy']!)![1]!;
    expect(a.body).toContain(`<script nonce="${nonce}" src="/connect/handback.js"></script>`);
    expect(b.headers['content-security-policy']).not.toContain(nonce);
    expect(a.body).toContain('data-target-origin="https://app.example.com"');
  });

  it('answer a used link with 410 and no form', () => {
    const page = gonePage('used');
    expect(page.status).toBe(410);
    expect(page.body).toContain('already been used');
    expect(page.body).not.toContain('<form');
  });
});
