/**
 * The admin commands of `floatd` (the same binary as `floatd serve`): customers, products, licenses, leases,
 * reclaim, audit, usage, tokens, webhooks, status and the on-premise commands, over the admin HTTP API, one
 * file per command group. See docs/cli.md.
 */
import type { Command } from 'commander';
import { registerHistory } from './history.js';
import { registerCustomers } from './customers.js';
import { CommandKit } from './kit.js';
import { registerDevices, registerLeases, registerReclaim } from './leases.js';
import { registerGroups } from './groups.js';
import { registerLicenses } from './licenses.js';
import { registerOnPremCommands } from './onprem.js';
import { registerProducts } from './products.js';
import { registerStatus } from './status.js';
import { registerTokens } from './tokens.js';
import { registerWebhooks } from './webhooks.js';

export { onCommanderExit, OUTPUT } from './kit.js';

/** Adds the admin commands to the `floatd` program. */
export function registerAdminCommands(program: Command): void {
  const kit = new CommandKit();
  registerCustomers(program, kit);
  registerProducts(program, kit);
  registerLicenses(program, kit);
  registerLeases(program, kit);
  registerDevices(program, kit);
  registerGroups(program, kit);
  registerReclaim(program, kit);
  registerHistory(program, kit);
  registerTokens(program, kit);
  registerWebhooks(program, kit);
  registerStatus(program, kit);
  registerOnPremCommands(program, kit);
  kit.finish();
}
