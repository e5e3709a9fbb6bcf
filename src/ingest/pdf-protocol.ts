/** The messages between pdf.ts (main thread) and pdf-worker.ts (the thread pdf.js lives in). */

export interface PdfInfo {
  pages: number;
  title: string | null;
  author: string | null;
  subject: string | null;
  creator: string | null;
  producer: string | null;
  createdAt: string | null;
  encrypted: boolean;
}

export type PdfRequest = { id: number } & (
  | { op: 'open'; data: Uint8Array; password?: string; cMapUrl: string; standardFontDataUrl: string }
  | { op: 'pageText'; page: number }
  | { op: 'pageHasImages'; page: number }
  | { op: 'renderPage'; page: number; dpi: number; maxSide: number; maxPixels: number }
);

export type PdfReply = { id: number } & ({ ok: true; value: unknown } | { ok: false; error: { name: string | null; code: number | null; message: string } });
