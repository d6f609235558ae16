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

  app.route('/v1', v1Api());
  return app;
}

/**
 * The public API, one router per resource. Mounted after the OpenAPI document, whose handler answers first, so the
 * document needs no key; the sub-routers are mounted here before this app is mounted, so their paths reach the document.
 */
function v1Api() {
  const v1 = new OpenAPIHono<AppEnv>();
  v1.use('*', database(), authenticate(), rateLimit());
  v1.route('/subjects', subjectsRouter());
  v1.route('/personalizations', personalizationsRouter());
  v1.route('/weights', weightsRouter());
  v1.route('/generations', generationsRouter());
  v1.route('/webhooks', webhooksRouter());
  v1.route('/admin', adminRouter());
  return v1;
}

export type App = ReturnType<typeof createApp>;
