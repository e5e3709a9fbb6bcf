import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { expect } from 'vitest';

interface ToolResult {
  isError?: boolean;
  content: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolResult> {
  return (await client.callTool({ name, arguments: args })) as ToolResult;
}

/** A tool call that must succeed: its structured result (the same JSON as its text). */
export async function ok<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const result = await call(client, name, args);
  expect(result.isError ?? false, result.content[0]?.text).toBe(false);
  expect(JSON.parse(result.content[0]?.text ?? 'null')).toEqual(result.structuredContent);
  return result.structuredContent as T;
}

/** A tool call that must fail as a tool error (not a protocol error) whose text starts with `code`. */
export async function toolError(client: Client, name: string, args: Record<string, unknown>, code: string): Promise<string> {
  const result = await call(client, name, args);
  expect(result.isError, result.content[0]?.text).toBe(true);
  const text = result.content[0]?.text ?? '';
  expect(text.startsWith(`${code}: `), text).toBe(true);
  expect((result.structuredContent?.error as { code?: string } | undefined)?.code).toBe(code);
  return text;
}
