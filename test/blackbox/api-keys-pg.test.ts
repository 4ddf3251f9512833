// The key management API on the shared PostgreSQL store (see api-keys-suite.ts), each run in a schema of its own.
import { afterAll } from 'vitest';
import { pgSchemas } from '../helpers/pg-schemas.ts';
import { apiKeysSuite } from './api-keys-suite.ts';

const schemas = pgSchemas('bbapi');
afterAll(() => schemas.drop());
apiKeysSuite('PostgreSQL', async () => schemas.url('store'));
