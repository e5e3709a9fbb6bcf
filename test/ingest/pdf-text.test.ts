import { describe, expect, it } from 'vitest';
import { joinTextRuns, type TextRun } from '../../src/ingest/pdf-text.js';

/** A run of text at height 10 on the line at `y` (PDF space: y grows up the page). */
function run(str: string, y: number, hasEOL = true): TextRun {
  return { str, transform: [10, 0, 0, 10, 72, y], height: 10, hasEOL };
}

describe('joinTextRuns', () => {
  it('joins the lines of a paragraph with spaces and keeps paragraphs apart', () => {
    const text = joinTextRuns([run('The first line of a', 700), run('paragraph goes on here.', 688), run('A second paragraph', 650), run('after a gap.', 638)]);
    expect(text).toBe('The first line of a paragraph goes on here.\n\nA second paragraph after a gap.');
  });

  it('joins a word hyphenated across a line break, and keeps real hyphens', () => {
    expect(joinTextRuns([run('compiling a trace specu-', 700), run('lates that the path', 688)])).toBe('compiling a trace speculates that the path');
    expect(joinTextRuns([run('Trace-based Just-in-', 700), run('Time compilation', 688)])).toBe('Trace-based Just-in- Time compilation');
  });

  it('starts a new paragraph at a jump back up the page (the next column)', () => {
    const text = joinTextRuns([run('end of the left column', 100), run('top of the right column', 700)]);
    expect(text).toBe('end of the left column\n\ntop of the right column');
  });

  it('joins runs on one line and normalises compatibility characters (NFKC)', () => {
    expect(joinTextRuns([run('ﬁnd the ', 700, false), run('ﬂow', 700)])).toBe('find the flow');
    expect(joinTextRuns([run('\uFEB3\uFEE0\uFE8E\uFEE1', 700)])).toBe('\u0633\u0644\u0627\u0645');
  });

  it('gives empty text for no runs or only blank ones', () => {
    expect(joinTextRuns([])).toBe('');
    expect(joinTextRuns([run('   ', 700), run('', 690)])).toBe('');
  });
});
