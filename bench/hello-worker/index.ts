// The ceiling for `npm run bench:edge`: a Hono hello-world under the same `wrangler dev` (workerd) as the edge.
import { Hono } from 'hono';

const app = new Hono();
app.get('/', (c) => c.json({ hello: 'world' }));

export default app;
