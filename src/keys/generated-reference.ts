import { randomBytes } from 'node:crypto';

/** A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then 74 random bits. */
export function uuidv7(nowMs = Date.now()): string {
  const b = randomBytes(16);
  let ms = nowMs;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const GENERATED_PREFIX = 'texture-generated:';

/**
 * The referenceId Keygate gives a scoped key when its maker may not choose one (a connect
 * key without allowReferenceId), as Texture does: `texture-generated:<uuidv7>`.
 */
export function generatedReferenceId(): string {
  return `${GENERATED_PREFIX}${uuidv7()}`;
}

/**
 * Whether a key may choose the referenceId of the keys it makes (through the management
 * API or a Connect link): secret keys may; a public key only when it is a connect key
 * made with allowReferenceId: a public connect key may not choose whose devices the
 * minted key will see (invariant 12, README: Security).
 */
export function mayChooseReferenceId(maker: { readonly type: string; readonly allowReferenceId: boolean }): boolean {
  if (maker.type === 'connect') return maker.allowReferenceId;
  return maker.type !== 'scoped';
}
