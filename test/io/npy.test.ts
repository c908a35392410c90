import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { encodeNpy, readNpy, readNpyFloat32, writeNpy } from '../../src/io/npy';
import { NpyError } from '../../src/errors';

const NPY = path.resolve(__dirname, '../../../test/fixtures/checkpoints/npy');

interface Expected {
  shape: number[];
  descr: string;
  values: (number | string)[];
}

function npyHeader(dict: string, version = 1): Buffer {
  const prefix = version === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const b = Buffer.alloc(total, 0x20);
  b.write('\x93NUMPY', 0, 'latin1');
  b[6] = version;
  b[7] = 0;
  if (version === 1) b.writeUInt16LE(total - prefix, 8);
  else b.writeUInt32LE(total - prefix, 8);
  b.write(dict, prefix, 'latin1');
  b[total - 1] = 0x0a;
  return b;
}

describe('io/npy', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(NPY, 'expected.json'), 'utf8')) as Record<string, Expected>;
  const typeOf: Record<string, string> = {
    '<f4': 'float32',
    '>f4': 'float32',
    '<f8': 'float64',
    '<f2': 'float16',
    '<i4': 'int32',
    '<i8': 'int64',
    '|u1': 'uint8',
    '|b1': 'bool',
  };
  const ctorOf: Record<string, unknown> = {
    float32: Float32Array,
    float64: Float64Array,
    float16: Float32Array,
    int32: Int32Array,
    int64: Int32Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  };

  for (const name of Object.keys(expected).sort()) {
    it(`reads ${name} written by numpy`, () => {
      const e = expected[name];
      const a = readNpy(path.join(NPY, name));
      expect(a.shape).to.deep.equal(e.shape);
      expect(a.dtype).to.equal(typeOf[e.descr]);
      expect(a.data).to.be.instanceOf(ctorOf[a.dtype] as new () => unknown);
      const want = e.values.map((v) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : (v as number)));
      const got = [...a.data].map(Number);
      const round = a.dtype === 'float32' || a.dtype === 'float16' ? Math.fround : (x: number) => x;
      expect(got).to.deep.equal(want.map((v) => (a.dtype === 'bool' ? Number(v) : round(v))));
      // The same bytes, given as a Buffer.
      expect([...readNpy(fs.readFileSync(path.join(NPY, name))).data].map(Number)).to.deep.equal(got);
    });
  }

  it('converts Fortran order to C order', () => {
    const a = readNpy(path.join(NPY, 'f4_fortran_3d.npy'));
    expect(a.shape).to.deep.equal([2, 3, 4]);
    expect([...a.data]).to.deep.equal(Array.from({ length: 24 }, (_, i) => i));
  });

  it('readNpyFloat32 converts any numeric dtype', () => {
    const f = readNpyFloat32(path.join(NPY, 'f8_fortran.npy'));
    expect(f.data).to.be.instanceOf(Float32Array);
    expect(f.shape).to.deep.equal([2, 3]);
    expect(f.data[3]).to.equal(Math.fround(0.1));
    expect([...readNpyFloat32(path.join(NPY, 'i4.npy')).data]).to.deep.equal([-2147483648, Math.fround(2147483647), 5]);
  });

  it('writeNpy round trip, 64-byte aligned data, atomic', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
    try {
      const file = path.join(dir, 'x.npy');
      const data = new Float32Array([1.5, -2, 0.1, 3e38, -0, 7]);
      writeNpy(file, { shape: [2, 3], data });
      expect(fs.readdirSync(dir)).to.deep.equal(['x.npy']);
      const bytes = fs.readFileSync(file);
      expect(bytes.subarray(0, 8).toString('latin1')).to.equal('\x93NUMPY\x01\x00');
      const headerLen = bytes.readUInt16LE(8);
      expect((10 + headerLen) % 64).to.equal(0);
      const header = bytes.toString('latin1', 10, 10 + headerLen);
      expect(header).to.match(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
      expect(bytes.length).to.equal(10 + headerLen + 24);
      const back = readNpy(file);
      expect(back.shape).to.deep.equal([2, 3]);
      expect(back.dtype).to.equal('float32');
      expect(Buffer.from((back.data as Float32Array).buffer).equals(Buffer.from(data.buffer))).to.equal(true);
      // 1-D and 0-d shapes use Python's tuple syntax.
      writeNpy(file, { shape: [3], data: new Float32Array(3) });
      expect(fs.readFileSync(file).toString('latin1', 10, 80)).to.contain("'shape': (3,)");
      writeNpy(file, { shape: [], data: new Float32Array([4]) });
      expect(readNpy(file).shape).to.deep.equal([]);
      expect([...readNpy(file).data]).to.deep.equal([4]);
      expect(fs.readdirSync(dir)).to.deep.equal(['x.npy']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writeNpy rejects a shape that does not match the data', () => {
    expect(() => encodeNpy({ shape: [2, 2], data: new Float32Array(3) })).to.throw(NpyError, /does not match 3 values/);
  });

  describe('errors', () => {
    const body = Buffer.alloc(16);
    const cases: [string, Buffer, RegExp][] = [
      ['bad magic', Buffer.from('PK\x03\x04 not numpy', 'latin1'), /not a \.npy file \(bad magic\)/],
      ['too short', Buffer.from('\x93NUM', 'latin1'), /bad magic/],
      [
        'version 4',
        Buffer.concat([npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"), body]).fill(4, 6, 7),
        /unsupported \.npy format version 4\.0/,
      ],
      ['truncated header', npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }").subarray(0, 40), /truncated header/],
      [
        'truncated data',
        Buffer.concat([npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"), body]),
        /truncated data \(20 bytes needed for shape \[5\] <f4, 16 present\)/,
      ],
      ['absurd shape', Buffer.concat([npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000), }"), body]), /truncated data/],
      ['complex dtype', Buffer.concat([npyHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"), body]), /unsupported dtype '<c8'/],
      ['object dtype', Buffer.concat([npyHeader("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), body]), /unsupported dtype '\|O'/],
      [
        'structured dtype',
        Buffer.concat([npyHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), body]),
        /structured arrays are not supported/,
      ],
      ['header not a dict', Buffer.concat([npyHeader('[1, 2]'), body]), /header is not a dict/],
      ['garbage header', Buffer.concat([npyHeader("{'descr': <f4}"), body]), /malformed header/],
      ['negative dim', Buffer.concat([npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), body]), /invalid shape/],
      ['no fortran_order', Buffer.concat([npyHeader("{'descr': '<f4', 'shape': (4,), }"), body]), /lacks fortran_order/],
    ];
    for (const [what, bytes, re] of cases) {
      it(what, () => {
        expect(() => readNpy(bytes)).to.throw(NpyError, re);
      });
    }
    it('int64 outside int32', () => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(1n << 40n);
      expect(() => readNpy(Buffer.concat([npyHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"), b]))).to.throw(
        NpyError,
        /int64 value 1099511627776 at element 0 does not fit in int32/,
      );
    });
    it('a missing file', () => {
      expect(() => readNpy('/nonexistent/x.npy')).to.throw(NpyError, /cannot read/);
    });
    it('version 2.0 headers written here read back', () => {
      const a = readNpy(Buffer.concat([npyHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 2), Buffer.from([0x3f, 0xc0, 0, 0])]));
      expect([...a.data]).to.deep.equal([1.5]);
    });
  });
});
