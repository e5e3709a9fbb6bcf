export { createMcpServer, type McpServerOptions, type McpMemexServer } from './server.js';
export type { IngestPath, McpMemex } from './api.js';
