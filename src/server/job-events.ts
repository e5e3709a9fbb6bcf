import type { FastifyReply, FastifyRequest } from 'fastify';

/** Comments keep idle proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

/** What a job stream sends: each change while the job runs, then its end. */
export interface StreamedEvent<J> {
  type: 'progress' | 'end';
  job: J;
}

/**
 * A job's progress as server-sent events on the hijacked reply: the current state first when the job
 * is still running, then `progress` for each change and the job's final state (`done`, `failed`,
 * `cancelled`) as the last event; ends with the job, the client or the server (`streams`).
 */
export async function streamJob<J extends { finishedAt: string | null; state: string }>(
  request: FastifyRequest,
  reply: FastifyReply,
  streams: Set<() => void>,
  current: J,
  follow: (listener: (event: StreamedEvent<J>) => void) => Promise<() => void> | (() => void),
  shown: (job: J) => unknown = (job) => job,
): Promise<void> {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': request.id });
  const send = (event: StreamedEvent<J>): void => {
    out.write(`event: ${event.type === 'end' ? event.job.state : 'progress'}\ndata: ${JSON.stringify(shown(event.job))}\n\n`);
  };
  let unfollow = (): void => undefined;
  const heartbeat = setInterval(() => out.write(': alive\n\n'), HEARTBEAT_MS);
  const end = (): void => {
    clearInterval(heartbeat);
    unfollow();
    streams.delete(end);
    if (!out.writableEnded) out.end();
  };
  streams.add(end);
  out.once('close', end);
  if (current.finishedAt === null) send({ type: 'progress', job: current });
  unfollow = await follow((event) => {
    send(event);
    if (event.type === 'end') end();
  });
}
