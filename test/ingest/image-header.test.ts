import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { headerDimensions } from '../../src/ingest/image-header.js';
import { EVAL_FILES_MISSING, hasEvalFiles, IMAGES } from '../helpers/eval.js';

describe('headerDimensions', () => {
  it('reads the size of PNG, JPEG, GIF and WebP (lossy, lossless) headers without decoding', async () => {
    const image = sharp({ create: { width: 123, height: 45, channels: 3, background: '#808080' } });
    for (const bytes of [
      await image.clone().png().toBuffer(),
      await image.clone().jpeg().toBuffer(),
      await image.clone().gif().toBuffer(),
      await image.clone().webp().toBuffer(),
      await image.clone().webp({ lossless: true }).toBuffer(),
    ]) {
      expect(headerDimensions(bytes)).toEqual({ width: 123, height: 45 });
    }
  });

  it('leaves formats it does not read, and non-images, to the decoder', () => {
    expect(headerDimensions(new TextEncoder().encode('hello, not an image at all'))).toBeNull();
    expect(headerDimensions(new Uint8Array([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0]))).toBeNull();
  });

  it.skipIf(!hasEvalFiles)('sees what the decompression bombs claim', async () => {
    expect(headerDimensions(await readFile(join(IMAGES, 'reallybig.bmp')))).toEqual({ width: 3_000_000, height: 2_000_000 });
    // The GIF's screen is 32 x 32; its one frame claims 65535 x 10751 (at an offset).
    const gif = headerDimensions(await readFile(join(IMAGES, 'decompression_bomb.gif')));
    expect(gif?.width).toBe(65535);
    expect((gif?.height ?? 0) >= 10751).toBe(true);
    expect(headerDimensions(await readFile(join(IMAGES, 'broken.png')))).toEqual({ width: 97_293_039, height: 1_048_810_005 });
  });
  if (!hasEvalFiles) it.skip(EVAL_FILES_MISSING, () => undefined);
});
