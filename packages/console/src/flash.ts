/** A one-shot message carried across a client-side navigation ("Key created."). */
let pending: string | null = null;
export function setFlash(message: string): void {
  pending = message;
}
export function takeFlash(): string | null {
  const m = pending;
  pending = null;
  return m;
}
