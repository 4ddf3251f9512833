import { KeygateError } from '../errors/keygate-error.ts';
import { KeyInputError } from '../keys/key-fields.ts';
import { KeyNotFoundError, KeyStateError } from '../keys/key-service.ts';

/** The keys layer's refusals as the API's: the field named as the body names it (`names` maps the ones a shape renames). */
function apiError(err: unknown, names: Readonly<Record<string, string>> = {}): unknown {
  if (err instanceof KeyInputError) {
    const field = names[err.field] ?? err.field;
    return new KeygateError('INVALID_FIELD', { message: `${field}: ${err.message}`, field });
  }
  if (err instanceof KeyNotFoundError) return new KeygateError('KEY_NOT_FOUND', { detail: err.message });
  if (err instanceof KeyStateError) return new KeygateError('KEY_NOT_ACTIVE', { message: err.message });
  return err;
}

/** Runs `work`, turning the keys layer's errors into the API's. */
export async function asApi<T>(work: () => Promise<T>, names?: Readonly<Record<string, string>>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw apiError(err, names);
  }
}
