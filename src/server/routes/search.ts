import { z } from 'zod';
import { SearchOptionsSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';

const SearchBody = SearchOptionsSchema.extend({ query: z.string().trim().min(1).max(10_000) });

/** Recall across all of the caller's sessions. */
export function searchRoutes(app: App, { memex }: ServerContext): void {
  app.post('/search', { schema: { summary: "The caller's chunks most relevant to a query, across every session (hybrid by default)", tags: ['search'], body: SearchBody } }, async (request) => {
    const { query, ...options } = request.body;
    return memex.search(userOf(request), query, options);
  });
}
