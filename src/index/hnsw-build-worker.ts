/**
 * The thread that builds an HNSW graph for `HnswBuilder`: rows arrive in batches (each answered
 * when added, so the sender can wait rather than queue every row here), then `finish` writes the
 * graph to a file the caller reads back. With Memex's graph addon (native/hnsw.cc) a batch is
 * added by `threads` threads at once; without it, one row at a time through hnswlib-node.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HnswVectorIndex, MIN_CAPACITY, SEED } from './hnsw.js';
import type { BuildReply, BuildRequest, BuildSetup } from './hnsw-builder.js';
import { graphAddon, type GraphHandle } from './native.js';

const { dimension, params, capacity, threads } = workerData as BuildSetup;
const port = parentPort;
if (!port) throw new Error('hnsw-build-worker runs as a worker thread');

interface Graph {
  add(labels: Uint32Array, vectors: Float32Array): void;
  write(path: string): void;
}

/** Memex's graph addon, where it is built for this machine; labels it has not seen, as hnswlib-node's would. */
function nativeGraph(): Graph | null {
  const { addon } = graphAddon();
  if (!addon) return null;
  const graph: GraphHandle = addon.create(dimension, Math.max(MIN_CAPACITY, capacity), params.m, params.efConstruction, SEED);
  let seen = new Uint8Array(Math.max(64, capacity));
  return {
    add(labels, vectors) {
      for (const label of labels) {
        if (label >= seen.length) {
          const grown = new Uint8Array(Math.max(label + 1, seen.length * 2));
          grown.set(seen);
          seen = grown;
        }
        if (seen[label] === 1) throw new Error(`label ${label} is already in the graph`);
        seen[label] = 1;
      }
      addon.add(graph, labels, vectors, threads);
    },
    write: (path) => addon.write(graph, path),
  };
}

function hnswlibGraph(): Graph {
  const index = HnswVectorIndex.create(dimension, params, capacity);
  return {
    add(labels, vectors) {
      for (let i = 0; i < labels.length; i++) index.add(labels[i] as number, vectors.subarray(i * dimension, (i + 1) * dimension));
    },
    write: (path) => index.write(path),
  };
}

let graph: Graph | null = null;
let failure: string | null = null;

port.on('message', (request: BuildRequest) => {
  let reply: BuildReply;
  try {
    if (failure !== null) throw new Error(failure);
    graph ??= nativeGraph() ?? hnswlibGraph();
    if (request.kind === 'add') {
      graph.add(request.labels, request.vectors);
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
