import type { KeyRecord } from '../keys/key-record.ts';
import { mintKey } from '../keys/mint-key.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledPolicy } from '../policy/model.ts';

/**
 * A link that names its user mints a scoped key for that user: for a secret key
 * (server, operator, access token), the same key as `POST /v1/api-keys` with
 * `{type: scoped, referenceId}` would make, so it is judged the same way (invariant 12:
 * within the maker's power on every route, no longer-lived). An access token that may only
 * create links (`connections:create`) could otherwise mint, through a link it finishes
 * itself, a key to any user's devices. A connect key's chosen user is the operator's
 * explicit grant (`--allow-reference-id`, docs/connect.md) and is not judged here; a link
 * without a chosen user gets a fresh generated one, which no device belongs to until the
 * user links theirs in the flow.
 */
/** The management API's judgement of a key one key would make (src/admin/escalation.ts's checkNoEscalation, handed in by the server). */
export type MakerJudge = (maker: Principal, policy: CompiledPolicy, target: KeyRecord) => void;

export function checkChosenUser(judge: MakerJudge, maker: Principal, policy: CompiledPolicy, referenceId: string): void {
  if (maker.type === 'connect') return;
  const expiresAt = maker.expiresAtMs === Infinity ? null : new Date(maker.expiresAtMs).toISOString();
  const { record } = mintKey({ type: 'scoped', referenceId, allowedOrigins: maker.allowedOrigins, expiresAt, createdBy: maker.id });
  judge(maker, policy, record);
}
