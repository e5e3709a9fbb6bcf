// The key file lives with the store (deleting a user revokes their keys; doctor checks the file);
// the server is its main user, so its names stay importable from here.
export { KeyStore, type ApiKeyInfo, type Caller } from '../store/api-keys.js';
