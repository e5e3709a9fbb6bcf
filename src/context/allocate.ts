export const PARTS = ['notes', 'summary', 'memories', 'recent'] as const;
export type Part = (typeof PARTS)[number];
export type PerPart = Record<Part, number>;

/**
 * Shares `total` tokens between the parts by weight, never giving a part more than it asks for:
 * what a part leaves unused flows to the others in proportion to their weights, until every part
 * is satisfied or nothing is left ("water filling"). Parts with weight 0 get only what the
 * weighted parts leave over. Integer results; their sum never exceeds `total`.
 */
export function allocate(total: number, weights: PerPart, demands: PerPart): PerPart {
  const given: PerPart = { notes: 0, summary: 0, memories: 0, recent: 0 };
  let remaining = Math.max(0, Math.floor(total));
  const fill = (open: Set<Part>, weight: (part: Part) => number): void => {
    while (open.size > 0 && remaining > 0) {
      const sum = [...open].reduce((s, part) => s + weight(part), 0);
      const satisfied = [...open].filter((part) => demands[part] - given[part] <= (remaining * weight(part)) / sum);
      if (satisfied.length === 0) {
        // Everyone wants more than their share: floor the shares, then hand the tokens rounding
        // left over to the largest remainders (each still wants at least one more token).
        const exact = [...open].map((part) => ({ part, share: (remaining * weight(part)) / sum }));
        let left = remaining;
        for (const { part, share } of exact) {
          given[part] += Math.floor(share);
          left -= Math.floor(share);
        }
        exact.sort((a, b) => (b.share % 1) - (a.share % 1));
        for (const { part } of exact.slice(0, left)) given[part] += 1;
        remaining = 0;
        return;
      }
      for (const part of satisfied) {
        remaining -= demands[part] - given[part];
        given[part] = demands[part];
        open.delete(part);
      }
    }
  };
  fill(new Set(PARTS.filter((part) => weights[part] > 0 && demands[part] > 0)), (part) => weights[part]);
  fill(new Set(PARTS.filter((part) => weights[part] === 0 && demands[part] > 0)), () => 1);
  return given;
}
