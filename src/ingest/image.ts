import type { Metadata, OutputInfo, default as Sharp } from 'sharp';
import { MemexError, type IngestWarning } from '../core/index.js';
import { headerDimensions, type Dimensions } from './image-header.js';

let sharpModule: Promise<typeof Sharp> | null = null;

/** sharp, loaded on first use: commands that decode no image start without libvips. */
export function loadSharp(): Promise<typeof Sharp> {
  sharpModule ??= import('sharp').then(({ default: sharp }) => {
    // libvips keeps recent operations and their decoded inputs (up to 50 MB) for reuse; ingest decodes
    // each file once, so the cache only holds on to memory (a hostile file's included).
    sharp.cache(false);
    return sharp;
  });
  return sharpModule;
}

export interface ImageLimits {
  maxImagePixels: number;
  maxImageSide: number;
  maxPages: number;
  thumbnailSide: number;
}

export interface ImagePage {
  /** 1-based page (TIFF) or frame. */
  page: number;
  /** Oriented, greyscale PNG: what OCR reads. */
  png: Uint8Array;
  width: number;
  height: number;
}

export interface DecodedImage {
  format: string;
  width: number;
  height: number;
  pagesInFile: number;
  animated: boolean;
  orientation: number | null;
  pages: ImagePage[];
  /** The first page, oriented, at most 2048 px a side, as WebP with every metadata field dropped. */
  display: Uint8Array;
  thumbnail: { bytes: Uint8Array; width: number; height: number };
  warnings: IngestWarning[];
}

/** Longest side of the display copy: enough to show or send to a vision model, far smaller than a scan. */
const DISPLAY_SIDE = 2048;
const ANIMATED = new Set(['gif', 'webp']);

/**
 * Decodes an image for ingest. Its size is checked from the header first (our own reader, then
 * sharp's, which reads headers without decoding), so a bomb is refused before any pixel is
 * allocated; sharp's own pixel limit stays on as a second guard. Every page of a TIFF is read,
 * only the first frame of an animation. A truncated file is decoded as far as it goes, with a
 * warning. Output never carries the input's metadata (EXIF, GPS, ICC comments): sharp drops it
 * unless asked to keep it.
 */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits): Promise<DecodedImage> {
  const claimed = headerDimensions(bytes);
  if (claimed) checkSize(claimed, limits);
  const base = { limitInputPixels: limits.maxImagePixels, failOn: 'error' } as const;
  const sharp = await loadSharp();
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, base).metadata();
  } catch (cause) {
    throw decodeError(cause);
  }
  const format = metadata.format;
  if (!metadata.width || !metadata.height) throw new MemexError('MEMEX_IMAGE_INVALID', `the ${format} image has no size in its header`);
  const pagesInFile = Math.max(1, metadata.pages ?? 1);
  const animated = ANIMATED.has(format) && pagesInFile > 1;
  const count = animated ? 1 : pagesInFile;
  if (count > limits.maxPages) {
    throw new MemexError('MEMEX_TOO_MANY_PAGES', `the image has ${count} pages; the limit is ${limits.maxPages}`, { details: { pages: count, maxPages: limits.maxPages } });
  }
  const warnings: IngestWarning[] = [];
  if (animated) warnings.push({ code: 'frames-skipped', message: `animated ${format}: read the first of ${pagesInFile} frames` });

  const pages: ImagePage[] = [];
  let lenient = false;
  for (let index = 0; index < count; index++) {
    let pageMeta = metadata;
    if (index > 0) {
      try {
        pageMeta = await sharp(bytes, { ...base, page: index }).metadata();
      } catch (cause) {
        warnings.push({ code: 'page-unreadable', page: index + 1, message: `page ${index + 1} cannot be read: ${firstLine(cause)}` });
        continue;
      }
    }
    checkSize({ width: pageMeta.width ?? 0, height: pageMeta.height ?? 0 }, limits);
    const decode = (failOn: 'error' | 'none') =>
      sharp(bytes, { ...base, failOn, page: index })
        .rotate()
        .greyscale()
        .png({ compressionLevel: 1 })
        .toBuffer({ resolveWithObject: true });
    try {
      const { data, info } = await decode(lenient ? 'none' : 'error').catch(async (cause: unknown) => {
        if (!isTruncation(cause)) throw cause;
        lenient = true;
        warnings.push({ code: 'image-truncated', ...(count > 1 ? { page: index + 1 } : {}), message: `the image data ends early (${firstLine(cause)}); what is there was read` });
        return decode('none');
      });
      pages.push({ page: index + 1, png: data, width: info.width, height: info.height });
    } catch (cause) {
      if (index === 0) throw decodeError(cause);
      warnings.push({ code: 'page-unreadable', page: index + 1, message: `page ${index + 1} cannot be decoded: ${firstLine(cause)}` });
    }
  }

  let display: Buffer;
  let thumbnail: { data: Buffer; info: OutputInfo };
  try {
    display = await sharp(bytes, { ...base, failOn: lenient ? 'none' : 'error', page: 0 }).rotate().resize(DISPLAY_SIDE, DISPLAY_SIDE, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 85 }).toBuffer();
    // From the display copy: already oriented and small, so the original is not decoded again.
    thumbnail = await sharp(display).resize(limits.thumbnailSide, limits.thumbnailSide, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }).toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw decodeError(cause);
  }
  const firstPage = pages[0];
  const swapped = (metadata.orientation ?? 1) >= 5;
  return {
    format,
    width: firstPage?.width ?? (swapped ? metadata.height : metadata.width),
    height: firstPage?.height ?? (swapped ? metadata.width : metadata.height),
    pagesInFile,
    animated,
    orientation: metadata.orientation ?? null,
    pages,
    display,
    thumbnail: { bytes: thumbnail.data, width: thumbnail.info.width, height: thumbnail.info.height },
    warnings,
  };
}

function checkSize(size: Dimensions, limits: ImageLimits): void {
  const pixels = size.width * size.height;
  if (size.width > limits.maxImageSide || size.height > limits.maxImageSide || pixels > limits.maxImagePixels) {
    throw new MemexError(
      'MEMEX_IMAGE_TOO_LARGE',
      `the image claims ${size.width} x ${size.height} pixels; the limits are ${limits.maxImageSide} a side and ${limits.maxImagePixels} in all`,
      { details: { width: size.width, height: size.height, maxImageSide: limits.maxImageSide, maxImagePixels: limits.maxImagePixels } },
    );
  }
}

function isTruncation(cause: unknown): boolean {
  return /premature end|read error|truncated|unexpected end|not enough data/i.test(firstLine(cause));
}

function decodeError(cause: unknown): MemexError {
  const message = firstLine(cause);
  if (/pixel limit/i.test(message)) return new MemexError('MEMEX_IMAGE_TOO_LARGE', `the image is larger than the pixel limit (${message})`, { cause });
  if (/unsupported image format/i.test(message)) return new MemexError('MEMEX_FILE_TYPE_UNSUPPORTED', 'this image format cannot be decoded here; convert it to PNG or JPEG', { cause });
  return new MemexError('MEMEX_IMAGE_INVALID', `the image cannot be decoded: ${message}`, { cause });
}

function firstLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).split('\n')[0] ?? '';
}
