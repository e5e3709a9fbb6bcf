/**
 * What `memex bench --json` prints and the HTML report draws: one versioned document. The JSON
 * Schema (`memex bench --schema`) is made from this definition, so the two cannot drift apart.
 */
import { z } from 'zod';

const latency = { qps: z.number().nonnegative(), p50Ms: z.number().nonnegative(), p99Ms: z.number().nonnegative() };
const histogram = z.strictObject({ edgesMs: z.array(z.number().nonnegative()), counts: z.array(z.number().int().nonnegative()) });

const curvePoint = z.strictObject({ efSearch: z.number().int().positive(), recall: z.number().min(0).max(1), ...latency });

const system = z.strictObject({
  name: z.string(),
  version: z.string(),
  description: z.string(),
  build: z.strictObject({
    seconds: z.number().nonnegative(),
    rowsPerSecond: z.number().nonnegative(),
    memoryBytes: z.number().nonnegative(),
    writeSeconds: z.number().nonnegative(),
    loadSeconds: z.number().nonnegative(),
    fileBytes: z.number().nonnegative(),
    reloadMatches: z.boolean(),
  }),
  curve: z.array(curvePoint),
  histogram: histogram.extend({ efSearch: z.number().int().positive() }),
});

export const BenchReportSchema = z.strictObject({
  format: z.literal('memex-bench'),
  version: z.literal(1),
  memex: z.string(),
  startedAt: z.iso.datetime(),
  seconds: z.number().nonnegative(),
  machine: z.strictObject({ cpu: z.string(), cores: z.number().int().positive(), memoryBytes: z.number().nonnegative(), platform: z.string(), arch: z.string(), node: z.string(), loadAverage: z.tuple([z.number(), z.number()]) }),
  dataset: z.strictObject({ name: z.string(), description: z.string(), vectorSource: z.string() }),
  model: z.strictObject({ id: z.string(), dimension: z.number().int().positive() }),
  options: z.strictObject({ k: z.number().int().positive(), efSearch: z.array(z.number().int().positive()), queries: z.number().int().positive(), rounds: z.number().int().positive(), peers: z.array(z.string()), m: z.number().int().positive(), efConstruction: z.number().int().positive() }),
  /** Embedding the ANN part's texts with the model (absent where the vectors came as numbers). */
  embedding: z.strictObject({ texts: z.number().int().nonnegative(), seconds: z.number().nonnegative(), textsPerSecond: z.number().nonnegative() }).nullable(),
  ann: z.strictObject({
    rows: z.number().int().positive(),
    dimension: z.number().int().positive(),
    queries: z.number().int().positive(),
    k: z.number().int().positive(),
    exact: z.strictObject({ ...latency, kind: z.enum(['native', 'javascript']), histogram }),
    systems: z.array(system),
    skipped: z.array(z.strictObject({ name: z.string(), reason: z.string() })),
    /** Memex against each other system at Memex's recall at each efSearch, the other's queries/s read off its curve. */
    equalRecall: z.array(
      z.strictObject({
        peer: z.string(),
        points: z.array(z.strictObject({ efSearch: z.number().int().positive(), recall: z.number().min(0).max(1), qps: z.number().nonnegative(), peerQps: z.number().nonnegative().nullable(), ratio: z.number().nonnegative().nullable() })),
      }),
    ),
  }),
  /** Ingest, index, search and context through the library (absent with --skip-e2e). */
  e2e: z
    .strictObject({
      sessions: z.number().int().nonnegative(),
      messages: z.number().int().nonnegative(),
      ingest: z.strictObject({
        seconds: z.number().nonnegative(),
        messagesPerSecond: z.number().nonnegative(),
        modelAlone: z.strictObject({ seconds: z.number().nonnegative(), textsPerSecond: z.number().nonnegative(), batchSize: z.number().int().positive() }),
        ratio: z.number().nonnegative(),
        library: z.strictObject({ seconds: z.number().nonnegative(), textsPerSecond: z.number().nonnegative() }).nullable(),
        libraryRatio: z.number().nonnegative().nullable(),
      }),
      index: z.strictObject({ buildSeconds: z.number().nonnegative(), loadSeconds: z.number().nonnegative() }),
      search: z.strictObject({ ...latency, queries: z.number().int().nonnegative(), concurrency: z.number().int().positive(), concurrentQps: z.number().nonnegative(), embedP50Ms: z.number().nonnegative(), histogram }),
      context: z.strictObject({ ...latency, windows: z.number().int().nonnegative(), budget: z.number().int().positive(), meanTokens: z.number().nonnegative(), maxTokens: z.number().nonnegative() }),
    })
    .nullable(),
});

export type BenchReport = z.infer<typeof BenchReportSchema>;

/** The JSON Schema of the report (draft 2020-12). */
export function benchReportJsonSchema(): Record<string, unknown> {
  return { $id: 'https://memex.local/schemas/bench-report-1.json', title: 'memex bench report, version 1', ...z.toJSONSchema(BenchReportSchema) };
}
