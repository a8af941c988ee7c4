/**
 * Serves the built admin console (packages/console/dist) at /console, with a
 * fallback to index.html for the console's own client-side routes. The console
 * talks to the server only through the public admin API.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * In a clone: packages/console/dist. In the published package: its own `console/`, copied there by `npm pack`
 * (prepack). The clone's build wins where it exists: `npm pack` in a clone puts a `console/` beside the package only
 * until its postpack removes it, and a server started in between must not pick the copy that is about to go.
 */
export const CONSOLE_DIR = consoleDir(
  fileURLToPath(new URL('../../../../console/dist/', import.meta.url)),
  fileURLToPath(new URL('../../../console/', import.meta.url)),
);

/** The clone's built console where there is one, else the package's own copy. */
export function consoleDir(clone: string, packed: string): string {
  return existsSync(`${clone}index.html`) ? clone : packed;
}

export async function consoleRoutes(app: FastifyInstance, dir: string = CONSOLE_DIR): Promise<void> {
  if (!existsSync(`${dir}/index.html`)) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console', 302));
    app.get('/console', { schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).type('text/plain').send('The console is not built: run `npm run build` (npm start does it).\n'),
    );
    return;
  }
  await app.register(fastifyStatic, { root: dir, prefix: '/console/', decorateReply: true, index: 'index.html', wildcard: false });
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console/*', { schema: { hide: true } }, async (_req, reply) => reply.type('text/html').sendFile('index.html'));
}
