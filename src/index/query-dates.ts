/**
 * Dates and relative times in a query ("in May 2023", "last May", "on 8 May", "two weeks before 23
 * August 2023", "yesterday"), read as time ranges against an explicit `now` (the asking time), and
 * the query with those words taken out. English only; what it does not recognise it leaves alone.
 */

/** A span of time, [start, end) in ms since the epoch (UTC). */
export interface TimeRange {
  start: number;
  end: number;
}

export interface QueryDates {
  ranges: TimeRange[];
  /** The query without the date phrases (and the preposition before each). */
  rest: string;
}

const DAY = 86_400_000;
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const MONTH = `(?:${MONTHS.map((m) => `${m}|${m.slice(0, 3)}\\.?`).join('|')}|sept\\.?)`;
const NUMBERS: Record<string, number> = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, couple: 2, 'a couple of': 2, few: 3, 'a few': 3 };
const COUNT = `(?:\\d{1,3}|a couple of|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten)`;
const UNIT = '(day|week|month|year)s?';
const DAY_OF_MONTH = '(\\d{1,2})(?:st|nd|rd|th)?';
const YEAR = '((?:19|20)\\d{2})';
const SEASONS: Record<string, [number, number]> = { spring: [2, 5], summer: [5, 8], fall: [8, 11], autumn: [8, 11], winter: [11, 14] };
const LEAD = '(?:(?:in|on|during|since|around|from|of|at|by)\\s+(?:the\\s+)?)?';

/** An absolute date: a day, a month, a season or a year (month and day without a year allowed). */
const ABSOLUTE =
  `(?:${DAY_OF_MONTH}\\s+(?:of\\s+)?(${MONTH}),?(?:\\s+${YEAR})?` + // 8 May, 2023 | 8th of May
  `|(${MONTH})\\s+${DAY_OF_MONTH}(?![:\\d]),?(?:\\s+${YEAR})?` + // May 8, 2023
  `|(?:(early|mid|late)[-\\s]+)?(${MONTH}),?\\s+${YEAR}` + // (early) May 2023
  `|(spring|summer|fall|autumn|winter)(?:\\s+(?:of\\s+)?${YEAR})` + // summer 2022
  `|${YEAR}(?![\\d:])` + // 2023
  `|(?:(last|this|early|mid|late)[-\\s]+)?(${MONTH}))`; // (last) May

const PATTERN = new RegExp(
  `\\b(?:${LEAD}(?:(${COUNT})\\s+${UNIT}\\s+(before|after|ago)(?:\\s+${LEAD}${ABSOLUTE})?` + // two weeks before <date> | two weeks ago
    `|(yesterday|today|tonight|(?:last|this|past)\\s+(?:week(?:end)?|month|year))` +
    `|${ABSOLUTE}))\\b\\.?`,
  'gi',
);

function monthIndex(word: string): number {
  const w = word.toLowerCase().replace(/\.$/, '');
  if (w === 'sept') return 8;
  return MONTHS.findIndex((m) => m === w || m.slice(0, 3) === w);
}

function count(word: string): number {
  const w = word.toLowerCase();
  return /^\d+$/.test(w) ? Number(w) : (NUMBERS[w] ?? 1);
}

const utc = (year: number, month: number, day = 1): number => Date.UTC(year, month, day);

/** The most recent occurrence at or before `now` of a month (and day) given without a year. */
function latestYear(now: number, month: number, day?: number): number {
  const today = new Date(now);
  const year = today.getUTCFullYear();
  return utc(year, month, day ?? 1) <= now ? year : year - 1;
}

/**
 * The ranges of one ABSOLUTE match: groups in the order of ABSOLUTE's alternatives.
 * A short month name or "may"/"march" alone, not capitalised and not led by a word that makes it a
 * month, is a verb or a word, not a date: null.
 */
function absolute(g: (string | undefined)[], now: number): TimeRange | null {
  const [d1, m1, y1, m2, d2, y2, part, m3, y3, season, y4, y5, which, m4] = g;
  if (m1 !== undefined && d1 !== undefined) return dayRange(Number(d1), monthIndex(m1), y1, now);
  if (m2 !== undefined && d2 !== undefined) return dayRange(Number(d2), monthIndex(m2), y2, now);
  if (m3 !== undefined && y3 !== undefined) {
    const month = monthIndex(m3);
    const start = utc(Number(y3), month);
    const end = utc(Number(y3), month + 1);
    if (part === undefined) return { start, end };
    const third = (end - start) / 3;
    const at = { early: 0, mid: 1, late: 2 }[part.toLowerCase() as 'early' | 'mid' | 'late'];
    return { start: start + at * third, end: start + (at + 1) * third };
  }
  if (season !== undefined && y4 !== undefined) {
    const [from, to] = SEASONS[season.toLowerCase()] as [number, number];
    return { start: utc(Number(y4), from), end: utc(Number(y4), to) };
  }
  if (y5 !== undefined) return { start: utc(Number(y5), 0), end: utc(Number(y5) + 1, 0) };
  if (m4 !== undefined) {
    if (which === undefined && !/^[A-Z]/.test(m4) && (m4.length <= 5 || /^(may|march)$/i.test(m4))) return null;
    const month = monthIndex(m4);
    const w = which?.toLowerCase();
    const current = new Date(now);
    let year = latestYear(now, month);
    // "last May" in May is a year ago; "this May" is this year's, past or to come.
    if (w === 'last' && year === current.getUTCFullYear() && month === current.getUTCMonth()) year--;
    if (w === 'this') year = current.getUTCFullYear();
    const start = utc(year, month);
    const end = utc(year, month + 1);
    if (w === 'early' || w === 'mid' || w === 'late') {
      const third = (end - start) / 3;
      const at = { early: 0, mid: 1, late: 2 }[w];
      return { start: start + at * third, end: start + (at + 1) * third };
    }
    return { start, end };
  }
  return null;
}

function dayRange(day: number, month: number, year: string | undefined, now: number): TimeRange | null {
  if (month < 0 || day < 1 || day > 31) return null;
  const y = year !== undefined ? Number(year) : latestYear(now, month, day);
  const start = utc(y, month, day);
  return { start, end: start + DAY };
}

/** `n` units before (-1) or after (+1) a range, as wide as one unit around the shifted range. */
function shift(range: TimeRange, n: number, unit: string, sign: number): TimeRange {
  const u = unit.toLowerCase().replace(/s$/, '');
  if (u === 'day' || u === 'week') {
    const step = (u === 'day' ? 1 : 7) * DAY * n * sign;
    // "Two weeks before" is about two weeks: half a unit either side.
    const slack = u === 'week' ? 3.5 * DAY : 0;
    return { start: range.start + step - slack, end: range.end + step + slack };
  }
  const at = (t: number, by: number): number => {
    const d = new Date(t);
    return u === 'month' ? utc(d.getUTCFullYear(), d.getUTCMonth() + by, d.getUTCDate()) : utc(d.getUTCFullYear() + by, d.getUTCMonth(), d.getUTCDate());
  };
  const start = at(range.start, n * sign);
  // "Three months ago" is that month; "a year before" that year: the unit around the point.
  const unitMs = u === 'month' ? 30 * DAY : 365 * DAY;
  return { start: start - unitMs / 2, end: Math.max(at(range.end, n * sign), start) + unitMs / 2 };
}

function relative(word: string, now: number): TimeRange {
  const w = word.toLowerCase().replace(/\s+/g, ' ');
  const today = new Date(now);
  const day = utc(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  switch (w) {
    case 'yesterday':
      return { start: day - DAY, end: day };
    case 'today':
    case 'tonight':
      return { start: day, end: day + DAY };
    case 'last week':
    case 'past week':
      return { start: day - 7 * DAY, end: day };
    case 'last weekend':
      return { start: day - 9 * DAY, end: day };
    case 'this week':
      return { start: day - 6 * DAY, end: day + DAY };
    case 'this weekend':
      return { start: day - 2 * DAY, end: day + 3 * DAY };
    case 'last month':
      return { start: utc(today.getUTCFullYear(), today.getUTCMonth() - 1), end: utc(today.getUTCFullYear(), today.getUTCMonth()) };
    case 'past month':
      return { start: day - 30 * DAY, end: day + DAY };
    case 'this month':
      return { start: utc(today.getUTCFullYear(), today.getUTCMonth()), end: utc(today.getUTCFullYear(), today.getUTCMonth() + 1) };
    case 'last year':
      return { start: utc(today.getUTCFullYear() - 1, 0), end: utc(today.getUTCFullYear(), 0) };
    case 'past year':
      return { start: day - 365 * DAY, end: day + DAY };
    default: // this year
      return { start: utc(today.getUTCFullYear(), 0), end: utc(today.getUTCFullYear() + 1, 0) };
  }
}

/** The date phrases of `text`, read against `now` (ms since the epoch). */
export function findDates(text: string, now: number): QueryDates {
  const ranges: TimeRange[] = [];
  const cut: [number, number][] = [];
  for (const match of text.matchAll(PATTERN)) {
    const g = [...match].slice(1);
    const [n, unit, direction, ...anchorGroups] = g.slice(0, 17);
    const word = g[17];
    const rest = g.slice(18);
    let range: TimeRange | null;
    if (n !== undefined && unit !== undefined && direction !== undefined) {
      const dir = direction.toLowerCase();
      if (dir === 'ago') range = shift({ start: now, end: now }, count(n), unit, -1);
      else {
        const anchor = anchorGroups.some((a) => a !== undefined) ? absolute(anchorGroups, now) : null;
        // "Two weeks before" with no date after it: before the asking time.
        range = shift(anchor ?? { start: now, end: now }, count(n), unit, dir === 'before' ? -1 : 1);
      }
    } else if (word !== undefined) range = relative(word, now);
    else range = absolute(rest, now);
    if (!range || !(range.end > range.start)) continue;
    ranges.push(range);
    cut.push([match.index, match.index + match[0].length]);
  }
  let rest = text;
  for (const [from, to] of cut.reverse()) rest = `${rest.slice(0, from)} ${rest.slice(to)}`;
  rest = rest.replace(/\s+([?.,!])/g, '$1').replace(/\s{2,}/g, ' ').trim();
  return { ranges, rest: ranges.length > 0 && rest.length > 0 ? rest : text };
}

/** Whether `time` falls in any of the ranges, each stretched `slack` ms past its end. */
export function inRanges(time: number, ranges: readonly TimeRange[], slack: number): boolean {
  if (Number.isNaN(time)) return false;
  for (const range of ranges) if (time >= range.start && time < range.end + slack) return true;
  return false;
}
