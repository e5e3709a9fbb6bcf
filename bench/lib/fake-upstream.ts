import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

/**
 * A FAKE OpenAI-compatible upstream with fixed latency (`firstMs` to the first chunk, then `chunks`
 * chunks of `reply` `gapMs` apart, usage in the last; a non-streamed request gets `A title`), in a
 * worker thread: its own event loop, as a real model server's own process would have, so Memex's
 * work in the benchmark's thread neither delays its timers nor is charged its work.
 */
export async function fakeUpstream(shape: { firstMs: number; chunks: number; gapMs: number; reply: string }): Promise<{ url: string; close: () => Promise<number> }> {
  const code = `
    const { createServer } = require('node:http');
    const { parentPort, workerData } = require('node:worker_threads');
    const { FIRST_MS, CHUNKS, GAP_MS, REPLY } = workerData;
    const frame = (choices, extra) => 'data: ' + JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'bench-fake', choices, ...extra }) + '\\n\\n';
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const stream = JSON.parse(body).stream === true;
        setTimeout(() => {
          if (!stream) {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', model: 'bench-fake', choices: [{ index: 0, message: { role: 'assistant', content: 'A title' }, finish_reason: 'stop' }] }));
            return;
          }
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          let i = 0;
          const next = () => {
            if (res.destroyed) return;
            if (i < CHUNKS) {
              res.write(frame([{ index: 0, delta: i === 0 ? { role: 'assistant', content: REPLY } : { content: REPLY }, finish_reason: null }]));
              i++;
              setTimeout(next, GAP_MS);
              return;
            }
            res.write(frame([{ index: 0, delta: {}, finish_reason: 'stop' }]));
            res.write(frame([], { usage: { prompt_tokens: 900, completion_tokens: 150, total_tokens: 1050 } }));
            res.end('data: [DONE]\\n\\n');
          };
          next();
        }, FIRST_MS);
      });
    });
    server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
  `;
  const worker = new Worker(code, { eval: true, workerData: { FIRST_MS: shape.firstMs, CHUNKS: shape.chunks, GAP_MS: shape.gapMs, REPLY: shape.reply } });
  const [port] = (await once(worker, 'message')) as [number];
  return { url: `http://127.0.0.1:${port}/v1`, close: () => worker.terminate() };
}
