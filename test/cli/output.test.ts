import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progress } from '../../src/cli/output.js';

/** A fake terminal: a writable that says it is a TTY of `columns` columns and keeps what it got. */
function fakeTerminal(columns: number | undefined): Writable & { text: string } {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      stream.text += chunk.toString();
      done();
    },
  }) as Writable & { text: string; isTTY: boolean; columns: number | undefined };
  stream.text = '';
  stream.isTTY = true;
  stream.columns = columns;
  return stream;
}

describe('progress', () => {
  it('draws the whole line when the terminal reports 0 columns', () => {
    const err = fakeTerminal(0);
    const bar = progress({ out: err, err, json: false }, 'ingest');
    bar.update(3, 3, 'done');
    expect(err.text).toContain('3/3 100% done');
  });

  it('fits the line to a narrow terminal without wrapping', () => {
    const err = fakeTerminal(20);
    const bar = progress({ out: err, err, json: false }, 'ingest');
    bar.update(1, 2);
    expect(err.text.replace('\r', '')).toHaveLength(19);
  });
});
