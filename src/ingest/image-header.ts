/**
 * Image dimensions read from the first bytes of a file, without decoding anything: how a
 * decompression bomb (a few bytes that claim billions of pixels) is refused before a decoder
 * allocates for it. Formats sharp reads the header of itself (TIFF) are left to it; null means
 * "not found here", never "small".
 */
export interface Dimensions {
  width: number;
  height: number;
}

export function headerDimensions(bytes: Uint8Array): Dimensions | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const has = (n: number): boolean => bytes.length >= n;
  // PNG: the first chunk must be IHDR; width and height are its first two big-endian words.
  if (has(24) && view.getUint32(0) === 0x89504e47) return { width: view.getUint32(16), height: view.getUint32(20) };
  // GIF: the logical screen, and every frame's descriptor (a frame may claim more than the screen).
  if (has(13) && view.getUint32(0) === 0x47494638) return gifDimensions(bytes, view);
  // BMP: signed 32-bit width and height (a negative height means top-down rows).
  if (has(26) && bytes[0] === 0x42 && bytes[1] === 0x4d) return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  // JPEG: the first start-of-frame marker.
  if (has(4) && bytes[0] === 0xff && bytes[1] === 0xd8) return jpegDimensions(bytes, view);
  // WebP: the VP8X canvas, or the lossy / lossless bitstream header.
  if (has(30) && view.getUint32(0) === 0x52494646 && view.getUint32(8) === 0x57454250) return webpDimensions(bytes, view);
  return null;
}

function gifDimensions(bytes: Uint8Array, view: DataView): Dimensions {
  let width = view.getUint16(6, true);
  let height = view.getUint16(8, true);
  let at = 13;
  const flags = bytes[10] ?? 0;
  if (flags & 0x80) at += 3 * 2 ** ((flags & 0x07) + 1);
  // Walk blocks up to the first image descriptor (extensions are sub-block chains).
  while (at < bytes.length) {
    const block = bytes[at];
    if (block === 0x2c) {
      if (at + 9 > bytes.length) break;
      width = Math.max(width, view.getUint16(at + 1, true) + view.getUint16(at + 5, true));
      height = Math.max(height, view.getUint16(at + 3, true) + view.getUint16(at + 7, true));
      break;
    }
    if (block !== 0x21) break;
    at += 2;
    while (at < bytes.length && bytes[at] !== 0) at += (bytes[at] as number) + 1;
    at += 1;
  }
  return { width, height };
}

function jpegDimensions(bytes: Uint8Array, view: DataView): Dimensions | null {
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    // SOF0-SOF15, except DHT (c4), JPG (c8) and DAC (cc), carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(at + 7), height: view.getUint16(at + 5) };
    }
    at += 2 + view.getUint16(at + 2);
  }
  return null;
}

function webpDimensions(bytes: Uint8Array, view: DataView): Dimensions | null {
  const chunk = String.fromCharCode(...bytes.subarray(12, 16));
  const u24 = (at: number): number => (bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16);
  if (chunk === 'VP8X') return { width: u24(24) + 1, height: u24(27) + 1 };
  if (chunk === 'VP8 ') return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  if (chunk === 'VP8L') {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}
