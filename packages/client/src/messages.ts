/**
 * The end user's sentences: one table, code → a plain sentence that says what to do.
 * Used by the SDK's key API ({@link explain}) and by floatd-run; mirrored in docs/client.md
 * ("What the end user reads"). Tests check every sentence's exact text (messages.test.ts).
 */
import { FloatingLicenseError } from './errors.js';

/** Codes an end user can meet, with the sentence shown for each. */
export const END_USER_MESSAGES = {
  INVALID_LICENSE_KEY:
    'This license key is not known to this server. Check the key (copy it again from the message that gave it to you) or ask your administrator for one.',
  WRONG_PRODUCT: 'This license key is for another product. Ask your administrator for a key for this application.',
  LICENSE_EXPIRED: 'This license has expired. Ask your administrator or vendor to renew it.',
  TRIAL_EXPIRED: 'The trial period of this license is over. Ask your vendor for a full license.',
  LICENSE_SUSPENDED: 'This license is suspended by your administrator. Ask them to reinstate it.',
  NO_SEATS_AVAILABLE: 'Every seat of this license is in use{detail}. Try again later, or ask a colleague to close the application.',
  NETWORK_ERROR:
    'The license server cannot be reached. Check your network connection or VPN, or ask your administrator whether the server is running.',
  CLOCK_TAMPERED:
    "This computer's clock is set earlier than the last time the license was checked. Correct the date and time, then start again.",
  OFFLINE_EXPIRED:
    'The period this license was borrowed for offline has ended. Connect to the network so the license can be checked again.',
} as const;
export type EndUserCode = keyof typeof END_USER_MESSAGES;

/** The sentence for a code; `detail` fills NO_SEATS_AVAILABLE's slot (the server's wording of when a seat frees). */
export function endUserMessage(code: EndUserCode, detail?: string): string {
  const text: string = END_USER_MESSAGES[code];
  return text.replace('{detail}', detail ? ` (${detail})` : '');
}

/** NO_SEATS_AVAILABLE's detail, worded as the server words it: the earliest lease expiry, which its holder may renew. */
export function seatDetail(details: Record<string, unknown>): string {
  const total = typeof details.seatsTotal === 'number' ? `all ${details.seatsTotal} seats are in use` : 'all seats are in use';
  const at = typeof details.earliestExpiryAt === 'string' ? details.earliestExpiryAt : undefined;
  return at
    ? `${total}; the earliest lease expires at ${new Date(at).toISOString()} unless its holder renews it`
    : `${total}; no lease expires on its own, a seat frees when someone checks in`;
}

/**
 * A plain sentence for any error: the table's sentence when the code is in it (a
 * transient network-like failure reads as "cannot be reached"), otherwise the error's own message.
 *
 * @example catch (err) { dialog.show(explain(err)); }
 */
export function explain(err: unknown): string {
  if (err instanceof FloatingLicenseError) {
    if (err.code === 'NO_SEATS_AVAILABLE') return endUserMessage('NO_SEATS_AVAILABLE', seatDetail(err.details));
    if (err.code in END_USER_MESSAGES) return endUserMessage(err.code as EndUserCode);
    if (err.code === 'BAD_RESPONSE' || (err.transient && err.code !== 'RATE_LIMITED')) return endUserMessage('NETWORK_ERROR');
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The table's code for an error, when it has one. */
export function endUserCode(err: unknown): EndUserCode | undefined {
  if (!(err instanceof FloatingLicenseError)) return undefined;
  if (err.code in END_USER_MESSAGES) return err.code as EndUserCode;
  if (err.code === 'BAD_RESPONSE' || (err.transient && err.code !== 'RATE_LIMITED')) return 'NETWORK_ERROR';
  return undefined;
}
