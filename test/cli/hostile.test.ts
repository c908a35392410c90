/**
 * The CLI on hostile input (issue 14): a folder of hostile images gives every good photo a result
 * and names every bad entry, with bounded memory; non-regular files are refused without hanging;
 * options and output paths are validated before any work.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { expectUserError, useTmpDir } from '../helpers';
import { makeHostileFolder } from '../data/hostile_images';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/convnext.js');
const MODEL = path.join(ROOT, 'test/fixtures/parity/v2_official/convnextv2_test_1k_224_ema.pt');
const IMAGES = path.join(ROOT, 'test/fixtures/images');

function run(args: string[], opts: { timeout?: number; time?: boolean } = {}) {
  const argv = opts.time ? ['-v', process.execPath, BIN, ...args] : [BIN, ...args];
  const r = spawnSync(opts.time ? '/usr/bin/time' : process.execPath, argv, {
    encoding: 'utf8',
    timeout: opts.timeout ?? 110_000,
    env: { ...process.env, CONVNEXT_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

describe('convnext CLI on hostile input', function () {
  this.timeout(180_000);
  const tmp = useTmpDir('convnext-cli-hostile-');

  it('predict over a hostile folder: every good file gets a result, every bad entry is named, exit 1, peak RSS < 1 GB', () => {
    const f = makeHostileFolder(tmp('folder'));
    const hasTime = fs.existsSync('/usr/bin/time');
    const r = run(['predict', f.dir, '--model', MODEL, '--json', '--top', '1', '--workers', '1'], { time: hasTime });
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
    const done = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).file as string);
    expect(done.sort()).to.deep.equal([...f.good].sort());
    for (const [file, why] of f.bad) {
      const line = r.stderr.split('\n').find((l) => l.startsWith(`skipped ${file}: `));
      expect(line, `${file} not named on stderr`).to.not.equal(undefined);
      expect(line).to.match(why);
    }
    expect(r.stderr).to.include(`${f.bad.size} input(s) failed`);
    if (hasTime) {
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
      expect(kb, 'peak RSS in kB')
        .to.be.above(0)
        .and.below(1024 * 1024);
    }
  });

  it('/dev/zero, a link to it and a FIFO given directly are refused by name without reading or hanging', () => {
    const fifo = tmp('fifo.jpg');
    spawnSync('mkfifo', [fifo]);
    const link = tmp('zero.png');
    fs.symlinkSync('/dev/zero', link);
    const r = run(['predict', '/dev/zero', link, fifo, path.join(IMAGES, 'chelsea.png'), '--model', MODEL, '--json'], { timeout: 60_000 });
    expect(r.signal, 'it must not hang').to.equal(null);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include('skipped /dev/zero: is a character device, not a regular file');
    expect(r.stderr).to.include(`skipped ${link}: is a character device, not a regular file`);
    expect(r.stderr).to.include(`skipped ${fifo}: is a FIFO (named pipe), not a regular file`);
    expect(JSON.parse(r.stdout.trim()).file).to.equal(path.join(IMAGES, 'chelsea.png'));
  });

  it('--max-image-pixels limits what is decoded, and is shown in --help with its default', () => {
    const r = run(['predict', path.join(IMAGES, 'chelsea.png'), '--model', MODEL, '--max-image-pixels', '1000']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/too large: 338 x 225 pixels is over the limit of 1000 pixels/);
    expect(run(['predict', '--help']).stdout).to.match(/--max-image-pixels <n>[\s\S]*\(default: 89478485\)/);
  });

  it('--image-size 100000 is refused with the bound, in predict, embed and train, before any work', () => {
    const bound = /option '--image-size <n>' argument '100000' is invalid. must be an integer from 32 to 2048/;
    expectUserError(run(['predict', 'x.png', '--model', 'no-such-model', '--image-size', '100000']), bound);
    expectUserError(run(['embed', 'x.png', '--model', 'no-such-model', '--output', tmp('e.npy'), '--image-size', '100000']), bound);
    expectUserError(run(['train', '--data', 'nowhere', '--arch', 'convnext_atto', '--epochs', '1', '--image-size', '100000']), bound);
    expectUserError(
      run(['train', '--data', 'nowhere', '--arch', 'convnext_atto', '--epochs', '1', '--image-size', '16']),
      /must be an integer from 32 to 2048/,
    );
  });

  it('train refuses --smoothing -1 and other out-of-range values by flag, before reading data', () => {
    const base = ['train', '--data', 'nowhere', '--arch', 'convnext_atto', '--epochs', '1'];
    expectUserError(run([...base, '--smoothing', '-1']), /^error: --smoothing must be in \[0, 1\), got -1\n/);
    expectUserError(run([...base, '--drop-path', '1.5']), /^error: --drop-path must be in \[0, 1\), got 1.5\n/);
    expectUserError(run([...base, '--weight-decay', 'abc']), /^error: --weight-decay must be a number >= 0, got null\n/);
  });

  it("embed --output '' and an output in a missing directory are refused before any work", () => {
    // The model does not exist: had the command started working, the error would be about it.
    expectUserError(
      run(['embed', path.join(IMAGES, 'chelsea.png'), '--model', 'no-such-model', '--output', '']),
      /^error: --output must be a file path, got ""\n/,
    );
    const missing = tmp('no', 'such', 'dir', 'emb.npy');
    expectUserError(
      run(['embed', path.join(IMAGES, 'chelsea.png'), '--model', 'no-such-model', '--output', missing]),
      new RegExp(`^error: --output ${missing}: its directory ${path.dirname(missing)} does not exist\\n`),
    );
    expectUserError(run(['embed', path.join(IMAGES, 'chelsea.png'), '--model', 'no-such-model', '--output', tmp()]), /is a directory, not a file path/);
    expectUserError(run(['forward', '--model', 'no-such-model', '--input', 'x.npy', '--output', missing]), /^error: --output .* does not exist/);
  });
});
