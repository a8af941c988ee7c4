/** What `floatd serve` tells a person at start: where the console is, how to sign in, what to do when the port is taken. */

/** The lines printed after "listening on": the console's address and how to sign in to it. */
export function consoleBanner(url: string, adminTokenFile: string, tokenFileExists: boolean): string {
  const signIn = tokenFileExists
    ? `sign in with the admin token kept in ${adminTokenFile} (cat ${adminTokenFile})`
    : `sign in with an admin token (${adminTokenFile} was removed; an admin can make one with: floatd tokens create --name <name> --role admin)`;
  return `floatd: web console at ${url}/console/ — ${signIn}`;
}

/** The one line printed when the port is already taken, naming both ways to pick another. */
export function portInUse(host: string, port: number): string {
  return `floatd: port ${port} on ${host} is already in use (another floatd?); pick another with --port <n> or FLOATD_PORT=<n> (0 = any free port)`;
}
