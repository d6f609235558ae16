// The edge app, assembled from one router per resource and the cross-cutting middleware.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './app-types.ts';
import { errorBody } from './lib/errors.ts';
import { authenticate } from './middleware/auth.ts';
import { database } from './middleware/database.ts';
import { handleError, handleNotFound, zodDetails } from './middleware/errors.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { adminRouter } from './routes/admin.ts';
import { docsRouter } from './routes/docs.ts';
import { generationsRouter } from './routes/generations.ts';
import { internalRunnerRouter } from './routes/internal-runner.ts';
import { personalizationsRouter } from './routes/personalizations.ts';
import { subjectsRouter } from './routes/subjects.ts';
import { weightsRouter } from './routes/weights.ts';
import { webhooksRouter } from './webhooks/router.ts';

export const API_VERSION = '0.1.0';

export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    // Schema failures leave in the API's one error shape.
    defaultHook: (result, c) => {
      if (!result.success) {
        return c.json(errorBody('invalid_request', 'the request does not match the schema', zodDetails(result.error)), 422);
      }
    },
  });
  app.onError(handleError);
  app.notFound(handleNotFound);

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.route('/', docsRouter());
  app.doc31('/v1/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'HyperDreamBooth API',
      version: API_VERSION,
      description: 'One selfie in, a personalized text-to-image model out. Errors: {error: {code, message, details}}.',
    },
    servers: [{ url: '/' }],
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'hdb_live_… or hdb_admin_… key' });

  app.use('/internal/*', database());
  app.route('/', internalRunnerRouter());

  app.use('/v1/*', async (c, next) => (c.req.path === '/v1/openapi.json' ? next() : database()(c, next)));
  app.use('/v1/*', async (c, next) => (c.req.path === '/v1/openapi.json' ? next() : authenticate()(c, next)));
  app.use('/v1/*', async (c, next) => (c.req.path === '/v1/openapi.json' ? next() : rateLimit()(c, next)));
  app.route('/', subjectsRouter());
  app.route('/', personalizationsRouter());
  app.route('/', weightsRouter());
  app.route('/', generationsRouter());
  app.route('/', webhooksRouter());
  app.route('/', adminRouter());
  return app;
}

export type App = ReturnType<typeof createApp>;
