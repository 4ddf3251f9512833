/**
 * A small WebAssembly assembler: a module of i32/i64/v128 functions over one exported,
 * growable memory, from a flat instruction text, to the binary format (WebAssembly core
 * spec 1.0 §5, with the fixed-width SIMD instructions). It knows only the instructions
 * Keygate's programs use, so every opcode here is one a test runs; an unknown mnemonic,
 * label, local or function is an error at assembly, never a silent byte.
 *
 * The text is one instruction per token group, `;;` to the end of a line a comment:
 *
 *   local.get $p  i32.load8_u offset=1  i32.const 0x22  i32.eq
 *   block $done  loop $next  …  br_if $next  end  end
 *
 * Blocks are void (`block`, `loop`, `if` … `else` … `end`); values leave them through
 * locals. `br`/`br_if` name a label, which the assembler turns into its depth.
 */
type ValType = 'i32' | 'i64' | 'v128';

export interface FuncDef {
  readonly name: string;
  readonly params: readonly (readonly [string, ValType])[];
  readonly result: ValType | null;
  readonly locals: readonly (readonly [string, ValType])[];
  readonly body: string;
  readonly exported?: boolean;
}

interface GlobalDef {
  readonly name: string;
  readonly type: 'i32';
  readonly init: number;
}

export interface ModuleDef {
  readonly memoryPages: number;
  readonly globals: readonly GlobalDef[];
  readonly funcs: readonly FuncDef[];
}

const TYPE_CODE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, v128: 0x7b };

/** Instructions without immediates. */
const PLAIN: Record<string, readonly number[]> = {
  unreachable: [0x00],
  nop: [0x01],
  return: [0x0f],
  drop: [0x1a],
  select: [0x1b],
  'i32.eqz': [0x45],
  'i32.eq': [0x46],
  'i32.ne': [0x47],
  'i32.lt_s': [0x48],
  'i32.lt_u': [0x49],
  'i32.gt_s': [0x4a],
  'i32.gt_u': [0x4b],
  'i32.le_s': [0x4c],
  'i32.le_u': [0x4d],
  'i32.ge_s': [0x4e],
  'i32.ge_u': [0x4f],
  'i64.eq': [0x51],
  'i64.ne': [0x52],
  'i32.clz': [0x67],
  'i32.ctz': [0x68],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.mul': [0x6c],
  'i32.and': [0x71],
  'i32.or': [0x72],
  'i32.xor': [0x73],
  'i32.shl': [0x74],
  'i32.shr_s': [0x75],
  'i32.shr_u': [0x76],
  'i8x16.splat': [0xfd, 0x0f],
  'i8x16.eq': [0xfd, 0x23],
  'i8x16.lt_s': [0xfd, 0x25],
  'i8x16.lt_u': [0xfd, 0x26],
  'i8x16.gt_u': [0xfd, 0x28],
  'v128.or': [0xfd, 0x50],
  'v128.and': [0xfd, 0x4e],
  'i8x16.bitmask': [0xfd, 0x64],
  'i8x16.add': [0xfd, 0x6e],
  'i8x16.sub': [0xfd, 0x71],
  'i8x16.min_u': [0xfd, 0x77],
};

/** Loads and stores: opcode and natural alignment (log2 of the access size). */
const MEMORY: Record<string, readonly [readonly number[], number]> = {
  'i32.load': [[0x28], 2],
  'i64.load': [[0x29], 3],
  'i32.load8_u': [[0x2d], 0],
  'i32.load16_u': [[0x2f], 1],
  'i32.store': [[0x36], 2],
  'i64.store': [[0x37], 3],
  'i32.store8': [[0x3a], 0],
  'v128.load': [[0xfd, 0x00], 4],
};

function uleb(n: number, out: number[]): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not a u32: ${n}`);
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
}

function sleb(n: bigint, out: number[]): void {
  for (;;) {
    const byte = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (byte & 0x40) === 0) || (n === -1n && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string, out: number[]): void {
  const bytes = Buffer.from(s, 'utf8');
  uleb(bytes.length, out);
  for (const b of bytes) out.push(b);
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  uleb(content.length, out);
  for (const b of content) out.push(b);
}

function vector(items: readonly number[][], out: number[]): void {
  uleb(items.length, out);
  for (const item of items) for (const b of item) out.push(b);
}

function integer(token: string, where: string): bigint {
  if (!/^-?(0x[0-9a-f]+|[0-9]+)$/i.test(token)) throw new Error(`${where}: not an integer: ${token}`);
  const neg = token.startsWith('-');
  const v = BigInt(neg ? token.slice(1) : token);
  return neg ? -v : v;
}

/** The body's instructions, encoded. */
function assembleBody(f: FuncDef, funcIndex: ReadonlyMap<string, number>, globalIndex: ReadonlyMap<string, number>): number[] {
  const localIndex = new Map<string, number>();
  for (const [n] of [...f.params, ...f.locals]) {
    if (localIndex.has(n)) throw new Error(`${f.name}: local ${n} declared twice`);
    localIndex.set(n, localIndex.size);
  }
  const tokens = f.body
    .replace(/;;[^\n]*/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '');
  const out: number[] = [];
  const labels: (string | null)[] = [];
  const where = (t: string): string => `${f.name}: ${t}`;
  for (let k = 0; k < tokens.length; k++) {
    const op = tokens[k]!;
    const next = (): string => {
      const t = tokens[++k];
      if (t === undefined) throw new Error(where(`${op} needs an operand`));
      return t;
    };
    const plain = PLAIN[op];
    if (plain !== undefined) {
      out.push(...plain);
      continue;
    }
    const mem = MEMORY[op];
    if (mem !== undefined) {
      let offset = 0;
      if (tokens[k + 1]?.startsWith('offset=')) offset = Number(integer(next().slice(7), where(op)));
      out.push(...mem[0]);
      // Alignment is a hint; 0 says nothing of the address, which here is often unaligned.
      uleb(0, out);
      uleb(offset, out);
      continue;
    }
    switch (op) {
      case 'block':
      case 'loop':
      case 'if': {
        const label = tokens[k + 1]?.startsWith('$') ? next() : null;
        labels.push(label);
        out.push(op === 'block' ? 0x02 : op === 'loop' ? 0x03 : 0x04, 0x40);
        break;
      }
      case 'else':
        if (labels.length === 0) throw new Error(where('else outside a block'));
        out.push(0x05);
        break;
      case 'end':
        if (labels.length === 0) throw new Error(where('end outside a block'));
        labels.pop();
        out.push(0x0b);
        break;
      case 'br':
      case 'br_if': {
        const label = next();
        const depth = labels.lastIndexOf(label);
        if (depth === -1) throw new Error(where(`no enclosing label ${label}`));
        out.push(op === 'br' ? 0x0c : 0x0d);
        uleb(labels.length - 1 - depth, out);
        break;
      }
      case 'local.get':
      case 'local.set':
      case 'local.tee': {
        const n = next();
        const i = localIndex.get(n);
        if (i === undefined) throw new Error(where(`no local ${n}`));
        out.push(op === 'local.get' ? 0x20 : op === 'local.set' ? 0x21 : 0x22);
        uleb(i, out);
        break;
      }
      case 'global.get':
      case 'global.set': {
        const n = next();
        const i = globalIndex.get(n);
        if (i === undefined) throw new Error(where(`no global ${n}`));
        out.push(op === 'global.get' ? 0x23 : 0x24);
        uleb(i, out);
        break;
      }
      case 'call': {
        const n = next();
        const i = funcIndex.get(n);
        if (i === undefined) throw new Error(where(`no function ${n}`));
        out.push(0x10);
        uleb(i, out);
        break;
      }
      case 'i32.const': {
        const v = integer(next(), where(op));
        if (v < -(2n ** 31n) || v >= 2n ** 32n) throw new Error(where(`i32 out of range: ${v}`));
        out.push(0x41);
        sleb(BigInt.asIntN(32, v), out);
        break;
      }
      case 'v128.const': {
        // Only the form with sixteen equal bytes: `v128.const i8x16.all 0x22`.
        if (next() !== 'i8x16.all') throw new Error(where('v128.const takes i8x16.all'));
        const v = integer(next(), where(op));
        if (v < 0n || v > 255n) throw new Error(where(`byte out of range: ${v}`));
        out.push(0xfd, 0x0c, ...new Array<number>(16).fill(Number(v)));
        break;
      }
      case 'i64.const': {
        const v = integer(next(), where(op));
        out.push(0x42);
        sleb(BigInt.asIntN(64, v), out);
        break;
      }
      default:
        throw new Error(where(`unknown instruction ${op}`));
    }
  }
  if (labels.length !== 0) throw new Error(where(`${labels.length} block(s) not ended`));
  out.push(0x0b);
  return out;
}

/** The module's bytes. */
export function assemble(def: ModuleDef): Uint8Array {
  const funcIndex = new Map<string, number>();
  for (const f of def.funcs) {
    if (funcIndex.has(f.name)) throw new Error(`function ${f.name} defined twice`);
    funcIndex.set(f.name, funcIndex.size);
  }
  const globalIndex = new Map(def.globals.map((g, i) => [g.name, i]));

  const types: number[][] = [];
  const typeKeys: string[] = [];
  const funcTypes = def.funcs.map((f) => {
    const t: number[] = [0x60];
    uleb(f.params.length, t);
    for (const [, ty] of f.params) t.push(TYPE_CODE[ty]);
    if (f.result === null) t.push(0);
    else t.push(1, TYPE_CODE[f.result]);
    const key = t.join(',');
    let i = typeKeys.indexOf(key);
    if (i === -1) {
      i = types.length;
      types.push(t);
      typeKeys.push(key);
    }
    return i;
  });

  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const typeSec: number[] = [];
  vector(types, typeSec);
  section(1, typeSec, out);

  const funcSec: number[] = [];
  uleb(funcTypes.length, funcSec);
  for (const t of funcTypes) uleb(t, funcSec);
  section(3, funcSec, out);

  // One memory, minimum pages, no maximum: the host grows it to the answer's size.
  const memSec: number[] = [1, 0x00];
  uleb(def.memoryPages, memSec);
  section(5, memSec, out);

  if (def.globals.length > 0) {
    const globalSec: number[] = [];
    uleb(def.globals.length, globalSec);
    for (const g of def.globals) {
      globalSec.push(TYPE_CODE[g.type], 0x01, 0x41);
      sleb(BigInt(g.init), globalSec);
      globalSec.push(0x0b);
    }
    section(6, globalSec, out);
  }

  const exports: number[][] = [];
  const memExport: number[] = [];
  name('memory', memExport);
  memExport.push(0x02, 0x00);
  exports.push(memExport);
  def.funcs.forEach((f, i) => {
    if (f.exported !== true) return;
    const e: number[] = [];
    name(f.name, e);
    e.push(0x00);
    uleb(i, e);
    exports.push(e);
  });
  const exportSec: number[] = [];
  vector(exports, exportSec);
  section(7, exportSec, out);

  const codeSec: number[] = [];
  uleb(def.funcs.length, codeSec);
  for (const f of def.funcs) {
    const body: number[] = [];
    // Locals as runs of one type, in declaration order (their indices follow the params').
    const runs: [number, ValType][] = [];
    for (const [, ty] of f.locals) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[1] === ty) last[0]++;
      else runs.push([1, ty]);
    }
    uleb(runs.length, body);
    for (const [count, ty] of runs) {
      uleb(count, body);
      body.push(TYPE_CODE[ty]);
    }
    body.push(...assembleBody(f, funcIndex, globalIndex));
    uleb(body.length, codeSec);
    for (const b of body) codeSec.push(b);
  }
  section(10, codeSec, out);
  return Uint8Array.from(out);
}
