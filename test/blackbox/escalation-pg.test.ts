// Invariant 12 (no escalation) on the shared PostgreSQL store (see escalation-suite.ts).
import { afterAll } from 'vitest';
import { pgSchemas } from '../helpers/pg-schemas.ts';
import { escalationSuite } from './escalation-suite.ts';

const schemas = pgSchemas('bbesc');
afterAll(() => schemas.drop());
let n = 0;
escalationSuite('PostgreSQL', async () => schemas.url(`s${n++}`));
