import { MetadataSchema, type Metadata } from '../core/index.js';

/**
 * `metadata` in a PATCH body is a JSON merge patch (RFC 7396): keys it names are set, `null`
 * deletes a key, nested objects merge the same way, and anything else (arrays included) replaces.
 * `"metadata": null` clears it. So two clients can each change their own keys without sending,
 * or overwriting, the other's.
 */
export const MetadataPatchSchema = MetadataSchema.nullable().optional().describe('a JSON merge patch (RFC 7396) of the metadata: null deletes a key');

export function mergeMetadata(current: Metadata, patch: Metadata | null): Metadata {
  if (patch === null) return {};
  return applyMergePatch(current, patch) as Metadata;
}

/** RFC 7396, section 2. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    // The body parser refuses `__proto__` already; a patch from elsewhere must not reach a prototype either.
    if (key === '__proto__') continue;
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
