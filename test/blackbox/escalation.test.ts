// Invariant 12 (no escalation) on the embedded SQLite store (see escalation-suite.ts).
import { escalationSuite } from './escalation-suite.ts';
import { tempStore } from './harness.ts';

escalationSuite('SQLite', async () => tempStore());
