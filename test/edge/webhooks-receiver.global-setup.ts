// Starts the webhook receiver for the edge project and hands its URL to the tests (`inject('webhookReceiverUrl')`).
import type { TestProject } from 'vitest/node';
import { startWebhookReceiver } from './webhooks-receiver.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    webhookReceiverUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const receiver = await startWebhookReceiver();
  project.provide('webhookReceiverUrl', receiver.url);
  return () => receiver.close();
}
