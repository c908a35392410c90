import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { floatToBfloat16, bfloat16ToFloat, floatToHalf, halfToFloat } from '../../weights-converter/dtype';
import { readCheckpointSync } from '../../weights-converter/read';
import { duplicateTopLevelKey, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../weights-converter/safetensors';
import { expectCheckpointError, expectTensors, fixture, loadExpected, useTempDir } from './helpers';

/** A safetensors file by hand: header object, then raw data bytes. */
function stFile(header: unknown, data: Uint8Array, lenOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe('weights-converter/safetensors', () => {
  const tmp = useTempDir();
  const put = (name: string, bytes: Uint8Array) => tmp.put(bytes, name);

  it('reads F32, F16, BF16, F64, I64 and BOOL tensors and the metadata', () => {
    const exp = loadExpected()['mixed.safetensors'];
    const { tensors, metadata } = readSafetensors(fixture('mixed.safetensors'));
    expect(metadata).to.deep.equal({ format: 'pt', source: 'fixture' });
    expectTensors(tensors, exp.tensors);
    const h = readSafetensorsHeader(fixture('mixed.safetensors'));
    expect(h.entries.map((e) => e.name)).to.deep.equal(['a.f32', 'b.f16', 'c.bf16', 'd.f64', 'e.i64', 'f.bool', 'g.scalar']);
    expect(h.dataStart % 8).to.equal(0);
  });

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`writeSafetensors round trip as ${dtype}, atomically`, () => {
      const dir = path.join(tmp.dir, `w${dtype}`);
      fs.mkdirSync(dir);
      const file = path.join(dir, 'out.safetensors');
      const w = new Float32Array([0.1, -2.5, 3e4, 1e-6, 0, -0, 7.25, 65504]);
      const b = new Float32Array([1, 2, 3]);
      writeSafetensors(
        file,
        new Map([
          ['layer.weight', { shape: [2, 4], data: w }],
          ['layer.bias', { shape: [3], data: b }],
        ]),
        { format: 'pt' },
        { dtype },
      );
      expect(fs.readdirSync(dir)).to.deep.equal(['out.safetensors']);
      // The header, parsed independently of the reader.
      const bytes = fs.readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      expect(n % 8).to.equal(0);
      const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
      const item = dtype === 'F32' ? 4 : 2;
      expect(header['layer.weight']).to.deep.equal({ dtype, shape: [2, 4], data_offsets: [0, 8 * item] });
      expect(header['layer.bias']).to.deep.equal({ dtype, shape: [3], data_offsets: [8 * item, 11 * item] });
      expect(header.__metadata__).to.deep.equal({ format: 'pt' });
      expect(bytes.length).to.equal(8 + n + 11 * item);

      const round = (x: number) => (dtype === 'F32' ? Math.fround(x) : dtype === 'F16' ? halfToFloat(floatToHalf(x)) : bfloat16ToFloat(floatToBfloat16(x)));
      const c = readCheckpointSync(file);
      expect(c.format).to.equal('safetensors');
      expect(c.metadata).to.deep.equal({ format: 'pt' });
      expect(c.tensors.get('layer.weight')!.shape).to.deep.equal([2, 4]);
      expect([...c.tensors.get('layer.weight')!.data]).to.deep.equal([...w].map(round));
      expect([...c.tensors.get('layer.bias')!.data]).to.deep.equal([1, 2, 3]);
    });
  }

  it('refuses a header that names a tensor twice (JSON.parse would keep the last)', () => {
    const one = '"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}';
    const file = put('dup.safetensors', stFile(`{${one}, "__metadata__": {"w": "not a tensor key"}, ${one}}`, new Uint8Array(4)));
    expectCheckpointError(() => readSafetensors(file), /safetensors header names 'w' twice/);
    expect(duplicateTopLevelKey('{"a": {"a": 1}, "b": "a"}'), 'nested keys and string values are not top-level keys').to.equal(null);
  });

  it('writeSafetensors rejects a shape that does not match the data', () => {
    expectCheckpointError(
      () => writeSafetensors(path.join(tmp.dir, 'bad.safetensors'), new Map([['x', { shape: [2, 2], data: new Float32Array(3) }]])),
      /tensor 'x' has shape \[2, 2\] but 3 values/,
    );
    expect(fs.existsSync(path.join(tmp.dir, 'bad.safetensors'))).to.equal(false);
  });

  describe('hostile headers', () => {
    const f32x4 = Buffer.alloc(16);
    const cases: [string, () => Buffer, RegExp][] = [
      ['header length 2^60', () => stFile({}, Buffer.alloc(0), 1n << 60n), /safetensors header length 1152921504606846976 exceeds the 100000000-byte limit/],
      ['header length past the end', () => stFile('{}', Buffer.alloc(0), 1000n), /truncated safetensors file: header length 1000 but only 2 bytes follow/],
      ['header not JSON', () => stFile('{"a": [1, 2', Buffer.alloc(0)), /safetensors header is not valid JSON/],
      ['header a JSON array', () => stFile('[1, 2]   ', Buffer.alloc(0)), /not a JSON object|unrecognized format/],
      [
        'offsets past the data',
        () => stFile({ x: { dtype: 'F32', shape: [100], data_offsets: [0, 400] } }, f32x4),
        /data_offsets \[0, 400\] extend past the 16-byte data area/,
      ],
      [
        'size that disagrees with the shape',
        () => stFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, f32x4),
        /spans 16 bytes but shape \[3\] of F32 needs 12/,
      ],
      [
        'overlapping tensors',
        () =>
          stFile(
            {
              x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
              y: { dtype: 'F32', shape: [3], data_offsets: [4, 16] },
            },
            f32x4,
          ),
        /entries 'x' and 'y' overlap/,
      ],
      ['a gap', () => stFile({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, f32x4), /gap before 'x'/],
      [
        'uncovered trailing data',
        () => stFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32x4),
        /data area is 16 bytes but the tensors cover 8/,
      ],
      ['reversed offsets', () => stFile({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, f32x4), /invalid data_offsets/],
      ['negative shape', () => stFile({ x: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, f32x4), /invalid shape \[-4\]/],
      ['unsupported dtype', () => stFile({ x: { dtype: 'F8_E4M3', shape: [16], data_offsets: [0, 16] } }, f32x4), /unsupported dtype 'F8_E4M3'/],
      ['non-string metadata', () => stFile({ __metadata__: { a: 1 } }, Buffer.alloc(0)), /__metadata__ value 'a' is not a string/],
      ['shorter than 8 bytes', () => Buffer.from([1, 0, 0]), /unrecognized format|truncated/],
    ];
    for (const [what, make, re] of cases) {
      it(what, () => {
        const file = put(`${what.replace(/\W+/g, '_')}.safetensors`, make());
        expectCheckpointError(() => readCheckpointSync(file), re);
      });
    }
    it('the same checks apply to readSafetensors directly', () => {
      const file = put('direct.safetensors', stFile('{"a": [1, 2', Buffer.alloc(0)));
      expectCheckpointError(() => readSafetensors(file), /not valid JSON/);
      const short = put('short.safetensors', Buffer.from([1, 0, 0]));
      expectCheckpointError(() => readSafetensors(short), /truncated safetensors file: 3 bytes/);
    });
  });
});
