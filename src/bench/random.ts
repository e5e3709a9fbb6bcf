/** Seeded random draws for the benchmark harness: repeatable data on every machine. */

/** sfc32: small, fast, seedable; Box–Muller on top for normals. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  gaussian(): number {
    if (this.spare !== null) {
      const spare = this.spare;
      this.spare = null;
      return spare;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

export function normalize(row: Float32Array): void {
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += (row[i] as number) ** 2;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  for (let i = 0; i < row.length; i++) row[i] = (row[i] as number) * scale;
}

/**
 * A mixture meant to look like sentence embeddings rather than a textbook case: 32 topics, each a
 * blob spread along its own 48-d subspace with a decaying spectrum, holding 1,000 clusters in all
 * (Zipf-ish sizes) as density bumps, plus isotropic noise over all 384 dimensions, normalised.
 * Neighbours cross cluster borders within a topic, so the graph has real work to do.
 */
export class ClusteredSource {
  static readonly TOPICS = 32;
  static readonly CLUSTERS = 1000;
  static readonly LOCAL_DIMENSIONS = 48;
  /** Squared norms of each part before normalising: topic 1, cluster offset, spread in the topic's subspace, noise. */
  static readonly CLUSTER_VARIANCE = 0.3;
  static readonly LOCAL_VARIANCE = 1.0;
  static readonly NOISE_VARIANCE = 0.3;

  private readonly centers: Float32Array;
  private readonly clusterTopic: Uint16Array;
  private readonly bases: Float32Array;
  private readonly axisScale: Float64Array;
  private readonly cumulative: Float64Array;

  constructor(
    readonly dimension: number,
    seed: number,
  ) {
    const { TOPICS, CLUSTERS, LOCAL_DIMENSIONS, CLUSTER_VARIANCE, LOCAL_VARIANCE } = ClusteredSource;
    const random = new Random(seed);
    const topics = new Float32Array(TOPICS * dimension);
    for (let t = 0; t < TOPICS; t++) {
      const topic = topics.subarray(t * dimension, (t + 1) * dimension);
      for (let i = 0; i < dimension; i++) topic[i] = random.gaussian();
      normalize(topic);
    }
    // Each topic's subspace: near-orthogonal random directions of about unit length.
    this.bases = new Float32Array(TOPICS * LOCAL_DIMENSIONS * dimension);
    for (let i = 0; i < this.bases.length; i++) this.bases[i] = random.gaussian() / Math.sqrt(dimension);
    // Variance along axis j falls as 1/sqrt(j+1), as in a real embedding's spectrum.
    const weights = Array.from({ length: LOCAL_DIMENSIONS }, (_, j) => 1 / Math.sqrt(j + 1));
    const weightSum = weights.reduce((a, b) => a + b, 0);
    this.axisScale = Float64Array.from(weights, (w) => Math.sqrt((LOCAL_VARIANCE * w) / weightSum));
    // A cluster centre: its topic plus an offset of its own (not renormalised).
    this.centers = new Float32Array(CLUSTERS * dimension);
    this.clusterTopic = new Uint16Array(CLUSTERS);
    this.cumulative = new Float64Array(CLUSTERS);
    const offset = Math.sqrt(CLUSTER_VARIANCE / dimension);
    let total = 0;
    for (let c = 0; c < CLUSTERS; c++) {
      const topic = Math.floor(random.next() * TOPICS);
      this.clusterTopic[c] = topic;
      const center = this.centers.subarray(c * dimension, (c + 1) * dimension);
      for (let i = 0; i < dimension; i++) center[i] = (topics[topic * dimension + i] as number) + random.gaussian() * offset;
      total += 1 / Math.sqrt(c + 10);
      this.cumulative[c] = total;
    }
    for (let c = 0; c < CLUSTERS; c++) this.cumulative[c] = (this.cumulative[c] as number) / total;
  }

  /** Fills `out` (count × dimension) with draws from `random`. */
  fill(out: Float32Array, random: Random): void {
    const { dimension, axisScale } = this;
    const { LOCAL_DIMENSIONS, NOISE_VARIANCE } = ClusteredSource;
    const noise = Math.sqrt(NOISE_VARIANCE / dimension);
    const count = out.length / dimension;
    for (let r = 0; r < count; r++) {
      const row = out.subarray(r * dimension, (r + 1) * dimension);
      const c = this.cluster(random.next());
      const topic = this.clusterTopic[c] as number;
      row.set(this.centers.subarray(c * dimension, (c + 1) * dimension));
      for (let j = 0; j < LOCAL_DIMENSIONS; j++) {
        const z = random.gaussian() * (axisScale[j] as number);
        const at = (topic * LOCAL_DIMENSIONS + j) * dimension;
        for (let i = 0; i < dimension; i++) row[i] = (row[i] as number) + z * (this.bases[at + i] as number);
      }
      for (let i = 0; i < dimension; i++) row[i] = (row[i] as number) + random.gaussian() * noise;
      normalize(row);
    }
  }

  private cluster(u: number): number {
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
