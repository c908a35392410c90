/**
 * An append-only JSON Lines results file that makes a batch job resumable (`predict --output`):
 * one line per input, written with a single write() as soon as the input is done, so a preemption
 * or kill -9 loses at most the inputs in flight. Re-opening reads the lines back: inputs already
 * there are skipped (never written twice), and a torn last line (a write cut off by a crash) is
 * cut off the file before appending resumes. A malformed line anywhere else is an error: that file
 * was not written by us, and guessing would lose or duplicate results.
 *
 * One writer per file: give each shard its own file (results-$INDEX.jsonl).
 */
import * as fs from 'fs';
import { ConvNeXtError } from '../errors';

/** A results line: the input it answers, then anything. */
export interface ResultLine {
  file: string;
  [key: string]: unknown;
}

export class ResultsLog {
  private fd: number | null;
  private sinceSync = 0;

  private constructor(
    readonly file: string,
    fd: number,
    /** Inputs with a line in the file, in file order. */
    readonly done: Map<string, ResultLine>,
    /** Bytes of a torn last line that were cut off on opening (0 if none). */
    readonly repairedBytes: number,
  ) {
    this.fd = fd;
  }

  /** Opens (creating if needed) `file`, reading the lines already there and repairing a torn tail. */
  static open(file: string): ResultsLog {
    const done = new Map<string, ResultLine>();
    let repaired = 0;
    if (fs.existsSync(file)) {
      const buf = fs.readFileSync(file);
      let pos = 0;
      let lineNo = 0;
      while (pos < buf.length) {
        const nl = buf.indexOf(0x0a, pos);
        const end = nl < 0 ? buf.length : nl;
        lineNo++;
        const text = buf.subarray(pos, end).toString('utf8');
        let parsed: ResultLine | null = null;
        try {
          const v = JSON.parse(text) as unknown;
          if (v && typeof v === 'object' && typeof (v as ResultLine).file === 'string') parsed = v as ResultLine;
        } catch {
          parsed = null;
        }
        // A line without its newline is torn even if it parses: the input is redone, not duplicated.
        if (nl < 0 || parsed === null) {
          // Only the last line can be torn: a crash interrupts the last write, never an earlier one.
          const isLast =
            nl < 0 ||
            buf
              .subarray(nl + 1)
              .toString('utf8')
              .trim() === '';
          if (!isLast) throw new ConvNeXtError(`results file ${file}: line ${lineNo} is not a JSON object with a "file" field; not resuming into it`);
          repaired = buf.length - pos;
          fs.truncateSync(file, pos);
          break;
        }
        if (!done.has(parsed.file)) done.set(parsed.file, parsed);
        pos = end + 1;
      }
    }
    const fd = fs.openSync(file, 'a');
    return new ResultsLog(file, fd, done, repaired);
  }

  /** Appends one line (a single write); inputs already done are not written again. */
  append(line: ResultLine): boolean {
    if (this.fd === null) throw new Error('results log is closed');
    if (this.done.has(line.file)) return false;
    const bytes = Buffer.from(JSON.stringify(line) + '\n', 'utf8');
    for (let p = 0; p < bytes.length;) p += fs.writeSync(this.fd, bytes, p);
    this.done.set(line.file, line);
    // The kernel keeps written data across a process kill; fsync now and then bounds what a machine crash loses.
    if (++this.sinceSync >= 64) {
      fs.fsyncSync(this.fd);
      this.sinceSync = 0;
    }
    return true;
  }

  close(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }
}
