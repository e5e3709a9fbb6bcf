// The memory proxy: OpenAI Chat Completions requests through Memex's context windows.

export { ProxyRequestSchema, proxyComplete, proxyStream, type ProxyCompletion, type ProxyDeps, type ProxyOptions, type ProxyRequest, type ProxyStream, type ProxyTurn } from './completions.js';
