import { MAX_PAGING } from '../list-render.ts';
import type { FuncDef, ModuleDef } from './assembler.ts';

/**
 * The clean-answer proof (clean-scan.ts states what it proves and why that suffices) as a
 * WebAssembly program: the same grammar walk, function for function, over the answer
 * copied into the module's memory, so a byte costs a machine instruction or two instead
 * of JavaScript's ten, and a string's bytes are passed over sixteen at a time (SIMD: one
 * compare per stop class, one bitmask, one count of trailing zeros).
 *
 * Positions are memory addresses; FAIL (-1) is never one. The scan writes 32 zero bytes
 * after the answer: a NUL is a control character (a string stops and fails there) and no
 * JSON token, so nothing reads on past the end without failing, and no read needs a
 * bounds test. The host validates UTF-8 first, as the JavaScript scan does.
 *
 * Memory (the host writes the tables before a scan; the scan writes the padding):
 *   RESULT   item count, bare (1/0), page, perPage (0 = absent or not a paging number)
 *   CLASS    256 bytes: the class bits of each byte value (C_* below)
 *   CONFIG   field count, shortest folded name, then per field FIELD_SIZE bytes:
 *            name address, length, folded name address, length, allowed values' table
 *            address, count (the table: address and length of each value)
 *   CONFIG_BYTES … BODY   the names, folded names, values and tables
 *   BODY     the answer, its 32 zero bytes, then the item ranges (start, end: offsets in
 *            the answer) up to the limit the host gives
 */
export const RESULT = 0;
export const CLASS = 256;
export const CONFIG = 1024;
export const CONFIG_FIELDS = CONFIG + 16;
export const FIELD_SIZE = 24;
export const CONFIG_BYTES = 2048;
export const BODY = 65536;
export const PADDING = 32;

/** Class bits: a simple escape's letter after `\` (RFC 8259 §7), a hex digit, a decimal digit, JSON whitespace. */
export const C_ESCAPE = 1;
export const C_HEX = 2;
export const C_DIGIT = 4;
export const C_SPACE = 8;

const MAX_DEPTH = 64;

const ws = (p: string): string => `local.get ${p} i32.load8_u i32.const 0x20 i32.le_u if local.get ${p} call $ws local.set ${p} end`;
/** Returns FAIL when the i32 on the stack is true. */
const failIf = 'if i32.const -1 return end';
/** Stores the value on the stack in `p` and returns FAIL when it is FAIL. */
const setOrFail = (p: string): string => `local.tee ${p} i32.const 0 i32.lt_s ${failIf}`;
const classOf = (p: string, bit: number): string => `local.get ${p} i32.load8_u i32.load8_u offset=${CLASS} i32.const ${bit} i32.and`;

const i32 = (...names: string[]): [string, 'i32'][] => names.map((n) => [n, 'i32']);
const v128 = (...names: string[]): [string, 'v128'][] => names.map((n) => [n, 'v128']);

/**
 * The 16 bytes at $p as a bitmask in $m (left on the stack too) of a string's stops: a
 * quote, a backslash, a control character (unsigned ≤ 0x1f: min(v, 0x1f) = v).
 */
const strStops = `
  local.get $p v128.load local.tee $v
  local.get $vq i8x16.eq
  local.get $v local.get $vb i8x16.eq v128.or
  local.get $v local.get $vc i8x16.min_u local.get $v i8x16.eq v128.or
  i8x16.bitmask local.tee $m`;
/**
 * As strStops for a plain string: any byte but printable ASCII stops it too. v + 1 as a
 * signed byte is below 0x21 exactly for v < 0x20, v = 0x7f and v ≥ 0x80 (one add, one compare).
 */
const plainStops = `
  local.get $p v128.load local.tee $v
  local.get $vq i8x16.eq
  local.get $v local.get $vb i8x16.eq v128.or
  local.get $v local.get $v1 i8x16.add local.get $vs i8x16.lt_s v128.or
  i8x16.bitmask local.tee $m`;

/**
 * From $p (a string's first byte) to its first stop: returns at a quote; else leaves $p at
 * the stop. The first sixteen bytes are tested outside the loop: most strings end there,
 * and a loop costs a stack check each time it is entered.
 */
const untilQuote = (stops: string): string => `
  ${stops}
  i32.eqz
  if
    loop $scan
      local.get $p i32.const 16 i32.add local.set $p
      ${stops}
      i32.eqz br_if $scan
    end
  end
  local.get $p local.get $m i32.ctz i32.add local.tee $p
  i32.load8_u i32.const 0x22 i32.eq
  if local.get $p return end`;

/** The value at $p (depth $depth + 1), `$p` set after it: a string directly, anything else through $value. */
const memberValue = `
  local.get $p i32.load8_u i32.const 0x22 i32.eq
  if
    local.get $p call $str ${setOrFail('$p')}
    local.get $p i32.const 1 i32.add local.set $p
  else
    local.get $p local.get $depth i32.const 1 i32.add call $value ${setOrFail('$p')}
  end`;

const funcs: FuncDef[] = [
  {
    name: '$ws',
    params: i32('$p'),
    result: 'i32',
    locals: [],
    body: `
      loop $more
        ${classOf('$p', C_SPACE)}
        if local.get $p i32.const 1 i32.add local.set $p br $more end
      end
      local.get $p`,
  },
  {
    // The closing quote of the string opening at p when no escape or control character
    // comes before it (the usual string); else what $escaped finds from the first one.
    name: '$str',
    params: i32('$p'),
    result: 'i32',
    locals: [...i32('$m'), ...v128('$v', '$vq', '$vb', '$vc')],
    body: `
      local.get $p i32.const 1 i32.add local.set $p
      v128.const i8x16.all 0x22 local.set $vq
      v128.const i8x16.all 0x5c local.set $vb
      v128.const i8x16.all 0x1f local.set $vc
      ${untilQuote(strStops)}
      local.get $p call $escaped`,
  },
  {
    // From p (a backslash or a control character inside a string): the string's closing
    // quote, its escapes checked; FAIL at a control character or an escape RFC 8259 does not allow.
    name: '$escaped',
    params: i32('$p'),
    result: 'i32',
    locals: [...i32('$m', '$c'), ...v128('$v', '$vq', '$vb', '$vc')],
    body: `
      v128.const i8x16.all 0x22 local.set $vq
      v128.const i8x16.all 0x5c local.set $vb
      v128.const i8x16.all 0x1f local.set $vc
      loop $scan
        ${strStops}
        i32.eqz
        if local.get $p i32.const 16 i32.add local.set $p br $scan end
        local.get $p local.get $m i32.ctz i32.add local.tee $p
        i32.load8_u local.tee $c
        i32.const 0x22 i32.eq
        if local.get $p return end
        local.get $c i32.const 0x5c i32.ne ${failIf}
        local.get $p i32.load8_u offset=1 local.tee $c
        i32.const 0x75 i32.eq
        if
          local.get $p i32.load8_u offset=2 i32.load8_u offset=${CLASS}
          local.get $p i32.load8_u offset=3 i32.load8_u offset=${CLASS} i32.and
          local.get $p i32.load8_u offset=4 i32.load8_u offset=${CLASS} i32.and
          local.get $p i32.load8_u offset=5 i32.load8_u offset=${CLASS} i32.and
          i32.const ${C_HEX} i32.and i32.eqz ${failIf}
          local.get $p i32.const 6 i32.add local.set $p
          br $scan
        end
        local.get $c i32.load8_u offset=${CLASS} i32.const ${C_ESCAPE} i32.and i32.eqz ${failIf}
        local.get $p i32.const 2 i32.add local.set $p
        br $scan
      end
      i32.const -1`,
  },
  {
    // The closing quote of a string opening at p that holds printable ASCII only, without
    // a backslash (a key, an owner's value); else FAIL.
    name: '$plain',
    params: i32('$p'),
    result: 'i32',
    locals: [...i32('$m'), ...v128('$v', '$vq', '$vb', '$v1', '$vs')],
    body: `
      local.get $p i32.const 1 i32.add local.set $p
      v128.const i8x16.all 0x22 local.set $vq
      v128.const i8x16.all 0x5c local.set $vb
      v128.const i8x16.all 0x01 local.set $v1
      v128.const i8x16.all 0x21 local.set $vs
      ${untilQuote(plainStops)}
      i32.const -1`,
  },
  {
    name: '$memeq',
    params: i32('$a', '$b', '$n'),
    result: 'i32',
    locals: [],
    body: `
      ;; Up to sixteen bytes in one compare: both sides may be read sixteen bytes on (a
      ;; key in the answer, before its padding; a name or value in the tables, below BODY).
      local.get $n i32.const 16 i32.le_u
      if
        local.get $a v128.load local.get $b v128.load i8x16.eq i8x16.bitmask
        i32.const -1 i32.xor
        i32.const 1 local.get $n i32.shl i32.const 1 i32.sub
        i32.and i32.eqz return
      end
      block $no
        loop $more
          local.get $n i32.eqz if i32.const 1 return end
          local.get $a i32.load8_u local.get $b i32.load8_u i32.ne br_if $no
          local.get $a i32.const 1 i32.add local.set $a
          local.get $b i32.const 1 i32.add local.set $b
          local.get $n i32.const 1 i32.sub local.set $n
          br $more
        end
      end
      i32.const 0`,
  },
  {
    // The n bytes at a fold (lower case, '-' and '_' dropped: fold.ts) into the flen bytes at f.
    name: '$folds',
    params: i32('$a', '$n', '$f', '$flen'),
    result: 'i32',
    locals: i32('$e', '$j', '$c'),
    body: `
      local.get $a local.get $n i32.add local.set $e
      block $no
        loop $more
          local.get $a local.get $e i32.eq
          if local.get $j local.get $flen i32.eq return end
          local.get $a i32.load8_u local.set $c
          local.get $a i32.const 1 i32.add local.set $a
          local.get $c i32.const 0x2d i32.eq local.get $c i32.const 0x5f i32.eq i32.or br_if $more
          local.get $c i32.const 0x41 i32.sub i32.const 26 i32.lt_u
          if local.get $c i32.const 0x20 i32.or local.set $c end
          local.get $j local.get $flen i32.ge_u br_if $no
          local.get $c local.get $f local.get $j i32.add i32.load8_u i32.ne br_if $no
          local.get $j i32.const 1 i32.add local.set $j
          br $more
        end
      end
      i32.const 0`,
  },
  {
    // A key and its colon at p (a quote): the position after them, and $field the checked
    // field the key names (-1: none). A key that folds into a checked field without being it fails.
    name: '$key',
    params: i32('$p'),
    result: 'i32',
    locals: i32('$e', '$n', '$k', '$rec', '$nf'),
    body: `
      local.get $p call $plain ${setOrFail('$e')}
      i32.const -1 global.set $field
      local.get $e local.get $p i32.sub i32.const 1 i32.sub local.tee $n
      i32.const 0 i32.load offset=${CONFIG + 4}
      i32.ge_u
      if
        i32.const 0 i32.load offset=${CONFIG} local.set $nf
        block $named
          loop $names
            local.get $k local.get $nf i32.ge_u br_if $named
            local.get $k i32.const ${FIELD_SIZE} i32.mul i32.const ${CONFIG_FIELDS} i32.add local.set $rec
            local.get $rec i32.load offset=4 local.get $n i32.eq
            if
              local.get $p i32.const 1 i32.add local.get $rec i32.load local.get $n call $memeq
              if local.get $k global.set $field br $named end
            end
            local.get $k i32.const 1 i32.add local.set $k
            br $names
          end
        end
        global.get $field i32.const -1 i32.eq
        if
          i32.const 0 local.set $k
          block $checked
            loop $folded
              local.get $k local.get $nf i32.ge_u br_if $checked
              local.get $k i32.const ${FIELD_SIZE} i32.mul i32.const ${CONFIG_FIELDS} i32.add local.set $rec
              local.get $p i32.const 1 i32.add local.get $n local.get $rec i32.load offset=8 local.get $rec i32.load offset=12 call $folds
              ${failIf}
              local.get $k i32.const 1 i32.add local.set $k
              br $folded
            end
          end
        end
      end
      local.get $e i32.const 1 i32.add local.set $p
      ${ws('$p')}
      local.get $p i32.load8_u i32.const 0x3a i32.ne ${failIf}
      local.get $p i32.const 1 i32.add local.set $p
      ${ws('$p')}
      local.get $p`,
  },
  {
    // The end of the number at p (RFC 8259 §6: no leading zero, no bare dot, no empty exponent).
    name: '$num',
    params: i32('$p'),
    result: 'i32',
    locals: i32('$c'),
    body: `
      local.get $p i32.load8_u i32.const 0x2d i32.eq
      if local.get $p i32.const 1 i32.add local.set $p end
      local.get $p i32.load8_u i32.const 0x30 i32.eq
      if
        local.get $p i32.const 1 i32.add local.set $p
      else
        ${classOf('$p', C_DIGIT)} i32.eqz ${failIf}
        loop $int local.get $p i32.const 1 i32.add local.set $p ${classOf('$p', C_DIGIT)} br_if $int end
      end
      local.get $p i32.load8_u i32.const 0x2e i32.eq
      if
        local.get $p i32.const 1 i32.add local.set $p
        ${classOf('$p', C_DIGIT)} i32.eqz ${failIf}
        loop $frac local.get $p i32.const 1 i32.add local.set $p ${classOf('$p', C_DIGIT)} br_if $frac end
      end
      local.get $p i32.load8_u i32.const 0x20 i32.or i32.const 0x65 i32.eq
      if
        local.get $p i32.const 1 i32.add local.set $p
        local.get $p i32.load8_u local.tee $c i32.const 0x2b i32.eq local.get $c i32.const 0x2d i32.eq i32.or
        if local.get $p i32.const 1 i32.add local.set $p end
        ${classOf('$p', C_DIGIT)} i32.eqz ${failIf}
        loop $exp local.get $p i32.const 1 i32.add local.set $p ${classOf('$p', C_DIGIT)} br_if $exp end
      end
      local.get $p`,
  },
  {
    // A string, number or literal at p.
    name: '$scalar',
    params: i32('$p'),
    result: 'i32',
    locals: i32('$c', '$e'),
    body: `
      local.get $p i32.load8_u local.tee $c
      i32.const 0x22 i32.eq
      if
        local.get $p call $str ${setOrFail('$e')}
        local.get $e i32.const 1 i32.add return
      end
      local.get $c i32.const 0x74 i32.eq
      if
        local.get $p i32.load i32.const 0x65757274 i32.eq if local.get $p i32.const 4 i32.add return end
        i32.const -1 return
      end
      local.get $c i32.const 0x6e i32.eq
      if
        local.get $p i32.load i32.const 0x6c6c756e i32.eq if local.get $p i32.const 4 i32.add return end
        i32.const -1 return
      end
      local.get $c i32.const 0x66 i32.eq
      if
        local.get $p i32.load offset=1 i32.const 0x65736c61 i32.eq if local.get $p i32.const 5 i32.add return end
        i32.const -1 return
      end
      local.get $p call $num`,
  },
  {
    // Any value at p at nesting depth (the strict parser's count): no key in it may be a
    // checked field or look like one.
    name: '$value',
    params: i32('$p', '$depth'),
    result: 'i32',
    locals: i32('$c'),
    body: `
      local.get $depth i32.const ${MAX_DEPTH} i32.gt_s ${failIf}
      local.get $p i32.load8_u local.tee $c
      i32.const 0x22 i32.eq
      if
        local.get $p call $str ${setOrFail('$p')}
        local.get $p i32.const 1 i32.add return
      end
      local.get $c i32.const 0x7b i32.eq
      if
        local.get $p i32.const 1 i32.add local.set $p
        ${ws('$p')}
        local.get $p i32.load8_u i32.const 0x7d i32.eq if local.get $p i32.const 1 i32.add return end
        loop $member
          local.get $p i32.load8_u i32.const 0x22 i32.ne ${failIf}
          local.get $p call $key ${setOrFail('$p')}
          global.get $field i32.const -1 i32.ne ${failIf}
          ${memberValue}
          ${ws('$p')}
          local.get $p i32.load8_u local.set $c
          local.get $p i32.const 1 i32.add local.set $p
          local.get $c i32.const 0x7d i32.eq if local.get $p return end
          local.get $c i32.const 0x2c i32.ne ${failIf}
          ${ws('$p')}
          br $member
        end
      end
      local.get $c i32.const 0x5b i32.eq
      if
        local.get $p i32.const 1 i32.add local.set $p
        ${ws('$p')}
        local.get $p i32.load8_u i32.const 0x5d i32.eq if local.get $p i32.const 1 i32.add return end
        loop $element
          ${memberValue}
          ${ws('$p')}
          local.get $p i32.load8_u local.set $c
          local.get $p i32.const 1 i32.add local.set $p
          local.get $c i32.const 0x5d i32.eq if local.get $p return end
          local.get $c i32.const 0x2c i32.ne ${failIf}
          ${ws('$p')}
          br $element
        end
      end
      local.get $p call $scalar`,
  },
  {
    // Field k may see the n bytes at a: they are one of its allowed values.
    name: '$allowed',
    params: i32('$k', '$a', '$n'),
    result: 'i32',
    locals: i32('$t', '$cnt'),
    body: `
      local.get $k i32.const ${FIELD_SIZE} i32.mul i32.const ${CONFIG_FIELDS} i32.add local.tee $t
      i32.load offset=20 local.set $cnt
      local.get $t i32.load offset=16 local.set $t
      loop $more
        local.get $cnt i32.eqz if i32.const 0 return end
        local.get $t i32.load offset=4 local.get $n i32.eq
        if
          local.get $a local.get $t i32.load local.get $n call $memeq
          if i32.const 1 return end
        end
        local.get $t i32.const 8 i32.add local.set $t
        local.get $cnt i32.const 1 i32.sub local.set $cnt
        br $more
      end
      i32.const 0`,
  },
  {
    // An item at p ('{', at depth): each checked field once, with an unescaped value the key may see.
    name: '$item',
    params: i32('$p', '$depth'),
    result: 'i32',
    locals: i32('$seen', '$k', '$bit', '$e', '$c'),
    body: `
      local.get $p i32.const 1 i32.add local.set $p
      ${ws('$p')}
      local.get $p i32.load8_u i32.const 0x7d i32.eq ${failIf}
      loop $member
        local.get $p i32.load8_u i32.const 0x22 i32.ne ${failIf}
        local.get $p call $key ${setOrFail('$p')}
        global.get $field local.tee $k
        i32.const -1 i32.eq
        if
          ${memberValue}
        else
          i32.const 1 local.get $k i32.shl local.set $bit
          local.get $seen local.get $bit i32.and ${failIf}
          local.get $p i32.load8_u i32.const 0x22 i32.ne ${failIf}
          local.get $seen local.get $bit i32.or local.set $seen
          local.get $p call $plain ${setOrFail('$e')}
          local.get $k local.get $p i32.const 1 i32.add local.get $e local.get $p i32.sub i32.const 1 i32.sub call $allowed
          i32.eqz ${failIf}
          local.get $e i32.const 1 i32.add local.set $p
        end
        ${ws('$p')}
        local.get $p i32.load8_u local.set $c
        local.get $p i32.const 1 i32.add local.set $p
        local.get $c i32.const 0x7d i32.eq
        if
          local.get $seen i32.const 1 i32.const 0 i32.load offset=${CONFIG} i32.shl i32.const 1 i32.sub i32.eq
          if local.get $p return end
          i32.const -1 return
        end
        local.get $c i32.const 0x2c i32.ne ${failIf}
        ${ws('$p')}
        br $member
      end
      i32.const -1`,
  },
  {
    // '[item, …]' at p, at depth, each item's range recorded.
    name: '$items',
    params: i32('$p', '$depth'),
    result: 'i32',
    locals: i32('$start', '$c'),
    body: `
      local.get $p i32.const 1 i32.add local.set $p
      ${ws('$p')}
      local.get $p i32.load8_u i32.const 0x5d i32.eq if local.get $p i32.const 1 i32.add return end
      loop $element
        local.get $p i32.load8_u i32.const 0x7b i32.ne
        local.get $depth i32.const ${MAX_DEPTH - 1} i32.gt_s i32.or ${failIf}
        local.get $p local.set $start
        local.get $p local.get $depth i32.const 1 i32.add call $item ${setOrFail('$p')}
        global.get $rp i32.const 8 i32.add global.get $rend i32.gt_u ${failIf}
        global.get $rp local.get $start i32.const ${BODY} i32.sub i32.store
        global.get $rp local.get $p i32.const ${BODY} i32.sub i32.store offset=4
        global.get $rp i32.const 8 i32.add global.set $rp
        ${ws('$p')}
        local.get $p i32.load8_u local.set $c
        local.get $p i32.const 1 i32.add local.set $p
        local.get $c i32.const 0x5d i32.eq if local.get $p return end
        local.get $c i32.const 0x2c i32.ne ${failIf}
        ${ws('$p')}
        br $element
      end
      i32.const -1`,
  },
  {
    // The whole number the bytes [a, e) spell when it is one from 1 to MAX_PAGING without sign, fraction or exponent; else 0.
    name: '$paging',
    params: i32('$a', '$e'),
    result: 'i32',
    locals: i32('$n', '$c'),
    body: `
      local.get $e local.get $a i32.sub i32.const 8 i32.gt_s
      local.get $a i32.load8_u i32.const 0x30 i32.eq i32.or
      if i32.const 0 return end
      loop $digit
        local.get $a local.get $e i32.lt_u
        if
          local.get $a i32.load8_u i32.const 0x30 i32.sub local.tee $c
          i32.const 9 i32.gt_u if i32.const 0 return end
          local.get $n i32.const 10 i32.mul local.get $c i32.add local.set $n
          local.get $a i32.const 1 i32.add local.set $a
          br $digit
        end
      end
      local.get $n i32.const ${MAX_PAGING} i32.le_u
      if local.get $n return end
      i32.const 0`,
  },
  {
    // A bare array of items, or an envelope: 'data' once, 'page' and 'perPage' at most
    // once, every other field a scalar and none a checked one.
    name: '$list',
    params: i32('$p'),
    result: 'i32',
    locals: i32('$c', '$ks', '$isData', '$isPage', '$isPerPage', '$data', '$page', '$perPage', '$v', '$at'),
    body: `
      local.get $p i32.load8_u local.tee $c
      i32.const 0x5b i32.eq local.set $v
      i32.const 0 local.get $v i32.store offset=${RESULT + 4}
      i32.const 0 i32.const 0 i32.store offset=${RESULT + 8}
      i32.const 0 i32.const 0 i32.store offset=${RESULT + 12}
      local.get $v if local.get $p i32.const 0 call $items return end
      local.get $c i32.const 0x7b i32.ne ${failIf}
      local.get $p i32.const 1 i32.add local.set $p
      ${ws('$p')}
      loop $member
        local.get $p i32.load8_u i32.const 0x22 i32.ne ${failIf}
        local.get $p i32.const 1 i32.add local.set $ks
        local.get $p call $key ${setOrFail('$p')}
        global.get $field i32.const -1 i32.ne ${failIf}
        ;; "data", "page", "perPage" with their closing quotes, read as little-endian words
        local.get $ks i32.load i32.const 0x61746164 i32.eq local.get $ks i32.load8_u offset=4 i32.const 0x22 i32.eq i32.and local.set $isData
        local.get $ks i32.load i32.const 0x65676170 i32.eq local.get $ks i32.load8_u offset=4 i32.const 0x22 i32.eq i32.and local.set $isPage
        local.get $ks i64.load i64.const 0x2265676150726570 i64.eq local.set $isPerPage
        local.get $p i32.load8_u local.set $v
        local.get $isData
        if
          local.get $data local.get $v i32.const 0x5b i32.ne i32.or ${failIf}
          local.get $p i32.const 1 call $items ${setOrFail('$p')}
          i32.const 1 local.set $data
        else
          local.get $isPage local.get $page i32.and
          local.get $isPerPage local.get $perPage i32.and i32.or
          local.get $v i32.const 0x7b i32.eq i32.or
          local.get $v i32.const 0x5b i32.eq i32.or ${failIf}
          local.get $p local.set $at
          local.get $p call $scalar ${setOrFail('$p')}
          local.get $isPage
          if i32.const 1 local.set $page i32.const 0 local.get $at local.get $p call $paging i32.store offset=${RESULT + 8} end
          local.get $isPerPage
          if i32.const 1 local.set $perPage i32.const 0 local.get $at local.get $p call $paging i32.store offset=${RESULT + 12} end
        end
        ${ws('$p')}
        local.get $p i32.load8_u local.set $c
        local.get $p i32.const 1 i32.add local.set $p
        local.get $c i32.const 0x7d i32.eq
        if
          local.get $data if local.get $p return end
          i32.const -1 return
        end
        local.get $c i32.const 0x2c i32.ne ${failIf}
        ${ws('$p')}
        br $member
      end
      i32.const -1`,
  },
  {
    // 1 when the len bytes at BODY are a clean answer of the shape (0: a list, 1: one
    // item), the item ranges written from rs up to rend; else 0.
    name: 'scan',
    exported: true,
    params: i32('$shape', '$len', '$rs', '$rend'),
    result: 'i32',
    locals: i32('$p'),
    body: `
      local.get $rs global.set $rp
      local.get $rend global.set $rend
      ;; the zero bytes after the answer (see the module comment)
      i32.const ${BODY} local.get $len i32.add local.tee $p i64.const 0 i64.store
      local.get $p i64.const 0 i64.store offset=8
      local.get $p i64.const 0 i64.store offset=16
      local.get $p i64.const 0 i64.store offset=24
      i32.const 0 i32.const 0 i32.store offset=${RESULT}
      i32.const ${BODY} call $ws local.set $p
      local.get $shape
      if
        local.get $p i32.load8_u i32.const 0x7b i32.eq
        if local.get $p i32.const 0 call $item local.set $p else i32.const -1 local.set $p end
      else
        local.get $p call $list local.set $p
      end
      local.get $p i32.const 0 i32.lt_s if i32.const 0 return end
      local.get $p call $ws i32.const ${BODY} local.get $len i32.add i32.eq
      if
        i32.const 0 global.get $rp local.get $rs i32.sub i32.const 3 i32.shr_u i32.store offset=${RESULT}
        i32.const 1 return
      end
      i32.const 0`,
  },
];

export const SCAN_MODULE: ModuleDef = {
  memoryPages: 2,
  globals: [
    { name: '$field', type: 'i32', init: -1 },
    { name: '$rp', type: 'i32', init: 0 },
    { name: '$rend', type: 'i32', init: 0 },
  ],
  funcs,
};
