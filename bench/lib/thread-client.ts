import { Worker } from 'node:worker_threads';

/**
 * A benchmark's client in a worker thread of its own (eval'd `code`), so its work is not charged to
 * the event loop measured. The code answers each `{ id, ...request }` message with `{ id, ...reply }`
 * or `{ id, error }`; `call` resolves with the reply (without its id) or rejects with the error.
 */
export function threadClient<Request extends object, Reply>(code: string, workerData?: unknown): { call: (request: Request) => Promise<Reply>; close: () => Promise<number> } {
  const worker = new Worker(code, { eval: true, workerData });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  worker.on('message', ({ id, error, ...reply }: { id: number; error?: string }) => {
    const waiting = pending.get(id);
    pending.delete(id);
    if (error !== undefined) waiting?.reject(new Error(error));
    else waiting?.resolve(reply as Reply);
  });
  let next = 0;
  return {
    call: (request) =>
      new Promise<Reply>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...request, id });
      }),
    close: () => worker.terminate(),
  };
}
