import type { CompiledPolicy } from '../policy/model.ts';

/**
 * What a scoped key will be able to do, in the words a consent page uses, read from the
 * roles the policy gives scoped keys (so a policy that grants more says more). Known
 * permissions get a phrase; any other is named as `action resource`, never left out.
 */
const PHRASES: ReadonlyArray<{ readonly needs: readonly string[]; readonly text: string }> = [
  { needs: ['devices:list', 'devices:read'], text: 'see your devices and their history' },
  { needs: ['devices:list'], text: 'see the list of your devices' },
  { needs: ['devices:read'], text: 'see your devices and their history' },
  { needs: ['commands:command'], text: 'send commands to them' },
  { needs: ['commands:read'], text: 'see the commands sent to them' },
  { needs: ['commands:batch'], text: 'send commands to many devices at once' },
  { needs: ['devices:update'], text: "change your devices' tags" },
  { needs: ['devices:delete'], text: 'remove your devices' },
];

export interface Abilities {
  /** One phrase per thing the key may do, in a fixed order. */
  readonly phrases: readonly string[];
  /** The scoped role reaches every route (`*`): the page says so plainly. */
  readonly everything: boolean;
}

export function scopedAbilities(policy: CompiledPolicy): Abilities {
  const grants = new Set<string>();
  let everything = false;
  for (const name of policy.keyTypes.get('scoped') ?? []) {
    const role = policy.roles.get(name);
    if (role === undefined) continue;
    if (role.all) everything = true;
    for (const g of role.grants) {
      const [resource, action] = g.split(':') as [string, string];
      if (action === '*') {
        for (const a of policy.resources.get(resource)?.actions.keys() ?? []) grants.add(`${resource}:${a}`);
      } else grants.add(g);
    }
  }
  if (everything) return { phrases: ['everything this service can do with your account and every other account'], everything };
  const phrases: string[] = [];
  const covered = new Set<string>();
  for (const { needs, text } of PHRASES) {
    if (!needs.every((n) => grants.has(n)) || needs.every((n) => covered.has(n))) continue;
    for (const n of needs) covered.add(n);
    if (!phrases.includes(text)) phrases.push(text);
  }
  for (const g of [...grants].sort()) {
    if (covered.has(g)) continue;
    const [resource, action] = g.split(':') as [string, string];
    phrases.push(`${action} ${resource.replaceAll('-', ' ')}`);
  }
  return { phrases, everything };
}
