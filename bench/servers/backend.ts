// The demo device backend in a process of its own, so the load generator, the proxies
// and the backend each get their own core time and the backend is the same for all.
import { startDemoBackend } from '../../src/demo/backend.ts';
import { BENCH_USERS, DEVICES_PER_USER } from '../fixtures.ts';

const backend = await startDemoBackend({ port: 0, users: BENCH_USERS, devicesPerUser: DEVICES_PER_USER, record: false });
// Scenario 4 creates a command per request; the demo backend keeps them all. Forgetting
// them keeps the backend's memory (and so its speed) the same from the first round to the last.
setInterval(() => backend.commands.clear(), 1000).unref();
process.on('SIGTERM', () => void backend.close().then(() => process.exit(0)));
process.stdout.write(JSON.stringify({ msg: 'listening', address: `127.0.0.1:${backend.port}` }) + '\n');
