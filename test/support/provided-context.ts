// What the Node-side global setups hand to the edge tests (vitest `provide`/`inject`).
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    runnerUrl: string;
    runnerSecret: string;
    /** WEBHOOK_SEALING_KEYS of the Worker under test. */
    webhookSealingKeys: string;
  }
}
