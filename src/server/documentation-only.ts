import type { z } from 'zod';

/**
 * Schemas that only document a body another parser reads (the multipart upload form): the
 * validator passes such bodies through, and the route checks what it reads itself.
 */
export const documentationOnly = new WeakSet<z.ZodType>();
