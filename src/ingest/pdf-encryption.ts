/**
 * A PDF can encrypt only its embedded files (PDF 1.6+: an Encrypt dictionary whose `StmF` and
 * `StrF` are the Identity filter and whose `EFF` names a real one). Its pages are plain, but pdf.js
 * sees the Encrypt dictionary and asks for a password. These helpers recognise that case from the
 * bytes and hide the dictionary from the parser, so the pages can be read and the attachments
 * reported as skipped.
 */

/** True when the file's Encrypt dictionary leaves streams and strings unencrypted (only embedded files are). */
export function encryptsOnlyAttachments(bytes: Uint8Array): boolean {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const dictionary = encryptDictionary(text);
  if (dictionary === null) return false;
  // Crypt filters (and with them Identity streams) exist from V 4 on; below that everything is encrypted.
  const version = /\/V\s+(\d+)/.exec(dictionary)?.[1];
  if (version !== '4' && version !== '5') return false;
  // Both default to Identity when absent (ISO 32000-1, 7.6.5), but only an explicit Identity is
  // trusted: a dictionary misread here must not make encrypted pages look plain.
  const identity = (key: string): boolean => new RegExp(`/${key}\\s*/Identity(?![A-Za-z0-9#._-])`).test(dictionary);
  return identity('StmF') && identity('StrF') && /\/EFF\s*\/(?!Identity\b)/.test(dictionary);
}

/**
 * The same bytes with every trailer's `/Encrypt` key renamed (`/Encryp_`, same length, so every
 * offset in the cross-reference table still holds): the parser reads the file as unencrypted.
 * Only for a file `encryptsOnlyAttachments` accepted: its pages are not encrypted.
 */
export function withoutEncryption(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  for (const match of text.matchAll(ENCRYPT_KEY)) copy[match.index + '/Encryp'.length] = '_'.charCodeAt(0);
  return copy;
}

/** `/Encrypt` as a key (a reference or a dictionary follows), not `/EncryptMetadata`. */
const ENCRYPT_KEY = /\/Encrypt(?=\s*(?:\d|<<))/g;

/** The text of the Encrypt dictionary of the last trailer, inline or as an uncompressed object; null when none is found. */
function encryptDictionary(text: string): string | null {
  let last: RegExpExecArray | null = null;
  for (const match of text.matchAll(/\/Encrypt\s*(?:(\d+)\s+(\d+)\s+R|(<<))/g)) last = match;
  if (!last) return null;
  if (last[3] !== undefined) return balanced(text, last.index + last[0].length - 2);
  const object = new RegExp(`(?:^|[^0-9])${last[1]}\\s+${last[2]}\\s+obj\\s*<<`).exec(text);
  if (!object) return null; // in an object stream: compressed, not readable here
  return balanced(text, object.index + object[0].length - 2);
}

/** The dictionary `<< ... >>` starting at `start`, nested dictionaries included. */
function balanced(text: string, start: number): string | null {
  let depth = 0;
  for (let i = start; i < text.length - 1; i++) {
    if (text[i] === '<' && text[i + 1] === '<') {
      depth += 1;
      i += 1;
    } else if (text[i] === '<') {
      // A hex string: its closing `>` is not half of a dictionary's end.
      const close = text.indexOf('>', i);
      if (close < 0) return null;
      i = close;
    } else if (text[i] === '>' && text[i + 1] === '>') {
      depth -= 1;
      i += 1;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  return null;
}
