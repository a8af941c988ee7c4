/** The HTTP calls to floatd's client API: one request, a timeout, and errors mapped to codes. */
import { FloatingLicenseError, errorFromResponse } from './errors.js';

/** The `fetch` the SDK uses. @example new FloatingLicense({ serverUrl, licenseKey, fetch: (url, init) => net.fetch(url, init) }) // Electron's net */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ApiOptions {
  serverUrl: string;
  licenseKey: string;
  fetch: FetchLike;
  timeoutMs: number;
  userAgent: string;
}

/** `https://host:port/base` without a trailing slash; throws on anything that is not http(s). */
export function normalizeServerUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FloatingLicenseError('VALIDATION_FAILED', `serverUrl "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FloatingLicenseError('VALIDATION_FAILED', `serverUrl must be http(s), not ${u.protocol}`);
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

export class Api {
  constructor(private readonly o: ApiOptions) {}

  /**
   * One request. Resolves with the parsed JSON of a 2xx answer; rejects with a
   * `FloatingLicenseError`: the server's code for an error envelope, NETWORK_ERROR
   * when nothing answered (or too late), BAD_RESPONSE when the answer is not floatd's.
   */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, opts: { auth?: boolean; timeoutMs?: number } = {}): Promise<T> {
    return (await this.request<T>(method, path, body, opts)).body;
  }

  /** Like `call`, with the HTTP status of the 2xx answer (201 = a new seat). */
  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, opts: { auth?: boolean; timeoutMs?: number } = {}): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.o.userAgent };
    if (opts.auth !== false) headers.authorization = `License ${this.o.licenseKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await this.o.fetch(this.o.serverUrl + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.o.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new FloatingLicenseError('NETWORK_ERROR', `cannot reach the license server at ${this.o.serverUrl}: ${why}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
      if (res.ok) throw new FloatingLicenseError('BAD_RESPONSE', `${method} ${path}: the answer is not JSON (a proxy or captive portal?)`);
    }
    if (!res.ok) throw errorFromResponse(res.status, parsed);
    return { status: res.status, body: parsed as T };
  }
}
