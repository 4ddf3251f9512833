import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { generatePolicy } from '../../bench/policy-gen.ts';
import { compilePolicy, type PolicyText } from '../../src/policy/compile.ts';
import { readPolicyTexts } from '../../src/policy/load.ts';
import type { CompiledPolicy } from '../../src/policy/model.ts';
import { compileOffThread } from '../../src/policy/off-thread.ts';
import { PolicyLoadError } from '../../src/policy/policy-error.ts';
import type { TemplateSegment } from '../../src/policy/route-template.ts';

const ROOT = join(import.meta.dirname, '../..');

/** Everything but the matcher (compared by what it matches) and the load time. */
function comparable(p: CompiledPolicy): unknown {
  const { matcher: _m, loadedAt: _l, ...rest } = p;
  return rest;
}

/** A concrete path for a route template: each parameter filled, the first of each alternative. */
function samplePath(segments: readonly TemplateSegment[]): string[] {
  return segments.map((s) => (s.kind === 'param' ? 'x1' : s.values[0]!));
}

function expectSamePolicy(off: CompiledPolicy, direct: CompiledPolicy): void {
  expect(isDeepStrictEqual(comparable(off), comparable(direct))).toBe(true);
  for (const resource of off.resources.values()) {
    for (const routes of resource.actions.values()) {
      for (const route of routes) {
        // Identity inside the clone: a route's resource, and a lookup's, are the policy's own objects.
        expect(route.resource).toBe(resource);
        if (route.enforcement.kind === 'lookup') expect(route.enforcement.resource).toBe(off.resources.get(route.enforcement.resource.name));
        const path = samplePath(route.template.segments);
        const a = off.matcher.match(route.template.method, path);
        const b = direct.matcher.match(route.template.method, path);
        expect(a?.value.template.text).toBe(b?.value.template.text);
        expect(a?.value).toBe(
          off.resources
            .get(a!.value.resource.name)!
            .actions.get(a!.value.action)!
            .find((r) => r.template.text === a!.value.template.text),
        );
        expect(a?.params).toEqual(b?.params);
      }
    }
  }
}

describe('a reload compiles on a worker thread and gets the same policy', () => {
  const policyDirs = [
    join(ROOT, 'policies'),
    ...readdirSync(join(ROOT, 'policies/examples'))
      .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
      .map((f) => join(ROOT, 'policies/examples', f)),
  ];

  it.each(policyDirs)('%s', async (path) => {
    const texts = readPolicyTexts(path);
    expectSamePolicy(await compileOffThread(texts).result, compilePolicy(texts));
  });

  it('a generated policy of 2,000 routes', async () => {
    const texts: PolicyText[] = [{ file: 'generated.yaml', text: generatePolicy(2000) }];
    expectSamePolicy(await compileOffThread(texts).result, compilePolicy(texts));
  });

  it('refuses what compilePolicy refuses, with the same issues', async () => {
    const texts: PolicyText[] = [{ file: 'bad.yaml', text: 'resources:\n  d:\n    actions: { list: [GET /a], list: [GET /b] }\nroles: {}\n' }];
    let direct: unknown;
    try {
      compilePolicy(texts);
    } catch (err) {
      direct = err;
    }
    expect(direct).toBeInstanceOf(PolicyLoadError);
    const off = await compileOffThread(texts).result.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(off).toBeInstanceOf(PolicyLoadError);
    expect((off as PolicyLoadError).issues).toEqual((direct as PolicyLoadError).issues);
  });
});
