/**
 * Turns pdf.js text items into readable page text. pdf.js gives runs of text in content-stream
 * order with an end-of-line flag; a page's lines are grouped into paragraphs by their vertical
 * gaps, lines in a paragraph are joined with a space (a word hyphenated across the break is
 * joined back), and paragraphs are separated by a blank line. A jump back up the page (the next
 * column of a two-column paper) starts a new paragraph, so columns are never interleaved.
 */
export interface TextRun {
  str: string;
  /** [a, b, c, d, e, f]: e and f are the run's position; y grows up the page. */
  transform: number[];
  height: number;
  hasEOL: boolean;
}

interface Line {
  text: string;
  y: number;
  height: number;
}

/** A gap between lines larger than this many line heights starts a new paragraph. */
const PARAGRAPH_GAP = 1.7;

export function joinTextRuns(runs: readonly TextRun[]): string {
  const lines: Line[] = [];
  let current: Line | null = null;
  for (const run of runs) {
    if (current === null) {
      if (run.str.trim() === '' && !run.hasEOL) continue;
      current = { text: '', y: run.transform[5] ?? 0, height: run.height || Math.abs(run.transform[3] ?? 0) };
    }
    current.text += run.str;
    current.height = Math.max(current.height, run.height);
    if (run.hasEOL) {
      lines.push(current);
      current = null;
    }
  }
  if (current) lines.push(current);

  const paragraphs: string[] = [];
  let paragraph = '';
  let previous: Line | null = null;
  for (const line of lines) {
    const text = line.text.replace(/\s+/g, ' ').trim();
    if (text === '') {
      previous = null;
      continue;
    }
    const drop = previous ? previous.y - line.y : 0;
    const height = Math.max(previous?.height ?? 0, line.height, 1);
    const newParagraph = previous === null || drop < -height / 2 || drop > PARAGRAPH_GAP * height;
    if (newParagraph) {
      if (paragraph) paragraphs.push(paragraph);
      paragraph = text;
    } else {
      paragraph = joinLines(paragraph, text);
    }
    previous = line;
  }
  if (paragraph) paragraphs.push(paragraph);
  return paragraphs.join('\n\n').normalize('NFKC');
}

/** "specula-" + "tion" is "speculation"; "Just-in-" + "Time" keeps its hyphen; else a space. */
function joinLines(left: string, right: string): string {
  if (/\p{Ll}-$/u.test(left) && /^\p{Ll}/u.test(right)) return left.slice(0, -1) + right;
  return `${left} ${right}`;
}
