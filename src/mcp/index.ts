export { createMcpServer, type McpServerOptions } from './server.js';
export type { IngestPath, McpMemex } from './api.js';
