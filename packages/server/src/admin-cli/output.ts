/**
 * Printing for the admin commands: aligned plain-text tables, key/value blocks, CSV and JSON.
 * Much of what is printed came from a client (hostname, user) or from metadata, possibly stored
 * before the server refused control characters: every line leaves with control characters, DEL
 * and bidi overrides escaped visibly (`\x1b`), so listing leases can never retitle, clear or
 * reprogram the administrator's terminal. CSV cells are also neutralised against formulas.
 */
import { csvSafeCell, visibleJson, visibleText } from '@floatd/protocol';

export type Cell = string | number | boolean | null | undefined;

/** Writes one line (or several) to stdout; line breaks stay, every other control character is shown escaped. */
export function out(text: string): void {
  process.stdout.write(visibleLines(text.endsWith('\n') ? text : `${text}\n`));
}

/** Escapes what `visibleText` escapes, but keeps the line breaks that separate lines of our own making. */
export function visibleLines(text: string): string {
  return text.split('\n').map(visibleText).join('\n');
}

/** `--json`: the server's answer as one JSON document. */
export function printJson(value: unknown): void {
  // JSON.stringify escapes C0 already; DEL, C1 and bidi overrides are escaped too (same value once parsed).
  process.stdout.write(`${visibleJson(JSON.stringify(value, null, 2))}\n`);
}

/** A cell as text: null and undefined become `-`. Times are already ISO UTC from the server. */
export function cell(v: Cell): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return visibleText(String(v));
}

/** An aligned table with a header row; columns are separated by two spaces. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => headers.map((_, i) => cell(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)].join('\n');
}

/** Key/value lines for one object: `name   value`. */
export function keyValues(pairs: [string, Cell][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${cell(v)}`).join('\n');
}

/**
 * CSV per RFC 4180: fields with a comma, quote or line break are quoted; a field a spreadsheet would run as a
 * formula (starts with = + - @, a tab or a carriage return) gets a leading apostrophe (OWASP CSV injection).
 */
export function csv(headers: string[], rows: Cell[][]): string {
  const field = (v: Cell) => {
    const s = v === null || v === undefined ? '' : csvSafeCell(String(v));
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [headers, ...rows].map((r) => r.map(field).join(',')).join('\n');
}
