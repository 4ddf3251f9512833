import { describe, expect, it } from 'vitest';
import { assemble, type FuncDef, type ModuleDef } from '../../src/pipeline/proving/wasm/assembler.ts';
import { SCAN_MODULE } from '../../src/pipeline/proving/wasm/scan-program.ts';
import { scanModuleBytes } from '../../src/pipeline/proving/wasm/wasm-scan.ts';

interface Instance {
  readonly exports: Record<string, unknown>;
}
const W = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean; Module: new (b: Uint8Array) => object; Instance: new (m: object) => Instance } }).WebAssembly;

const i32 = (...names: string[]): [string, 'i32'][] => names.map((n) => [n, 'i32']);

function module(funcs: FuncDef[], globals: ModuleDef['globals'] = []): Instance {
  const bytes = assemble({ memoryPages: 1, globals, funcs });
  expect(W.validate(bytes)).toBe(true);
  return new W.Instance(new W.Module(bytes));
}

const fn = (body: string, params = i32('$a', '$b'), locals: FuncDef['locals'] = []): FuncDef => ({ name: 'f', exported: true, params, result: 'i32', locals, body });
const call = (inst: Instance, ...args: number[]): number => (inst.exports.f as (...a: number[]) => number)(...args);

describe('the WebAssembly assembler', () => {
  it('writes a module header, an exported memory and an exported function', () => {
    const bytes = assemble({ memoryPages: 2, globals: [], funcs: [fn('local.get $a local.get $b i32.add')] });
    expect([...bytes.subarray(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(W.validate(bytes)).toBe(true);
    const inst = new W.Instance(new W.Module(bytes));
    expect(call(inst, 2, 40)).toBe(42);
    expect((inst.exports.memory as { buffer: ArrayBuffer }).buffer.byteLength).toBe(2 * 65536);
  });

  it('encodes constants as signed LEB128 at every width', () => {
    for (const v of [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, -8193, 0x7fffffff, -0x80000000, 0x65757274]) {
      expect(call(module([fn(`i32.const ${v}`)]))).toBe(v);
    }
    expect(call(module([fn('i32.const 0xffffffff')]))).toBe(-1);
    const i64 = module([fn('local.get $a i64.load i64.const 0x2265676150726570 i64.eq')]);
    const mem = new Uint8Array((i64.exports.memory as { buffer: ArrayBuffer }).buffer);
    mem.set(Buffer.from('perPage"'), 8);
    expect(call(i64, 8)).toBe(1);
    expect(call(i64, 9)).toBe(0);
  });

  it('resolves labels to depths, through nested blocks, loops and ifs', () => {
    // Sum 0..a-1, skipping multiples of b: a loop with a continue and a break.
    const sum = module([
      fn(
        `
      block $done
        loop $next
          local.get $i local.get $a i32.ge_u br_if $done
          local.get $i local.get $i i32.const 1 i32.add local.set $i
          local.get $b i32.const 1 i32.sub i32.and i32.eqz
          if br $next end
          local.get $s local.get $i i32.add i32.const 1 i32.sub local.set $s
          br $next
        end
      end
      local.get $s`,
        i32('$a', '$b'),
        i32('$i', '$s'),
      ),
    ]);
    let want = 0;
    for (let i = 0; i < 100; i++) if ((i & 3) !== 0) want += i;
    expect(call(sum, 100, 4)).toBe(want);
    const branch = module([fn('local.get $a if i32.const 7 local.set $b else i32.const 9 local.set $b end local.get $b')]);
    expect(call(branch, 1)).toBe(7);
    expect(call(branch, 0)).toBe(9);
  });

  it('calls functions by name and keeps globals', () => {
    const inst = module(
      [
        { name: '$twice', params: i32('$x'), result: 'i32', locals: [], body: 'local.get $x local.get $x i32.add' },
        fn('local.get $a call $twice global.get $g i32.add local.tee $a global.set $g local.get $a'),
      ],
      [{ name: '$g', type: 'i32', init: 5 }],
    );
    expect(call(inst, 1)).toBe(7);
    expect(call(inst, 1)).toBe(9);
  });

  it('the SIMD instructions do what the scanner relies on', () => {
    // The lanes of the 16 bytes at a that are '"', or (v - 0x20) mod 256 > 0x5e, or below 0x20.
    const stops = (sel: string): Instance => module([fn(`local.get $a v128.load ${sel} i8x16.bitmask`, i32('$a'), [['$v', 'v128']])]);
    const quote = stops('v128.const i8x16.all 0x22 i8x16.eq');
    const outside = stops('v128.const i8x16.all 0x20 i8x16.sub v128.const i8x16.all 0x5e i8x16.gt_u');
    const control = stops('v128.const i8x16.all 0x20 i8x16.lt_u');
    const either = stops('local.tee $v v128.const i8x16.all 0x22 i8x16.eq local.get $v v128.const i8x16.all 0x5c i8x16.eq v128.or');
    for (const inst of [quote, outside, control, either]) {
      const mem = new Uint8Array((inst.exports.memory as { buffer: ArrayBuffer }).buffer);
      for (let b = 0; b < 256; b++) mem[100 + (b % 16)] = 0x61;
      for (let b = 0; b < 256; b++) {
        const lane = b % 16;
        mem.fill(0x61, 100, 116);
        mem[100 + lane] = b;
        const want = inst === quote ? b === 0x22 : inst === outside ? b < 0x20 || b > 0x7e : inst === control ? b < 0x20 : b === 0x22 || b === 0x5c;
        expect(call(inst, 100)).toBe(want ? 1 << lane : 0);
      }
    }
    const ctz = module([fn('local.get $a i32.ctz')]);
    expect(call(ctz, 0b1000)).toBe(3);
    expect(call(ctz, 0)).toBe(32);
  });

  it('refuses what it does not know instead of writing a wrong byte', () => {
    const bad =
      (body: string, locals: FuncDef['locals'] = []): (() => Uint8Array) =>
      () =>
        assemble({ memoryPages: 1, globals: [], funcs: [fn(body, i32('$a'), locals)] });
    expect(bad('local.get $a i32.popcount')).toThrow(/unknown instruction i32.popcount/);
    expect(bad('block $x br $y end local.get $a')).toThrow(/no enclosing label \$y/);
    expect(bad('local.get $nope')).toThrow(/no local \$nope/);
    expect(bad('local.get $a call $nope')).toThrow(/no function \$nope/);
    expect(bad('global.get $nope')).toThrow(/no global \$nope/);
    expect(bad('block local.get $a')).toThrow(/not ended/);
    expect(bad('local.get $a end')).toThrow(/end outside a block/);
    expect(bad('i32.const 0x100000000')).toThrow(/out of range/);
    expect(bad('i32.const 1x')).toThrow(/not an integer/);
    expect(bad('v128.const i8x16.all 256 drop local.get $a')).toThrow(/byte out of range/);
    expect(bad('local.get $a', i32('$a'))).toThrow(/declared twice/);
    // A type error is the runtime's to find: the module is written, and refused.
    expect(W.validate(assemble({ memoryPages: 1, globals: [], funcs: [fn('i64.const 1')] }))).toBe(false);
  });

  it('assembles the scanner into a module the runtime validates', () => {
    const bytes = assemble(SCAN_MODULE);
    expect(W.validate(bytes)).toBe(true);
    expect(scanModuleBytes()).toEqual(bytes);
    const exports = Object.keys(new W.Instance(new W.Module(bytes)).exports).sort();
    expect(exports).toEqual(['memory', 'scan']);
  });
});
