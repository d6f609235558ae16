// Worker threads start without the parent's TypeScript loader when the parent is not itself run by tsx (vitest, for
// one), so the worker registers tsx before importing its TypeScript body.
import { register } from 'tsx/esm/api';

register();
await import('./session-worker.ts');
