/**
 * Where the admin commands find the server and the admin token, highest precedence first:
 *   1. flags `--server <url>` and `--token <token>`;
 *   2. environment `FLOATD_SERVER` and `FLOATD_TOKEN`;
 *   3. the config file `--config <file>`, else `$FLOATD_CONFIG`, else `~/.config/floatd/cli.json`,
 *      JSON `{"server": "...", "token": "..."}` (a missing default file is fine; a named one must exist);
 *   4. defaults: server `http://127.0.0.1:7070`, token read from `./data/admin-token` if that file exists.
 * The token is never printed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, EXIT } from './http.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7070';
export const DEFAULT_TOKEN_FILE = join('data', 'admin-token');

export interface ConnectionFlags {
  server?: string;
  token?: string;
  config?: string;
}

export interface Connection {
  server: string;
  token: string | null;
  /** Where the token came from, for messages (never the token itself). */
  tokenSource: string;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOATD_CONFIG || join(homedir(), '.config', 'floatd', 'cli.json');
}

function readConfigFile(flags: ConnectionFlags, env: NodeJS.ProcessEnv): { server?: string; token?: string; path: string } {
  const named = flags.config ?? (env.FLOATD_CONFIG || undefined);
  const path = resolve(named ?? defaultConfigPath(env));
  if (!existsSync(path)) {
    if (named) throw new CliError(`config file ${path} does not exist`, EXIT.usage);
    return { path };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`config file ${path} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, EXIT.usage);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new CliError(`config file ${path} must hold a JSON object {"server": …, "token": …}`, EXIT.usage);
  const config = raw as Record<string, unknown>;
  for (const k of ['server', 'token'] as const) {
    if (config[k] !== undefined && typeof config[k] !== 'string')
      throw new CliError(`config file ${path}: "${k}" must be a string`, EXIT.usage);
  }
  return { server: config.server as string | undefined, token: config.token as string | undefined, path };
}

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Connection {
  const file = readConfigFile(flags, env);
  const server = flags.server ?? (env.FLOATD_SERVER || undefined) ?? file.server ?? DEFAULT_SERVER;
  let parsed: URL;
  try {
    parsed = new URL(server);
  } catch {
    throw new CliError(`server "${server}" is not a URL (expected e.g. ${DEFAULT_SERVER})`, EXIT.usage);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new CliError(`server "${server}" must be an http:// or https:// URL`, EXIT.usage);

  let token: string | null = null;
  let tokenSource = 'none';
  if (flags.token !== undefined) [token, tokenSource] = [flags.token, '--token'];
  else if (env.FLOATD_TOKEN) [token, tokenSource] = [env.FLOATD_TOKEN, 'FLOATD_TOKEN'];
  else if (file.token) [token, tokenSource] = [file.token, file.path];
  else {
    const p = join(cwd, DEFAULT_TOKEN_FILE);
    if (existsSync(p)) {
      try {
        [token, tokenSource] = [readFileSync(p, 'utf8').trim() || null, p];
      } catch {
        token = null;
      }
    }
  }
  if (token !== null) {
    token = token.trim();
    if (!token) token = null;
    // A header value may not hold control characters; fetch would fail with a message that is no help.
    else if (/[\u0000-\u001f\u007f]/.test(token))
      throw new CliError(`the admin token from ${tokenSource} contains control characters`, EXIT.usage);
  }
  return { server: server.replace(/\/+$/, ''), token, tokenSource };
}
