/**
 * The thread that builds an HNSW graph for `HnswBuilder`: rows arrive in batches (each answered
 * when added, so the sender can wait rather than queue every row here), then `finish` writes the
 * graph to a file the caller reads back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HnswVectorIndex } from './hnsw.js';
import type { BuildReply, BuildRequest, BuildSetup } from './hnsw-builder.js';

const { dimension, params, capacity } = workerData as BuildSetup;
const port = parentPort;
if (!port) throw new Error('hnsw-build-worker runs as a worker thread');

let index: HnswVectorIndex | null = null;
let failure: string | null = null;

port.on('message', (request: BuildRequest) => {
  let reply: BuildReply;
  try {
    if (failure !== null) throw new Error(failure);
    index ??= HnswVectorIndex.create(dimension, params, capacity);
    if (request.kind === 'add') {
      for (let i = 0; i < request.labels.length; i++) index.add(request.labels[i] as number, request.vectors.subarray(i * dimension, (i + 1) * dimension));
      reply = { kind: 'added', rows: request.labels.length };
    } else {
      index.write(request.path);
      reply = { kind: 'written' };
    }
  } catch (cause) {
    failure ??= (cause as Error).message;
    reply = { kind: 'failed', message: failure };
  }
  port.postMessage(reply);
});
