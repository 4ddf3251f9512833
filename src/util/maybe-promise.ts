/**
 * What a stage returns when its warm path is synchronous and only a miss waits (a key or
 * attribute cache hit, a plan with nothing to read, a response check with nothing to look
 * up): the value itself, or a promise of it. Callers test `instanceof Promise` and call
 * the next stage directly otherwise, so a warm request pays no promise and no microtask
 * hop. Never `await` one on the hot path.
 */
export type MaybePromise<T> = T | Promise<T>;
