/**
 * The fused multiply-add variant of a kernel's text: every `(f32x4.add A (f32x4.mul B C))` becomes
 * `(f32x4.relaxed_madd B C A)` (relaxed SIMD: one rounding where the CPU has FMA, V8 emits
 * vfmadd231ps). Only that exact shape is rewritten, so each sum keeps its order; a kernel opts in
 * with a `;; fma variant` line (scripts/build-wasm.js), and the rewrite must find at least one.
 */
'use strict';

function skipSpace(text, i) {
  while (i < text.length && /\s/.test(text[i])) i++;
  return i;
}
/** End (exclusive) of the balanced s-expression or atom starting at `i`. */
function exprEnd(text, i) {
  if (text[i] !== '(') {
    while (i < text.length && !/[\s()]/.test(text[i])) i++;
    return i;
  }
  let depth = 0;
  for (; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i + 1;
    else if (text[i] === ';' && text[i + 1] === ';') while (i < text.length && text[i] !== '\n') i++;
  }
  throw new Error('unbalanced parentheses');
}

/** The operands of `(op X Y)` starting at `i`, or null if the expression there is not `(op X Y)`. */
function binary(text, i, op) {
  const head = `(${op} `;
  if (!text.startsWith(head, i)) return null;
  const x0 = skipSpace(text, i + head.length);
  const x1 = exprEnd(text, x0);
  const y0 = skipSpace(text, x1);
  const y1 = exprEnd(text, y0);
  const close = skipSpace(text, y1);
  if (text[close] !== ')') return null;
  return { x: text.slice(x0, x1), y: text.slice(y0, y1), end: close + 1 };
}

/** `text` with its multiply-adds fused, and how many were (comments are left as they are). */
function fuseMultiplyAdds(text) {
  const ADD = '(f32x4.add ';
  const next = /;;[^\n]*|\(f32x4\.add /g;
  let out = '';
  let count = 0;
  let i = 0;
  for (let m; (next.lastIndex = i), (m = next.exec(text));) {
    out += text.slice(i, m.index);
    const add = m[0] === ADD ? binary(text, m.index, 'f32x4.add') : null;
    const mul = add && binary(add.y, 0, 'f32x4.mul');
    if (add && mul && mul.end === add.y.length) {
      const inner = fuseMultiplyAdds(`${mul.x} ${mul.y} ${add.x}`);
      out += `(f32x4.relaxed_madd ${inner.text})`;
      count += 1 + inner.count;
      i = add.end;
    } else {
      out += m[0];
      i = m.index + m[0].length;
    }
  }
  return { text: out + text.slice(i), count };
}

module.exports = { fuseMultiplyAdds };
