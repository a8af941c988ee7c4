/**
 * Small shared pieces: error box, form field, confirm dialog (and the confirmed-action hook), copy button, seat bar,
 * status badges, a license's customer.
 */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, DEFAULT_CUSTOMER, licenseCustomer, type License } from '../api';
import { Link } from '../router';

export function errorText(e: unknown): { message: string; code: string | null; requestId: string | null } {
  if (e instanceof ApiError) return { message: e.message, code: e.code, requestId: e.requestId ?? null };
  if (e instanceof Error) return { message: e.message, code: null, requestId: null };
  return { message: String(e), code: null, requestId: null };
}

/** Shows an error answer plainly: the server's message and its code (and request id to quote). */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const { message, code, requestId } = errorText(error);
  return (
    <div className="alert alert-error" role="alert">
      {title && <strong className="alert-title">{title}</strong>}
      <span className="alert-message">{message}</span>
      {code && (
        <span className="alert-code">
          <code>{code}</code>
          {requestId && <span className="muted"> · request {requestId}</span>}
        </span>
      )}
    </div>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
  id: givenId,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | null;
  id?: string;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const auto = useId();
  const id = givenId ?? auto;
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [errId, hintId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? true : undefined })}
      {error && (
        <p className="field-error" id={errId}>
          {error}
        </p>
      )}
      {hint && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

/**
 * A destructive action on one row, asked first (delete a product, revoke a token): `ask(item)` opens the
 * confirmation; `dialog` is spread on the ConfirmDialog, whose confirm runs `action(item)` and, once it
 * succeeded, closes and calls `onDone`; a failure stays in `error` for the dialog to show.
 *
 * @example const remove = useConfirmedAction((p: Product) => api.deleteProduct(p.id), reload);
 *          <ConfirmDialog {...remove.dialog} title={`Delete ${remove.target?.name}?`} …><ErrorBox error={remove.error} /></ConfirmDialog>
 */
/** A form's submit: busy while `action` runs, then `onDone` with its answer, or the error it ended with (for an ErrorBox). */
export function useSubmit<T>(action: () => Promise<T>, onDone: (answer: T) => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onDone(await action());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

export function useConfirmedAction<T>(action: (item: T) => Promise<unknown>, onDone: () => void) {
  const [target, setTarget] = useState<T | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return {
    target,
    error,
    ask(item: T) {
      setError(null);
      setTarget(item);
    },
    dialog: {
      open: target !== null,
      busy,
      onCancel: () => setTarget(null),
      onConfirm: () => {
        if (target === null) return;
        setBusy(true);
        action(target).then(
          () => {
            setBusy(false);
            setTarget(null);
            onDone();
          },
          (e: unknown) => {
            setBusy(false);
            setError(e);
          },
        );
      },
    },
  };
}

/** One column head of a table: its label, or the label with `numeric` (right-aligned) or `hidden` (for screen readers only). */
export type Column = string | { label: ReactNode; numeric?: boolean; hidden?: boolean };

/** A table's `<thead>`: one row of column heads; a `false` column (a role that may not act) is left out. */
export function TableHead({ columns }: { columns: readonly (Column | false)[] }) {
  return (
    <thead>
      <tr>
        {columns.map((column, i) => {
          if (column === false) return null;
          const { label, numeric, hidden } = typeof column === 'string' ? { label: column } : column;
          return (
            <th key={i} scope="col" className={numeric ? 'num' : undefined}>
              {hidden ? <span className="sr-only">{label}</span> : label}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}

/** A modal confirmation on the native <dialog>: focus is trapped and Escape cancels. */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger,
  busy,
  onConfirm,
  onCancel,
  extra,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  extra?: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      d.showModal();
      // The safe choice has the initial focus: Enter on a stray key press does not release or delete.
      cancelRef.current?.focus();
    }
    if (!open && d.open) d.close();
  }, [open]);
  // A new question in the same dialog (the offline refusal) starts from Cancel again.
  useEffect(() => {
    if (open) cancelRef.current?.focus();
  }, [open, title]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}
    >
      {open && (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            onConfirm();
          }}
        >
          <h2 id={titleId}>{title}</h2>
          <div className="dialog-body">{children}</div>
          <div className="actions">
            {extra}
            <button type="submit" className={danger ? 'btn btn-danger' : 'btn btn-primary'} disabled={busy}>
              {busy ? 'Working…' : confirmLabel}
            </button>
            <button type="button" className="btn" onClick={onCancel} disabled={busy} ref={cancelRef}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

/** Copies text; falls back to a hidden textarea where the async clipboard is not available (plain http). */
export function CopyButton({
  text,
  label = 'Copy',
  className = 'btn btn-small',
  ariaLabel,
}: {
  text: string;
  label?: string;
  className?: string;
  ariaLabel?: string;
}) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(t);
  }, [state]);
  const copy = async () => {
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
      else {
        const ta = document.createElement('textarea');
        ta.value = text;
        ta.setAttribute('readonly', '');
        ta.style.position = 'fixed';
        ta.style.opacity = '0';
        document.body.appendChild(ta);
        ta.select();
        const ok = document.execCommand('copy');
        ta.remove();
        if (!ok) throw new Error('copy refused');
      }
      setState('copied');
    } catch {
      setState('failed');
    }
  };
  return (
    <button type="button" className={className} onClick={() => void copy()} aria-label={ariaLabel}>
      {label}
      <span className="copy-state" aria-live="polite">
        {state === 'copied' ? ' ✓ Copied' : state === 'failed' ? ' — copy failed, select the text instead' : ''}
      </span>
    </button>
  );
}

/** Seats used out of total, with the offline share: a bar plus the numbers in text. */
export function SeatBar({ used, offline, total }: { used: number; offline: number; total: number }) {
  const pct = (n: number) => (total > 0 ? Math.min(100, (n / total) * 100) : 0);
  const full = used >= total;
  return (
    <div className="seatbar" title={`${used} of ${total} seats in use, ${offline} offline`}>
      <div className={`seatbar-track${full ? ' seatbar-full' : ''}`} aria-hidden="true">
        <div className="seatbar-online" style={{ width: `${pct(used - offline)}%` }} />
        <div className="seatbar-offline" style={{ width: `${pct(offline)}%` }} />
      </div>
      <span className="seatbar-text">
        <strong>{used}</strong> / {total}
        {offline > 0 && <span className="muted"> ({offline} offline)</span>}
      </span>
    </div>
  );
}

export function licenseState(l: License, now = Date.now()): { label: string; tone: 'ok' | 'warn' | 'bad' } {
  if (l.suspended) return { label: 'Suspended', tone: 'bad' };
  if (l.model === 'subscription' && l.expiresAt && Date.parse(l.expiresAt) <= now) return { label: 'Expired', tone: 'bad' };
  if (l.model === 'trial' && l.trialStartedAt && l.trialDays && Date.parse(l.trialStartedAt) + l.trialDays * 86_400_000 <= now)
    return { label: 'Trial ended', tone: 'bad' };
  if (l.seatsUsed >= l.seats) return { label: 'Full', tone: 'warn' };
  return { label: 'Active', tone: 'ok' };
}

export function StatusBadge({ license }: { license: License }) {
  const s = licenseState(license);
  return <span className={`badge badge-${s.tone}`}>{s.label}</span>;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status">
      {label}
    </p>
  );
}

export function EmptyState({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="empty">
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="page-title">
      <h1 tabIndex={-1} id="page-h1">
        {children}
      </h1>
      {actions && <div className="actions">{actions}</div>}
    </div>
  );
}

/** A license's customer by name, linked to its page; the built-in customer's licenses are named, not linked (its page is "Unassigned"). */
export function LicenseCustomer({ license, names }: { license: Pick<License, 'customerId' | 'metadata'>; names: Map<string, string> }) {
  const name = licenseCustomer(license, names);
  if (license.customerId === DEFAULT_CUSTOMER) return <span className="muted">{name}</span>;
  return <Link to={`/customers/${license.customerId}`}>{name}</Link>;
}
