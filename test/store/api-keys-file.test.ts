import { KeyStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { describeKeyStoreConformance } from './api-keys.conformance.js';

describeKeyStoreConformance('api_keys.json', async () => {
  const dataDir = await tempDir();
  return { keys: new KeyStore(dataDir), another: () => new KeyStore(dataDir) };
});
