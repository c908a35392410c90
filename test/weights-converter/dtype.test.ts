import { expect } from 'chai';
import {
  bfloat16ToFloat,
  decodeBFloat16,
  decodeElements,
  decodeFloat16,
  encodeBFloat16,
  encodeFloat16,
  floatToBfloat16,
  floatToHalf,
  halfToFloat,
} from '../../weights-converter/dtype';
import { CheckpointError } from '../../weights-converter/errors';
import { rng } from './helpers';

function u16le(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

describe('weights-converter/dtype', () => {
  describe('float16 → float32', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0001, 5.960464477539063e-8], // smallest subnormal 2^-24
      [0x03ff, 6.097555160522461e-5], // largest subnormal
      [0x0400, 6.103515625e-5], // smallest normal 2^-14
      [0x3555, 0.333251953125],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, value] of cases) {
      it(`0x${bits.toString(16).padStart(4, '0')} = ${value}`, () => {
        expect(halfToFloat(bits)).to.equal(value);
        expect(decodeFloat16(u16le([bits]))[0]).to.equal(value);
      });
    }
    it('keeps the sign of zero and decodes NaN', () => {
      expect(Object.is(halfToFloat(0x8000), -0)).to.equal(true);
      expect(Object.is(halfToFloat(0x0000), 0)).to.equal(true);
      expect(Number.isNaN(halfToFloat(0x7e00))).to.equal(true);
      expect(Number.isNaN(halfToFloat(0xfc01))).to.equal(true);
    });
    it('the table decoder agrees with the formula for all 65536 patterns', () => {
      const all = Array.from({ length: 65536 }, (_, i) => i);
      const decoded = decodeFloat16(u16le(all));
      for (let h = 0; h < 65536; h++) {
        const e = (h >> 10) & 0x1f;
        const m = h & 0x3ff;
        const s = h & 0x8000 ? -1 : 1;
        const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
        const got = decoded[h];
        if (Number.isNaN(want)) expect(Number.isNaN(got)).to.equal(true);
        else expect(Object.is(got, want), `0x${h.toString(16)}`).to.equal(true);
      }
    });
    it('decodes from an unaligned view', () => {
      const b = new Uint8Array(5);
      b.set(u16le([0x3c00, 0xc000]), 1);
      expect([...decodeFloat16(b.subarray(1))]).to.deep.equal([1, -2]);
    });
  });

  describe('bfloat16 → float32', () => {
    it('exact values', () => {
      expect(bfloat16ToFloat(0x3f80)).to.equal(1);
      expect(bfloat16ToFloat(0xc049)).to.equal(-3.140625);
      expect(bfloat16ToFloat(0x7f80)).to.equal(Infinity);
      expect(bfloat16ToFloat(0xff80)).to.equal(-Infinity);
      expect(Number.isNaN(bfloat16ToFloat(0x7fc0))).to.equal(true);
      expect(bfloat16ToFloat(0x0001)).to.equal(2 ** -133); // float32 subnormal
      expect([...decodeBFloat16(u16le([0x3f80, 0x4000, 0x8000]))]).to.deep.equal([1, 2, -0]);
    });
  });

  describe('float32 → float16 (round to nearest even)', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff], // below the midpoint to 65536
      [65520, 0x7c00], // midpoint: ties to even = inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
      [2 ** -25 * 1.0000001, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps: even is 2
      [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], // tie: even mantissa
      [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds up to even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up across the subnormal/normal boundary
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [value, bits] of cases) {
      it(`${value} → 0x${bits.toString(16).padStart(4, '0')}`, () => {
        expect(floatToHalf(value)).to.equal(bits);
      });
    }
    it('signed zero and NaN', () => {
      expect(floatToHalf(-0)).to.equal(0x8000);
      const n = floatToHalf(NaN);
      expect(n & 0x7c00).to.equal(0x7c00);
      expect(n & 0x3ff).to.not.equal(0);
    });
    it('round-trips every finite and infinite half exactly', () => {
      for (let h = 0; h < 65536; h++) {
        if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN
        expect(floatToHalf(halfToFloat(h)), `0x${h.toString(16)}`).to.equal(h);
      }
    });
    it('picks the nearest half (ties to even) for random floats', () => {
      const r = rng(7);
      for (let k = 0; k < 20000; k++) {
        const x = Math.fround((r() - 0.5) * 2 ** (Math.floor(r() * 44) - 26));
        const h = floatToHalf(x);
        const v = halfToFloat(h);
        if (!Number.isFinite(v)) {
          expect(Math.abs(x)).to.be.at.least(65520);
          continue;
        }
        const err = Math.abs(v - x);
        for (const n of [h - 1, h + 1]) {
          if (n < 0 || n > 0xffff || n >> 15 !== h >> 15 || (n & 0x7fff) >= 0x7c00) continue; // same sign, finite
          const other = Math.abs(halfToFloat(n) - x);
          expect(err, `x=${x} h=0x${h.toString(16)}`).to.be.at.most(other);
          if (err === other) expect(h & 1, `tie for ${x} goes to even`).to.equal(0);
        }
      }
    });
    it('encodeFloat16 / decodeFloat16 round trip an array', () => {
      const src = new Float32Array([0, -0, 1, -1.5, 0.1, 3.14159, 65504, 1e-5, -7e-8]);
      const enc = encodeFloat16(src);
      const dec = decodeFloat16(new Uint8Array(enc.buffer));
      for (let i = 0; i < src.length; i++) expect(dec[i]).to.equal(halfToFloat(floatToHalf(src[i])));
      expect(Math.abs(dec[4] - 0.1)).to.be.below(2 ** -14);
    });
  });

  describe('float32 → bfloat16 (round to nearest even)', () => {
    it('exact values and ties', () => {
      expect(floatToBfloat16(1)).to.equal(0x3f80);
      expect(floatToBfloat16(1 + 2 ** -8)).to.equal(0x3f80); // tie: even
      expect(floatToBfloat16(1 + 3 * 2 ** -8)).to.equal(0x3f82); // tie: up to even
      expect(floatToBfloat16(1 + 2 ** -8 + 2 ** -20)).to.equal(0x3f81);
      expect(floatToBfloat16(3.4028234663852886e38)).to.equal(0x7f80); // overflows to inf
      expect(floatToBfloat16(-Infinity)).to.equal(0xff80);
      const n = floatToBfloat16(NaN);
      expect(Number.isNaN(bfloat16ToFloat(n))).to.equal(true);
    });
    it('round-trips every non-NaN bfloat16', () => {
      for (let h = 0; h < 65536; h++) {
        if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) continue;
        expect(floatToBfloat16(bfloat16ToFloat(h))).to.equal(h);
      }
      const enc = encodeBFloat16(new Float32Array([1, -2, 0.5]));
      expect([...decodeBFloat16(new Uint8Array(enc.buffer))]).to.deep.equal([1, -2, 0.5]);
    });
  });

  describe('decodeElements', () => {
    it('float64 narrows to float32 with rounding', () => {
      const b = Buffer.alloc(17);
      b.writeDoubleLE(0.1, 1);
      b.writeDoubleLE(1e300, 9);
      const out = decodeElements(new Uint8Array(b.buffer, b.byteOffset + 1, 16), 'float64');
      expect(out).to.be.instanceOf(Float32Array);
      expect(out[0]).to.equal(Math.fround(0.1));
      expect(out[1]).to.equal(Infinity);
    });
    it('float32 from an unaligned view', () => {
      const b = Buffer.alloc(9);
      b.writeFloatLE(1.5, 1);
      b.writeFloatLE(-2.25, 5);
      expect([...decodeElements(new Uint8Array(b.buffer, b.byteOffset + 1, 8), 'float32')]).to.deep.equal([1.5, -2.25]);
    });
    it('integers widen to Int32Array; int64 must fit', () => {
      const b = Buffer.alloc(24);
      b.writeBigInt64LE(-5n, 0);
      b.writeBigInt64LE(2147483647n, 8);
      b.writeBigInt64LE(-2147483648n, 16);
      const out = decodeElements(new Uint8Array(b), 'int64');
      expect(out).to.be.instanceOf(Int32Array);
      expect([...out]).to.deep.equal([-5, 2147483647, -2147483648]);
      const big = Buffer.alloc(8);
      big.writeBigInt64LE(2147483648n, 0);
      expect(() => decodeElements(new Uint8Array(big), 'int64', 'f.pth')).to.throw(
        CheckpointError,
        /checkpoint f\.pth: int64 value 2147483648 at element 0 does not fit in int32/,
      );
      expect([...decodeElements(new Uint8Array([0xff, 0x80, 7]), 'int8')]).to.deep.equal([-1, -128, 7]);
      expect([...decodeElements(new Uint8Array([0xff, 0x80, 7]), 'uint8')]).to.deep.equal([255, 128, 7]);
      expect([...decodeElements(new Uint8Array([0x00, 0x80, 0xff, 0x7f]), 'int16')]).to.deep.equal([-32768, 32767]);
    });
    it('bool becomes 0/1 bytes', () => {
      const out = decodeElements(new Uint8Array([0, 1, 2, 255]), 'bool');
      expect(out).to.be.instanceOf(Uint8Array);
      expect([...out]).to.deep.equal([0, 1, 1, 1]);
    });
    it('rejects a byte count that is not a whole number of elements', () => {
      expect(() => decodeElements(new Uint8Array(6), 'float32')).to.throw(CheckpointError, /not a whole number of float32/);
    });
  });
});
