// The stemmer lives in core: the Postgres store stems chunk terms as it writes them (src/core/terms.ts).
export { stem } from '../core/stem.js';
