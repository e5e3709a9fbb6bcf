import { FlatFileStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { describeSearchConformance } from './search-conformance.js';

// The flat files' search (FlatSearch, Recall's default backend) over a fresh data dir per test.
describeSearchConformance('flat files', async () => {
  const store = await FlatFileStore.open({ dataDir: await tempDir(), fsync: 'none' });
  return { store, close: () => store.close() };
});
