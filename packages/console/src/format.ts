/** Display helpers: times in the browser's zone (the API speaks UTC), durations in words, client text made visible. */
import { visibleText } from '@floatd/protocol/text';

/**
 * Text that came from a client or from metadata (hostname, user, app version, audit details), with control
 * characters and bidi overrides shown as escapes (`\x1b`, `\u202e`): React already escapes HTML, but a bidi
 * override would still reorder what the administrator reads. Rows stored before the server refused them too.
 */
export const vis = (s: string): string => visibleText(s);
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const thisYear = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const dateOnly = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const hourFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.getFullYear() === new Date().getFullYear() ? thisYear.format(d) : dateTime.format(d);
}
export const fmtDate = (d: Date) => dateOnly.format(d);
export const fmtHour = (d: Date) => hourFmt.format(d);

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds === 0) return '0 s';
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = Math.abs(seconds);
  for (const [size, name] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** "in 14 min" / "3 min ago", relative to now. */
export function fmtRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const diff = Math.round((Date.parse(iso) - now) / 1000);
  if (Number.isNaN(diff)) return '';
  if (Math.abs(diff) < 5) return 'now';
  const d = fmtDuration(Math.abs(diff)).split(' ').slice(0, 2).join(' ');
  return diff > 0 ? `in ${d}` : `${d} ago`;
}

/** `<input type="datetime-local">` value (local time) → ISO UTC, or null for empty/invalid. */
export function localInputToIso(v: string): string | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
/** ISO UTC → `<input type="datetime-local">` value in local time. */
export function isoToLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Keys are compared the way the server reads them: no case, no dashes or spaces, I/L→1, O→0. */
export function normaliseKey(s: string): string {
  return s.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * One CSV cell (RFC 4180), safe to open in a spreadsheet: a cell that starts with = + - @, a tab or a
 * carriage return would be read as a formula (CSV injection), so it gets a leading apostrophe.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text (CRLF line ends) from a header and rows. */
export function toCsv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/** Saves text as a file download (a Blob URL: nothing leaves the browser). */
export function downloadText(name: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
