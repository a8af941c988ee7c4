import { useEffect, useState, type FormEvent } from 'react';
import { api, type AuditEvent, type AuditType } from '../api';
import { fmtTime, isoToLocalInput, localInputToIso, vis } from '../format';
import { Link, navigate, useLocation } from '../router';
import { useLiveRefetch, useLoad, useTitle } from '../session';
import { ErrorBox, Field, Loading, PageTitle } from '../components/ui';

const TYPES: AuditType[] = [
  'checkout',
  'join',
  'heartbeat-revive',
  'checkin',
  'instance-dropped',
  'offline-checkout',
  'release',
  'denied',
  'license.created',
  'license.updated',
  'license.deleted',
  'product.created',
  'product.updated',
  'product.deleted',
  'token.created',
  'token.revoked',
  'signing-key.rotated',
  'entitlements.loaded',
  'server-clock.rollback',
  'server-clock.recovered',
  'deployment.created',
  'deployment.activated',
  'usage-report.imported',
];
const FILTERS = ['licenseId', 'deviceId', 'type', 'from', 'to'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

export function Audit() {
  useTitle('Audit log');
  const { query } = useLocation();
  const filters = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) ?? ''])) as Filters;
  const filterKey = FILTERS.map((k) => filters[k]).join('|');

  const keys = useLoad(async () => (await api.licenses()).items, []);
  const first = useLoad(() => api.audit(filters), [filterKey]);
  const [more, setMore] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  useEffect(() => {
    setMore([]);
    setCursor(first.data?.nextCursor ?? null);
  }, [first.data]);
  // New events appear on their own while only the first page is shown.
  useLiveRefetch(() => {
    if (more.length === 0) first.reload();
  }, () => true, 800);

  const loadMore = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.audit({ ...filters, cursor });
      setMore((m) => [...m, ...page.items]);
      setCursor(page.nextCursor);
      setMoreError(null);
    } catch (e) {
      setMoreError(e);
    } finally {
      setLoadingMore(false);
    }
  };

  const keyText = (id: string | null) => (id ? (keys.data?.find((l) => l.id === id)?.key ?? id) : null);
  const events = [...(first.data?.items ?? []), ...more];
  const active = FILTERS.some((k) => filters[k]);

  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <p className="lead">Every change, newest first: who did what to which key, device and seat.</p>
      <FilterForm filters={filters} keys={keys.data?.map((l) => ({ id: l.id, key: l.key })) ?? []} />
      <ErrorBox error={first.error} title="The audit log could not be read" />
      {!first.data ? (
        !first.error && <Loading />
      ) : events.length === 0 ? (
        <p className="empty-inline">
          {active ? 'No event matches these filters.' : 'Nothing has happened yet. Creating a product or a key is the first event.'}
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards audit">
            <caption className="sr-only">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Actor</th>
                <th scope="col">Key</th>
                <th scope="col">Device</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td data-label="Time">{fmtTime(e.at)}</td>
                  <th scope="row" data-label="Event">
                    <span className={`badge badge-type t-${e.type.replace('.', '-')}`}>{e.type}</span>
                    {e.reason && <span className="sub">{e.reason}</span>}
                  </th>
                  <td data-label="Actor">
                    {e.actor.startsWith('admin:') ? (
                      <>
                        admin <span className="sub">token {e.actor.slice(6)}</span>
                      </>
                    ) : (
                      e.actor
                    )}
                  </td>
                  <td data-label="Key">{e.licenseId ? <Link to={`/keys/${e.licenseId}`}><code>{keyText(e.licenseId)}</code></Link> : '—'}</td>
                  <td data-label="Device">
                    {e.deviceId ? (
                      <>
                      <Link
                        to={`/audit?${new URLSearchParams({ ...clean(filters), deviceId: e.deviceId }).toString()}`}
                        title={`Show only device ${e.deviceId}`}
                        aria-label={`Show only device ${e.deviceId}`}
                      >
                        <code>{e.deviceId.slice(0, 12)}…</code>
                      </Link>
                      {typeof e.data.fingerprint === 'string' && <span className="sub">{vis(e.data.fingerprint)}</span>}
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td data-label="Details" className="details">
                    <Details event={e} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorBox error={moreError} />
      {cursor && (
        <div className="actions">
          <button type="button" className="btn" onClick={() => void loadMore()} disabled={loadingMore}>
            {loadingMore ? 'Loading…' : 'Load older events'}
          </button>
        </div>
      )}
    </>
  );
}

const clean = (f: Record<string, string>) => Object.fromEntries(Object.entries(f).filter(([, v]) => v));

function Details({ event }: { event: AuditEvent }) {
  const entries = Object.entries(event.data).filter(([k, v]) => v !== null && v !== undefined && v !== '' && !(k === 'fingerprint' && event.deviceId));
  if (event.leaseId) entries.unshift(['lease', event.leaseId]);
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <span className="kv">
      {entries.map(([k, v]) => (
        <span key={k}>
          <span className="muted">{vis(k)}</span> {vis(typeof v === 'string' ? v : JSON.stringify(v))}
        </span>
      ))}
    </span>
  );
}

function FilterForm({ filters, keys }: { filters: Filters; keys: { id: string; key: string }[] }) {
  const [f, setF] = useState<Filters>(() => ({ ...filters, from: isoToLocalInput(filters.from), to: isoToLocalInput(filters.to) }));
  const filtersKey = JSON.stringify(filters);
  useEffect(() => setF({ ...filters, from: isoToLocalInput(filters.from), to: isoToLocalInput(filters.to) }), [filtersKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const apply = (e: FormEvent) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (f.licenseId) q.set('licenseId', f.licenseId);
    if (f.deviceId?.trim()) q.set('deviceId', f.deviceId.trim());
    if (f.type) q.set('type', f.type);
    const from = localInputToIso(f.from ?? '');
    const to = localInputToIso(f.to ?? '');
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    navigate(`/audit${q.size ? `?${q.toString()}` : ''}`);
  };
  const set = (k: keyof Filters, v: string) => setF((x) => ({ ...x, [k]: v }));
  return (
    <form className="filters card" onSubmit={apply} aria-label="Filter the audit log" noValidate>
      <Field label="Key">
        {(p) => (
          <select {...p} name="licenseId" value={f.licenseId ?? ''} onChange={(e) => set('licenseId', e.target.value)}>
            <option value="">Any key</option>
            {keys.map((k) => (
              <option key={k.id} value={k.id}>
                {k.key}
              </option>
            ))}
            {f.licenseId && !keys.some((k) => k.id === f.licenseId) && <option value={f.licenseId}>{f.licenseId}</option>}
          </select>
        )}
      </Field>
      <Field label="Device id">
        {(p) => <input {...p} name="deviceId" value={f.deviceId ?? ''} placeholder="dev_…" onChange={(e) => set('deviceId', e.target.value)} autoComplete="off" spellCheck={false} />}
      </Field>
      <Field label="Event type">
        {(p) => (
          <select {...p} name="type" value={f.type ?? ''} onChange={(e) => set('type', e.target.value)}>
            <option value="">Any event</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="From (local time)">
        {(p) => <input {...p} name="from" type="datetime-local" value={f.from ?? ''} onChange={(e) => set('from', e.target.value)} />}
      </Field>
      <Field label="To (local time)">
        {(p) => <input {...p} name="to" type="datetime-local" value={f.to ?? ''} onChange={(e) => set('to', e.target.value)} />}
      </Field>
      <div className="actions filters-actions">
        <button type="submit" className="btn btn-primary">
          Apply filters
        </button>
        <button type="button" className="btn" onClick={() => navigate('/audit')}>
          Clear
        </button>
      </div>
    </form>
  );
}
