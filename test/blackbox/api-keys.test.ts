// The key management API on the embedded SQLite store (see api-keys-suite.ts).
import { apiKeysSuite } from './api-keys-suite.ts';
import { tempStore } from './harness.ts';

apiKeysSuite('SQLite', async () => tempStore());
