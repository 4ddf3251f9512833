import type { CompiledPolicy, CompiledResource } from '../../policy/model.ts';
import { foldName } from './fold.ts';

/**
 * Every name under which a backend may read one resource's id, in foldName form. A route
 * that proves the id from its path cannot let a query parameter or body field name that id
 * again under any of them: Laravel's `$request->deviceId` prefers input to the route
 * parameter, so `/v1/devices/{own}/history?deviceId={foreign}` would act on the foreign
 * device. The names are the ones the policy itself uses for the resource's id (path
 * placeholders, `body.deviceId`, `query.…`, `response.…` of every route proven against it),
 * plain `id`, `ids`, `uuid`, `guid` and `pk`, the resource's name, singular and plural, and the singular name
 * followed by `id`, `ids` or `uuid` (`devices` → `device`, `devices`, `deviceid`, …, which
 * also covers `device_id`, `DeviceID` and `device-id` once folded).
 */
const BY_POLICY = new WeakMap<CompiledPolicy, Map<CompiledResource, ReadonlySet<string>>>();

export function idNames(policy: CompiledPolicy, resource: CompiledResource): ReadonlySet<string> {
  let byResource = BY_POLICY.get(policy);
  if (byResource === undefined) {
    byResource = collect(policy);
    BY_POLICY.set(policy, byResource);
  }
  return byResource.get(resource) ?? baseNames(resource);
}

/** `devices` → `device`, `entries` → `entry`: how the id's names and the answer checks name one of a resource. */
export function singular(plural: string): string {
  if (plural.endsWith('ies')) return plural.slice(0, -3) + 'y';
  if (plural.endsWith('s')) return plural.slice(0, -1);
  return plural;
}

/**
 * The field an answer names one of the resource by: the id's own name when the policy
 * gives it one (`body.deviceId`, `{deviceId}`), else the singular name followed by `Id`
 * (`deviceId` for `devices` with a path `{id}`, where a bare `id` is the answer's own).
 */
export function idFieldOf(resource: CompiledResource, idName: string): string {
  return idName === 'id' ? singular(resource.name) + 'Id' : idName;
}

function baseNames(resource: CompiledResource): Set<string> {
  const one = singular(resource.name);
  // `device`: Laravel's resource routes name the parameter `{device}` (`$request->device`),
  // Django REST Framework a foreign key `"device": "<id>"`, JSON:API a relationship
  // `"device": {"data": {"id": …}}`; `deviceIds`, `devicesId`, `deviceUuid`, `uuid` too.
  // `ids`, `pk` (Django's primary key) and `guid` as well: the object-id names a proven answer is judged by.
  const names = new Set(['id', 'ids', 'uuid', 'guid', 'pk', ...[one, resource.name, one + 'id', one + 'ids', resource.name + 'id', one + 'uuid'].map(foldName)]);
  if (resource.lookup !== null) for (const p of resource.lookup.template.params) names.add(foldName(p));
  return names;
}

function collect(policy: CompiledPolicy): Map<CompiledResource, ReadonlySet<string>> {
  const out = new Map<CompiledResource, Set<string>>();
  const namesOf = (r: CompiledResource): Set<string> => {
    let names = out.get(r);
    if (names === undefined) {
      names = baseNames(r);
      out.set(r, names);
    }
    return names;
  };
  for (const resource of policy.resources.values()) {
    namesOf(resource);
    for (const routes of resource.actions.values()) {
      for (const route of routes) {
        const e = route.enforcement;
        if (e.kind === 'lookup') namesOf(e.resource).add(foldName(e.id.name));
      }
    }
  }
  for (const names of out.values()) Object.freeze(names);
  return out;
}
