import { isAscii, isUtf8 } from 'node:buffer';
import type { ListScan, ScanFields, ScanShape } from '../clean-scan.ts';
import { assemble } from './assembler.ts';
import { BODY, C_DIGIT, C_ESCAPE, C_HEX, C_SPACE, CLASS, CONFIG, CONFIG_BYTES, CONFIG_FIELDS, FIELD_SIZE, PADDING, RESULT, SCAN_MODULE } from './scan-program.ts';

/**
 * The clean-answer proof run by the WebAssembly program of scan-program.ts: the answer
 * (one buffer, or the chunks it arrived in) is copied into the module's memory, its
 * encoding checked there natively (`isAscii`, else `isUtf8`), and one call walks it.
 * `prove` answers as clean-scan.ts's JavaScript walk does, or undefined when these
 * fields do not fit the module's table (the caller then runs the JavaScript walk).
 */
export interface WasmScanner {
  prove(body: Buffer | readonly Buffer[], fields: ScanFields, shape: ScanShape, out?: ListScan): boolean | undefined;
}

const PAGE = 65536;

/** The part of the WebAssembly API used here (TypeScript's Node types do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

const WASM: WasmApi | undefined = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

function classTable(): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of '"\\/bfnrt') t[c.charCodeAt(0)]! |= C_ESCAPE;
  for (const c of '0123456789abcdefABCDEF') t[c.charCodeAt(0)]! |= C_HEX;
  for (const c of '0123456789') t[c.charCodeAt(0)]! |= C_DIGIT;
  for (const c of ' \n\r\t') t[c.charCodeAt(0)]! |= C_SPACE;
  return t;
}

/** The assembled module, or null when this runtime refuses it (no WebAssembly, or no SIMD). */
export function scanModuleBytes(): Uint8Array | null {
  if (WASM === undefined) return null;
  const bytes = assemble(SCAN_MODULE);
  return WASM.validate(bytes) ? bytes : null;
}

type ScanFn = (shape: number, len: number, rs: number, rend: number) => number;

export function createWasmScanner(): WasmScanner | null {
  const bytes = scanModuleBytes();
  if (bytes === null || WASM === undefined) return null;
  const instance = new WASM.Instance(new WASM.Module(bytes));
  const memory = instance.exports.memory as WasmMemory;
  const scan = instance.exports.scan as ScanFn;
  let u8 = new Uint8Array(memory.buffer);
  let i32 = new Int32Array(memory.buffer);
  // memory.buffer is a native getter: its size is remembered, and changes only by reserve().
  let size = memory.buffer.byteLength;
  u8.set(classTable(), CLASS);
  let loaded: ScanFields | null = null;

  /** Writes the fields' table; false when it does not fit below the answer. */
  function load(fields: ScanFields): boolean {
    const n = fields.names.length;
    let at = CONFIG_BYTES;
    const put = (bytes: Uint8Array): number => {
      const start = at;
      if (at + bytes.length > BODY) return -1;
      u8.set(bytes, at);
      at += bytes.length;
      return start;
    };
    i32[CONFIG >> 2] = n;
    i32[(CONFIG >> 2) + 1] = fields.minKey;
    for (let k = 0; k < n; k++) {
      const rec = (CONFIG_FIELDS + k * FIELD_SIZE) >> 2;
      const name = fields.nameBytes[k]!;
      const folded = fields.foldedBytes[k]!;
      const values = fields.allowed[k]!;
      i32[rec] = put(name);
      i32[rec + 1] = name.length;
      i32[rec + 2] = put(folded);
      i32[rec + 3] = folded.length;
      const table: number[] = [];
      for (const v of values) table.push(put(v), v.length);
      at = (at + 7) & ~7;
      if (at + 8 * values.length > BODY) return false;
      i32[rec + 4] = at;
      i32[rec + 5] = values.length;
      i32.set(table, at >> 2);
      at += 8 * values.length;
      if (i32[rec] === -1 || i32[rec + 2] === -1 || table.includes(-1)) return false;
    }
    return true;
  }

  /** Room for the answer, its padding and its item ranges (an item takes at least 8 bytes and its comma). */
  function reserve(len: number): boolean {
    const need = BODY + len + PADDING + 8 + 8 * (Math.ceil(len / 8) + 16);
    if (size < need) {
      try {
        memory.grow(Math.ceil((need - size) / PAGE));
      } catch {
        return false; // no memory for the copy: not proven, the full check decides
      }
      u8 = new Uint8Array(memory.buffer);
      i32 = new Int32Array(memory.buffer);
      size = memory.buffer.byteLength;
    }
    return true;
  }

  return {
    prove(body, fields, shape, out) {
      if (fields !== loaded) {
        loaded = null;
        if (fields.names.length > 30 || !load(fields)) return undefined;
        loaded = fields;
      }
      let len: number;
      if (Buffer.isBuffer(body)) {
        len = body.length;
        // The encoding checked on the answer itself: a native call on a fresh view costs more.
        if (!isAscii(body) && !isUtf8(body)) return false;
        if (!reserve(len)) return false;
        u8.set(body, BODY);
      } else {
        len = 0;
        for (const chunk of body as readonly Buffer[]) len += chunk.length;
        if (!reserve(len)) return false;
        let at = BODY;
        for (const chunk of body as readonly Buffer[]) {
          u8.set(chunk, at);
          at += chunk.length;
        }
        // A character may straddle two chunks: the encoding is checked on the joined copy.
        const copy = u8.subarray(BODY, BODY + len);
        if (!isAscii(copy) && !isUtf8(copy)) return false;
      }
      const rs = (BODY + len + PADDING + 7) & ~7;
      let clean: number;
      try {
        clean = scan(shape === 'list' ? 0 : 1, len, rs, size);
      } catch {
        // A trap is a fault of the program, never a proof: the full check decides.
        return false;
      }
      if (clean !== 1) return false;
      if (out !== undefined) {
        const count = i32[RESULT >> 2]!;
        out.count = count;
        out.bare = i32[(RESULT >> 2) + 1] === 1;
        out.page = i32[(RESULT >> 2) + 2]!;
        out.perPage = i32[(RESULT >> 2) + 3]!;
        const ranges = out.ranges;
        const base = rs >> 2;
        for (let k = 0; k < 2 * count; k++) ranges[k] = i32[base + k]!;
      }
      return true;
    },
  };
}
