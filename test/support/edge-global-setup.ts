// Node-side setup for the edge tests (workerd): a fresh Postgres database with the migrations applied, and the
// contract-honouring test runner. Their URLs reach the Worker as bindings (edge/vitest.config.ts), with a fresh
// key-encryption key for webhook secrets.
import type { TestProject } from 'vitest/node';
import { generateSealingKey } from '../../edge/lib/sealing.ts';
import { applyMigrations, createFreshDatabase, startPostgres } from './postgres.ts';
import { startTestRunner, TEST_RUNNER_SECRET } from './test-runner.ts';

import './provided-context.ts';

export default async function setup(project: TestProject) {
  const server = await startPostgres();
  const database = await createFreshDatabase(server.adminUrl, 'hdb_edge');
  await applyMigrations(database.url);
  const runner = await startTestRunner(TEST_RUNNER_SECRET);
  project.provide('databaseUrl', database.url);
  project.provide('runnerUrl', runner.url);
  project.provide('runnerSecret', TEST_RUNNER_SECRET);
  project.provide('webhookSealingKeys', generateSealingKey('test'));
  console.log(`[edge tests] postgres: ${server.source}, runner double: ${runner.url}`);
  return async () => {
    await runner.close();
    await database.drop();
    await server.stop();
  };
}
