/** weights-converter/pickle/source.ts: in-memory and buffered-file byte sources. */
import { expect } from 'chai';
import { BufferSource, FileSource } from '../../../weights-converter/pickle/source';

describe('weights-converter/pickle/source', () => {
  it('BufferSource reads between start and end, by byte or as views', () => {
    const buf = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const s = new BufferSource(buf, 2, 6);
    expect([s.position, s.remaining]).to.deep.equal([2, 4]);
    expect(s.byte()).to.equal(2);
    const v = s.bytes(2);
    expect([...v]).to.deep.equal([3, 4]);
    expect(v.buffer).to.equal(buf.buffer); // a view, no copy
    expect([s.position, s.remaining]).to.deep.equal([5, 1]);
    expect(new BufferSource(buf).remaining).to.equal(8);
  });

  it('FileSource reads forwards through 64 KiB chunks and returns copies', () => {
    const file = Buffer.alloc(200000);
    for (let i = 0; i < file.length; i++) file[i] = (i * 31) & 0xff;
    const reads: [number, number][] = [];
    const s = new FileSource((pos, len) => (reads.push([pos, len]), file.subarray(pos, pos + len)), 10, 150000);
    expect([s.position, s.remaining]).to.deep.equal([10, 149990]);
    expect(s.byte()).to.equal(file[10]);
    expect(reads).to.deep.equal([[10, 65536]]);
    // A read crossing the chunk end refills from the current position.
    const skip = s.bytes(65530);
    expect(skip.length).to.equal(65530);
    const b = s.bytes(100);
    expect(Buffer.from(b).equals(file.subarray(65541, 65641))).to.equal(true);
    expect(reads[1]).to.deep.equal([65541, 65536]);
    b[0] ^= 0xff;
    expect(file[65541]).to.not.equal(b[0]); // a copy
    // A request larger than a chunk is read in one piece, never past `end`.
    const big = s.bytes(80000);
    expect(Buffer.from(big).equals(file.subarray(65641, 145641))).to.equal(true);
    expect(reads[2]).to.deep.equal([65641, 80000]);
    expect(s.remaining).to.equal(150000 - 145641);
    s.bytes(s.remaining);
    expect(reads[3]).to.deep.equal([145641, 4359]); // the last chunk stops at `end`
    for (const [pos, len] of reads) expect(pos + len).to.be.at.most(150000);
  });
});
