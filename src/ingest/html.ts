/**
 * HTML reduced to the text a reader sees: scripts, styles and other invisible elements dropped,
 * block elements on lines of their own, headings as Markdown `#` lines (so a page is sectioned
 * like a Markdown document), list items as `- ` lines, entities decoded. One pass over the input,
 * no tree and no recursion: a hostile page (unclosed tags, a megabyte in one attribute, deep
 * nesting) costs time linear in its length and memory linear in its text.
 */

/** Elements whose content is never shown. An unclosed one hides the rest of the page, as in a browser. */
const HIDDEN = new Set(['script', 'style', 'noscript', 'template', 'svg', 'math', 'iframe', 'object', 'canvas', 'select']);
/** Elements that start and end a line of text. */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'br', 'dd', 'details', 'dialog', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer', 'form',
  'header', 'hr', 'html', 'legend', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'summary', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'ul', 'caption', 'option',
]);
/** Elements that separate paragraphs (a blank line, a break the chunker cuts at first). */
const PARAGRAPH = new Set(['p', 'blockquote', 'pre', 'table', 'ul', 'ol', 'dl', 'section', 'article', 'hr', 'figure', 'details']);

export interface HtmlText {
  text: string;
  title: string | null;
}

export function htmlToText(html: string): HtmlText {
  const parts: string[] = [];
  // Line breaks at the end of the output so far, and whether any text was written yet.
  let newlines = 0;
  let empty = true;
  let title: string | null = null;
  let inTitle = false;
  let pre = 0;
  const write = (piece: string): void => {
    if (piece === '') return;
    parts.push(piece);
    if (/\S/.test(piece)) {
      empty = false;
      newlines = 0;
    }
  };
  const text = (raw: string): void => {
    if (inTitle) {
      title = (title ?? '') + raw;
      return;
    }
    const decoded = decodeEntities(raw);
    write(pre > 0 ? decoded : decoded.replace(/\s+/g, ' '));
  };
  const breakLine = (blank: boolean): void => {
    if (empty) return;
    for (let want = blank ? 2 : 1; newlines < want; newlines++) parts.push('\n');
  };

  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      text(html.slice(i));
      break;
    }
    if (lt > i) text(html.slice(i, lt));
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    // A bounded look at the tag's name: an attribute a megabyte long costs one scan for its `>`.
    const tag = /^<(\/?)([a-zA-Z][a-zA-Z0-9-]*)/.exec(html.slice(lt, lt + 64));
    const next = html.charCodeAt(lt + 1);
    if (!tag && next !== 0x21 && next !== 0x3f) {
      // A `<` that opens no tag ("a < b") is text.
      text('<');
      i = lt + 1;
      continue;
    }
    const gt = html.indexOf('>', lt);
    // An unclosed tag at the end is dropped with the rest, as a browser would.
    if (gt < 0) break;
    i = gt + 1;
    if (!tag) continue; // a doctype or a processing instruction
    const closing = tag[1] === '/';
    const name = (tag[2] as string).toLowerCase();
    if (name === 'title') {
      inTitle = !closing;
      continue;
    }
    if (HIDDEN.has(name) && !closing && html[gt - 1] !== '/') {
      // Jump to the element's end tag; without one, the rest of the page is hidden.
      const close = new RegExp(`</${name}\\s*>`, 'gi');
      close.lastIndex = i;
      const found = close.exec(html);
      i = found ? found.index + found[0].length : html.length;
      continue;
    }
    if (name === 'pre') pre = Math.max(0, pre + (closing ? -1 : 1));
    const heading = /^h([1-6])$/.exec(name);
    if (heading) {
      breakLine(true);
      if (!closing) write(`${'#'.repeat(Number(heading[1]))} `);
      if (closing) breakLine(true);
    } else if (name === 'li') {
      breakLine(false);
      if (!closing) write('- ');
    } else if (name === 'td' || name === 'th') {
      if (!closing && newlines === 0 && !empty) write(' | ');
    } else if (BLOCK.has(name)) {
      breakLine(PARAGRAPH.has(name));
    }
  }
  const cleanTitle = title === null ? null : decodeEntities(title).replace(/\s+/g, ' ').trim() || null;
  const out = parts.join('').replace(/[ \t]+\n/g, '\n').replace(/\n /g, '\n').replace(/\n{3,}/g, '\n\n').trim();
  return { text: out, title: cleanTitle };
}

const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–',
  lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', bull: '•', middot: '·', deg: '°', euro: '€', pound: '£', yen: '¥', cent: '¢',
  sect: '§', para: '¶', times: '×', divide: '÷', plusmn: '±', frac12: '½', frac14: '¼', frac34: '¾', shy: '\u00ad', zwj: '\u200d', zwnj: '\u200c', ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009',
  auml: 'ä', ouml: 'ö', uuml: 'ü', Auml: 'Ä', Ouml: 'Ö', Uuml: 'Ü', szlig: 'ß', eacute: 'é', egrave: 'è', ecirc: 'ê', aacute: 'á', agrave: 'à', acirc: 'â', ccedil: 'ç', ntilde: 'ñ', oacute: 'ó', iacute: 'í', uacute: 'ú',
  Eacute: 'É', aring: 'å', Aring: 'Å', oslash: 'ø', Oslash: 'Ø', aelig: 'æ', AElig: 'Æ', rarr: '→', larr: '←', uarr: '↑', darr: '↓', harr: '↔', hearts: '♥', check: '✓',
};

/** Decodes character references: numeric ones, and the named ones common in real pages (others are left as written). */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z][a-zA-Z0-9]{1,31}));?/g, (whole, decimal?: string, hex?: string, name?: string) => {
    if (name !== undefined) return NAMED[name] ?? whole;
    const code = decimal !== undefined ? Number(decimal) : parseInt(hex ?? '', 16);
    // NUL, surrogates and numbers past Unicode are replaced, as the HTML standard says.
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\uFFFD';
    return String.fromCodePoint(code);
  });
}
