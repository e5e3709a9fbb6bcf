/**
 * The thread that builds an HNSW graph for `HnswBuilder`: rows arrive in batches (each answered
 * when added, so the sender can wait rather than queue every row here), then `finish` writes the
 * graph to a file the caller reads back. With Memex's graph addon (native/hnsw.cc) a batch is
 * added by `threads` threads at once; without it, one row at a time through hnswlib-node.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HnswVectorIndex } from './hnsw.js';
import type { BuildReply, BuildRequest, BuildSetup } from './hnsw-builder.js';

const { dimension, params, capacity, threads } = workerData as BuildSetup;
const port = parentPort;
if (!port) throw new Error('hnsw-build-worker runs as a worker thread');

let graph: HnswVectorIndex | null = null;
let failure: string | null = null;

port.on('message', (request: BuildRequest) => {
  let reply: BuildReply;
  try {
    if (failure !== null) throw new Error(failure);
    graph ??= HnswVectorIndex.create(dimension, params, capacity);
    if (request.kind === 'add') {
      graph.addMany(request.labels, request.vectors, threads);
      reply = { kind: 'added', rows: request.labels.length };
    } else {
      graph.write(request.path);
      reply = { kind: 'written' };
    }
  } catch (cause) {
    failure ??= (cause as Error).message;
    reply = { kind: 'failed', message: failure };
  }
  port.postMessage(reply);
});
