/**
 * Policies of any size for the growth bench and the policy-scale tests: `routes` routes in
 * all, one resource per route (the largest mappings a policy of that size can have), and
 * last the one route the bench requests, `GET /v1/devices`, a scoped list checked like
 * scenario 2's. The generated routes come in the shapes real policies have (collections,
 * items by id, sub-resources, alternatives) so the route trie is as wide and deep as theirs.
 */
export const LAST_ROUTE = 'GET /v1/devices';

const SHAPES = [
  (i: number) => `GET /v1/r${i}`,
  (i: number) => `GET /v1/r${i}/{id}`,
  (i: number) => `POST /v1/r${i}`,
  (i: number) => `PUT /v1/r${i}/{id}`,
  (i: number) => `GET /v1/r${i}/{id}/{history|alerts}`,
] as const;

export function generatePolicy(routes: number): string {
  if (!Number.isInteger(routes) || routes < 1) throw new Error(`generatePolicy: routes must be a whole number ≥ 1, not ${routes}`);
  const out: string[] = ['version: 1', 'resources:'];
  const generated = routes - 1;
  for (let i = 0; i < generated; i++) {
    out.push(`  r${i}:`, '    actions:', `      act: ['${SHAPES[i % SHAPES.length]!(i)}']`);
  }
  out.push(
    '  devices:',
    '    attributes:',
    "      lookup: 'GET /v1/devices/{id}'",
    '      fields: [referenceId]',
    '    actions:',
    '      list:',
    `        - route: ${LAST_ROUTE}`,
    '          conditions: filter',
    'roles:',
    '  full-access:',
    "    permissions: ['*']",
    '  device-owner:',
    "    permissions: ['devices:list']",
    '    conditions:',
    "      referenceId: '{key.referenceId}'",
  );
  if (generated > 0) {
    out.push('  generated:', '    permissions:');
    for (let i = 0; i < generated; i++) out.push(`      - 'r${i}:act'`);
  }
  out.push('keyTypes:', '  server: [full-access]', `  operator: [${generated > 0 ? 'generated' : 'full-access'}]`, '  scoped: [device-owner]', '  connect: []', '  access-token: []', '');
  return out.join('\n');
}
