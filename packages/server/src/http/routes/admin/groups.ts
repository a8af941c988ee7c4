/** Admin: groups of users and hosts, which license access policies name as `group:<name>`. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { handle } from '../../route.js';
import { iso } from '../../views.js';
import { actor } from './common.js';

const api = wire.routes.admin;
const view = (g: { name: string; users: string[]; hosts: string[]; updatedAt: number }): wire.Group => ({
  ...g,
  updatedAt: iso(g.updatedAt),
});

export const groupRoutes: Routes = (app, { catalogue }) => {
  handle(app, api.listGroups, async () => ({ items: (await catalogue.groups()).map(view) }));
  handle(app, api.getGroup, async (req) => view(unwrap(await catalogue.group(req.params.name))));
  handle(app, api.putGroup, async (req) => view(await catalogue.putGroup(req.params.name, req.body, actor(req))));
  handle(app, api.deleteGroup, async (req) => unwrap(await catalogue.deleteGroup(req.params.name, actor(req))));
};
