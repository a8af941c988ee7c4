import { useEffect, useState, type FormEvent } from 'react';
import { api, AUDIT_TYPES, namedCustomer, type AdminTokenInfo, type AuditEvent, type AuditQuery, type Page } from '../api';
import { downloadText, fmtTime, isoToLocalInput, localInputToIso, toCsv, vis } from '../format';
import { Link, navigate, useLocation } from '../router';
import { useCan, useLiveRefetch, useLoad, useSession, useTitle } from '../session';
import { ErrorBox, Field, Loading, PageTitle, TableHead } from '../components/ui';

const TYPES = AUDIT_TYPES;
const FILTERS = ['licenseId', 'deviceId', 'actor', 'type', 'from', 'to'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;
/** The most events one CSV export reads (20 pages of 500). */
const EXPORT_MAX_PAGES = 20;

/** Names for the ids an audit event carries: token names for `admin:<id>`, hostnames for device ids. */
interface Names {
  tokens: Map<string, string>;
  devices: Map<string, string>;
}

export function Audit() {
  useTitle('Audit log');
  const { me } = useSession();
  const isAdmin = useCan('admin');
  const { query } = useLocation();
  const filters = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) ?? ''])) as Filters;
  const filterKey = FILTERS.map((k) => filters[k]).join('|');

  // Each license with the name of its customer (the CSV's `customer` column, the line under each key).
  const keys = useLoad(async () => {
    const [licenses, names] = await Promise.all([api.licenses(), api.customerNames()]);
    return licenses.items.map((l) => ({ ...l, customer: namedCustomer(l, names) }));
  }, []);
  // Token names: only an admin may list tokens; others see their own token's name and the ids of the rest.
  const tokens = useLoad(async () => (isAdmin && !me.customerId ? (await api.tokens()).items : [me]), [isAdmin]);
  // The filters are what the address bar says: the server judges them (a bad one is its VALIDATION_FAILED, shown).
  const first = useLoad(() => api.audit(filters as AuditQuery), [filterKey]);
  const [more, setMore] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [devices, setDevices] = useState<Map<string, string>>(() => new Map());
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>(null);
  useEffect(() => {
    setMore([]);
    setCursor(first.data?.nextCursor ?? null);
  }, [first.data]);
  // New events appear on their own while only the first page is shown.
  useLiveRefetch(
    () => {
      if (more.length === 0) first.reload();
    },
    () => true,
    800,
  );

  const events = [...(first.data?.items ?? []), ...more];
  // Hostnames of the devices on screen: one device list per key shown (kept across pages and reloads).
  // (only keys that still exist: a deleted key's devices are gone with it, and its rows keep the ids)
  const existing = new Set((keys.data ?? []).map((l) => l.id));
  const licenseIds = [
    ...new Set(
      events.filter((e) => e.deviceId && e.licenseId && existing.has(e.licenseId) && !devices.has(e.deviceId)).map((e) => e.licenseId!),
    ),
  ].slice(0, 20);
  const licenseIdsKey = licenseIds.join(',');
  useEffect(() => {
    if (!licenseIdsKey) return;
    let stop = false;
    void Promise.all(
      licenseIdsKey.split(',').map((id) =>
        api.devices(id).then(
          (r) => r.items,
          () => [],
        ),
      ),
    ).then((lists) => {
      if (stop) return;
      setDevices((old) => {
        const next = new Map(old);
        for (const d of lists.flat())
          next.set(d.id, d.hostname ? (d.user ? `${d.hostname} (${d.user})` : d.hostname) : `${d.fingerprint.slice(0, 12)}…`);
        // ids whose key was deleted: remember them as unknown, so they are not asked for again
        for (const e of events)
          if (e.deviceId && !next.has(e.deviceId) && e.licenseId && licenseIdsKey.includes(e.licenseId)) next.set(e.deviceId, '');
        return next;
      });
    });
    return () => {
      stop = true;
    };
  }, [licenseIdsKey]); // eslint-disable-line react-hooks/exhaustive-deps

  const names: Names = { tokens: new Map((tokens.data ?? []).map((t) => [t.id, t.name])), devices };

  const loadMore = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.audit({ ...(filters as AuditQuery), cursor });
      setMore((m) => [...m, ...page.items]);
      setCursor(page.nextCursor);
      setMoreError(null);
    } catch (e) {
      setMoreError(e);
    } finally {
      setLoadingMore(false);
    }
  };

  const keyOf = (id: string | null) => (id ? keys.data?.find((l) => l.id === id) : undefined);
  const keyText = (id: string | null) => (id ? (keyOf(id)?.key ?? id) : null);

  // Every event matching the filters (not only the pages on screen), as a spreadsheet-safe CSV.
  const exportCsv = async () => {
    setExporting(true);
    setExportError(null);
    try {
      const all: AuditEvent[] = [];
      let c: string | undefined;
      for (let i = 0; i < EXPORT_MAX_PAGES; i++) {
        const page: Page<AuditEvent> = await api.audit({ ...(filters as AuditQuery), limit: 500, cursor: c });
        all.push(...page.items);
        c = page.nextCursor ?? undefined;
        if (!c) break;
      }
      const rows = all.map((e) => [
        e.at,
        e.type,
        e.reason,
        e.actor,
        actorName(e.actor, names),
        keyText(e.licenseId),
        keyOf(e.licenseId)?.customer ?? null,
        e.licenseId,
        e.deviceId ? names.devices.get(e.deviceId) || null : null,
        e.deviceId,
        e.leaseId,
        Object.keys(e.data).length ? e.data : null,
      ]);
      const header = [
        'time_utc',
        'event',
        'reason',
        'actor',
        'actor_name',
        'key',
        'customer',
        'license_id',
        'device',
        'device_id',
        'lease_id',
        'details',
      ];
      downloadText(`floatd-audit-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.csv`, toCsv(header, rows));
    } catch (e) {
      setExportError(e);
    } finally {
      setExporting(false);
    }
  };

  const active = FILTERS.some((k) => filters[k]);

  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <p className="lead">Every change, newest first: who did what to which license, device and seat.</p>
      <FilterForm
        filters={filters}
        keys={keys.data?.map((l) => ({ id: l.id, key: l.key, customer: l.customer })) ?? []}
        tokens={tokens.data ?? []}
      />
      <div className="audit-tools">
        <button type="button" className="btn" onClick={() => void exportCsv()} disabled={exporting || events.length === 0}>
          {exporting ? 'Exporting…' : 'Export CSV'}
        </button>
        <span className="muted small">
          Every event matching the filters (up to {(EXPORT_MAX_PAGES * 500).toLocaleString()}), times in UTC.
        </span>
      </div>
      <ErrorBox error={exportError} title="The export failed" />
      <ErrorBox error={first.error} title="The audit log could not be read" />
      {!first.data ? (
        !first.error && <Loading />
      ) : events.length === 0 ? (
        <p className="empty-inline">
          {active ? 'No event matches these filters.' : 'Nothing has happened yet. Creating a product or a license is the first event.'}
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards audit">
            <caption className="sr-only">Audit events, newest first</caption>
            <colgroup>
              <col className="c-time" />
              <col className="c-event" />
              <col className="c-actor" />
              <col className="c-key" />
              <col className="c-device" />
              <col />
            </colgroup>
            <TableHead columns={['Time', 'Event', 'Actor', 'Key', 'Device', 'Details']} />
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td data-label="Time" title={e.at}>
                    {fmtTime(e.at)}
                  </td>
                  <th scope="row" data-label="Event">
                    <span className={`badge badge-type t-${e.type.replace('.', '-')}`}>{e.type}</span>
                    {e.reason && <span className="sub">{e.reason}</span>}
                  </th>
                  <td data-label="Actor" title={e.actor}>
                    {vis(actorName(e.actor, names))}
                  </td>
                  <td data-label="Key">
                    {e.licenseId ? (
                      <Link to={`/licenses/${e.licenseId}`}>
                        <code>{keyText(e.licenseId)}</code>
                      </Link>
                    ) : (
                      '—'
                    )}
                    {keyOf(e.licenseId)?.customer && <span className="sub">{keyOf(e.licenseId)?.customer}</span>}
                  </td>
                  <td data-label="Device">
                    {e.deviceId ? (
                      <Link
                        to={`/audit?${new URLSearchParams({ ...clean(filters), deviceId: e.deviceId }).toString()}`}
                        title={`Show only device ${e.deviceId}`}
                        aria-label={`Show only device ${names.devices.get(e.deviceId) || e.deviceId}`}
                      >
                        {vis(names.devices.get(e.deviceId) ?? '') || <code>{e.deviceId.slice(0, 12)}…</code>}
                      </Link>
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

/** `admin:<token id>` as the token's name; `client` and `reclaimer` in words. */
function actorName(actor: string, names: Names): string {
  if (actor.startsWith('admin:')) {
    const id = actor.slice(6);
    const name = names.tokens.get(id);
    return name ? `${name} (admin token)` : `admin token ${id}`;
  }
  if (actor === 'client') return 'client (the application)';
  if (actor === 'reclaimer') return 'reclaimer (automatic)';
  return actor;
}

const clean = (f: Record<string, string>) => Object.fromEntries(Object.entries(f).filter(([, v]) => v));

function Details({ event }: { event: AuditEvent }) {
  const entries = Object.entries(event.data).filter(
    ([k, v]) => v !== null && v !== undefined && v !== '' && !(k === 'fingerprint' && event.deviceId),
  );
  if (event.leaseId) entries.unshift(['lease', event.leaseId]);
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <span className="kv">
      {entries.map(([k, v]) => (
        <span key={k}>
          <span className="muted">{vis(k)}</span> {vis(detailText(k, v))}
        </span>
      ))}
    </span>
  );
}

function FilterForm({
  filters,
  keys,
  tokens,
}: {
  filters: Filters;
  keys: { id: string; key: string; customer: string | null }[];
  tokens: AdminTokenInfo[];
}) {
  const [f, setF] = useState<Filters>(() => ({ ...filters, from: isoToLocalInput(filters.from), to: isoToLocalInput(filters.to) }));
  const filtersKey = JSON.stringify(filters);
  useEffect(() => setF({ ...filters, from: isoToLocalInput(filters.from), to: isoToLocalInput(filters.to) }), [filtersKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const apply = (e: FormEvent) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (f.licenseId) q.set('licenseId', f.licenseId);
    if (f.deviceId?.trim()) q.set('deviceId', f.deviceId.trim());
    if (f.actor) q.set('actor', f.actor);
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
      <Field label="License">
        {(p) => (
          <select {...p} name="licenseId" value={f.licenseId ?? ''} onChange={(e) => set('licenseId', e.target.value)}>
            <option value="">Any license</option>
            {keys.map((k) => (
              <option key={k.id} value={k.id}>
                {k.customer ? `${k.key} · ${k.customer}` : k.key}
              </option>
            ))}
            {f.licenseId && !keys.some((k) => k.id === f.licenseId) && <option value={f.licenseId}>{f.licenseId}</option>}
          </select>
        )}
      </Field>
      <Field label="Device id" hint="Or pick a device in the table">
        {(p) => (
          <input
            {...p}
            name="deviceId"
            value={f.deviceId ?? ''}
            placeholder="dev_…"
            onChange={(e) => set('deviceId', e.target.value)}
            autoComplete="off"
            spellCheck={false}
          />
        )}
      </Field>
      <Field label="Actor">
        {(p) => (
          <select {...p} name="actor" value={f.actor ?? ''} onChange={(e) => set('actor', e.target.value)}>
            <option value="">Anyone</option>
            <option value="client">client (the application)</option>
            <option value="reclaimer">reclaimer (automatic)</option>
            {tokens.map((t) => (
              <option key={t.id} value={`admin:${t.id}`}>
                {t.name} (admin token)
              </option>
            ))}
            {f.actor && !['client', 'reclaimer'].includes(f.actor) && !tokens.some((t) => `admin:${t.id}` === f.actor) && (
              <option value={f.actor}>{f.actor}</option>
            )}
          </select>
        )}
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

/** A detail value as a person reads it: times (epoch ms or ISO, in fields named …At or oed) in local time. */
function detailText(k: string, v: unknown): string {
  if (/(At|oed|Oed)$/.test(k)) {
    if (typeof v === 'number' && v > 1e11) return fmtTime(new Date(v).toISOString());
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}
