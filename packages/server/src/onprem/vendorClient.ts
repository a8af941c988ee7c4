/**
 * The on-premise server's outbound calls to its vendor's floatd: online
 * activation and the usage report upload. Any failure is ACTIVATION_FAILED,
 * with the vendor's own code and message when it gave one; a vendor URL that is
 * not http(s) is VALIDATION_FAILED.
 */
import * as wire from '@floatd/protocol';
import { fail, ok, type Result } from '../domain/result.js';

const TIMEOUT_MS = 15_000;

/** Sends the activation request with the activation key; the vendor answers with the license file. */
export async function activateWithVendor(vendorUrl: string, activationKey: string, request: unknown): Promise<Result<object>> {
  const answer = await callVendor(vendorUrl, wire.routes.onprem.vendorActivate, {
    headers: { authorization: `Activation ${activationKey}` },
    body: { request },
  });
  if (!answer.ok) return answer;
  const licenseFile = (answer.value as { licenseFile?: unknown } | undefined)?.licenseFile;
  if (!licenseFile || typeof licenseFile !== 'object')
    return fail('ACTIVATION_FAILED', 'the vendor server answered without a license file');
  return ok(licenseFile);
}

/** Uploads a signed usage report (the vendor checks it by its signature). */
export async function uploadUsageToVendor(vendorUrl: string, report: unknown): Promise<Result<unknown>> {
  return callVendor(vendorUrl, wire.routes.onprem.vendorUsageUpload, { body: { report } });
}

async function callVendor(
  url: string,
  route: wire.RouteSpec,
  init: { headers?: Record<string, string>; body: unknown },
): Promise<Result<unknown>> {
  const path = wire.pathOf(route);
  let base: URL;
  try {
    base = new URL(url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    return fail('VALIDATION_FAILED', `vendorUrl "${url}" is not an http(s) URL`, { field: 'body/vendorUrl' });
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      body: JSON.stringify(init.body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    return fail('ACTIVATION_FAILED', `the vendor server at ${base.origin} could not be reached: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (!res.ok) {
    const error = body?.error;
    return fail('ACTIVATION_FAILED', `the vendor server refused: ${error?.code ?? res.status} ${error?.message ?? ''}`.trim(), {
      vendorCode: error?.code ?? null,
    });
  }
  return ok(body);
}
