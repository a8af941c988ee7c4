import { useState, type FormEvent } from 'react';
import { api, namedCustomer, type License, type ReclaimReport, type UpdateLicenseBody } from '../api';
import { fmtDuration, fmtTime, normaliseKey, plural, vis } from '../format';

const TTL_ROWS = 25;
import { Link } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ErrorBox, Loading, PageTitle, TableHead } from '../components/ui';

/** Reclamation: the sweep interval (server config), each license's lease TTL, and "Reclaim inactive licenses now". */
export function Reclaim() {
  useTitle('Reclamation');
  const isOperator = useCan('operator');
  const { onPrem, me } = useSession(); // on-premise the license file owns the policies (ENTITLEMENT_MANAGED)
  const isAdmin = useCan('admin') && !onPrem;
  const { data, error, reload } = useLoad(async () => {
    const [settings, licenses, names, customerNames] = await Promise.all([
      api.settings(),
      api.licenses(),
      api.productNames(),
      api.customerNames(),
    ]);
    return { settings, licenses: licenses.items.map((l) => ({ ...l, customer: namedCustomer(l, customerNames) })), names };
  }, []);
  const [report, setReport] = useState<(ReclaimReport & { hostnames: Map<string, string> }) | null>(null);
  const [reclaimError, setReclaimError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const [ttlFilter, setTtlFilter] = useState('');
  const [showAll, setShowAll] = useState(false);
  // One editor at a time: hundreds of licenses make a table to search, not hundreds of forms.
  const [editing, setEditing] = useState<string | null>(null);

  const reclaimNow = async () => {
    setRunning(true);
    setReclaimError(null);
    try {
      const r = await api.reclaim();
      // Name the freed devices: one device list per affected key (at most 10 keys).
      const hostnames = new Map<string, string>();
      const ids = [...new Set(r.freed.map((f) => f.licenseId))].slice(0, 10);
      await Promise.all(
        ids.map(async (id) => {
          try {
            for (const d of (await api.devices(id)).items)
              if (d.hostname) hostnames.set(d.id, vis(d.user ? `${d.hostname} (${d.user})` : d.hostname));
          } catch {
            // a key deleted meanwhile: show ids only
          }
        }),
      );
      setReport({ ...r, hostnames });
      reload();
    } catch (e) {
      setReclaimError(e);
    } finally {
      setRunning(false);
    }
  };

  if (!data) return error ? <ErrorBox error={error} /> : <Loading />;
  const keyOf = (id: string) => data.licenses.find((l) => l.id === id);
  const needle = normaliseKey(ttlFilter);
  const ttlRows = ttlFilter.trim()
    ? data.licenses.filter(
        (l) =>
          (needle.length >= 3 && normaliseKey(l.key).includes(needle)) ||
          (data.names.get(l.productId) ?? '').toLowerCase().includes(ttlFilter.trim().toLowerCase()) ||
          (l.customer ?? '').toLowerCase().includes(ttlFilter.trim().toLowerCase()),
      )
    : data.licenses;

  return (
    <>
      <PageTitle>Reclamation</PageTitle>
      <p className="lead">
        A seat whose holder went silent (crash, sleep, lost network) is dead once its lease TTL passes without a heartbeat, or at the
        Offline Expiry Date of an offline lease. Reclamation frees dead seats so other users can take them.
      </p>

      <section className="card" aria-labelledby="now-h">
        <h2 id="now-h">Reclaim inactive licenses now</h2>
        <p>
          Runs a sweep over {me.customerId ? "your organisation's licenses" : 'every license'} at once: frees every dead seat and drops
          every dead instance, then shows what it freed.
        </p>
        {isOperator ? (
          <button type="button" className="btn btn-primary" onClick={() => void reclaimNow()} disabled={running}>
            {running ? 'Reclaiming…' : 'Reclaim inactive licenses now'}
          </button>
        ) : (
          <p className="muted">Running a sweep needs the operator role; your token is read-only.</p>
        )}
        <ErrorBox error={reclaimError} title="Reclamation failed" />
        {report && (
          <div className="report" role="status" aria-live="polite">
            <p>
              <strong>
                {report.freed.length === 0 ? 'Nothing to free: every held seat is alive.' : `Freed ${plural(report.freed.length, 'seat')}.`}
              </strong>{' '}
              {plural(report.instancesDropped, 'dead instance')} dropped. Ran at {fmtTime(report.ranAt)}.
            </p>
            {report.freed.length > 0 && (
              <div className="table-wrap">
                <table className="table table-cards">
                  <caption className="sr-only">Seats freed by this sweep</caption>
                  <TableHead columns={['Key', 'Device', 'Reason', 'Lease']} />
                  <tbody>
                    {report.freed.map((f) => {
                      const l = keyOf(f.licenseId);
                      return (
                        <tr key={f.leaseId}>
                          <th scope="row" data-label="Key">
                            <Link to={`/licenses/${f.licenseId}`}>{l ? <code>{l.key}</code> : f.licenseId}</Link>
                          </th>
                          <td data-label="Device">{report.hostnames.get(f.deviceId) ?? <code>{f.deviceId}</code>}</td>
                          <td data-label="Reason">{f.reason === 'expired' ? 'inactive (lease expired)' : f.reason}</td>
                          <td data-label="Lease">
                            <code>{f.leaseId}</code>
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="settings-h">
        <h2 id="settings-h">Settings</h2>
        <dl className="dl">
          <div>
            <dt>Automatic sweep every</dt>
            <dd>
              {fmtDuration(data.settings.reclaimIntervalSeconds)}{' '}
              <span className="muted small">
                (server configuration: <code>--reclaim-interval</code> or <code>FLOATD_RECLAIM_INTERVAL_SECONDS</code>; restart to change)
              </span>
            </dd>
          </div>
          <div>
            <dt>Server</dt>
            <dd>
              floatd {data.settings.version}, {data.settings.store} store, server time {fmtTime(data.settings.serverTime)}
            </dd>
          </div>
        </dl>
        <p className="muted small">
          A checkout on a full license also frees that license's dead seats at once, so a zombie seat is usable the moment its TTL ends.
        </p>
      </section>

      <section className="card" aria-labelledby="ttl-h">
        <h2 id="ttl-h">Inactivity threshold per license (lease TTL)</h2>
        <p>
          How long a seat stays held without a heartbeat. Shorter frees crashed seats sooner; longer tolerates sleeping laptops and flaky
          networks. Clients are told to send a heartbeat at a third of it unless the license sets its own interval.
        </p>
        {data.licenses.length > 0 && (
          <div className="filters" role="search">
            <div className="field">
              <label htmlFor="ttl-filter">Find a license</label>
              <input
                id="ttl-filter"
                type="search"
                value={ttlFilter}
                onChange={(e) => setTtlFilter(e.target.value)}
                placeholder="key, product or customer"
                autoComplete="off"
              />
            </div>
            <p className="muted small" role="status" aria-live="polite">
              {ttlRows.length === data.licenses.length
                ? plural(ttlRows.length, 'license')
                : `${plural(ttlRows.length, 'license')} match, of ${data.licenses.length}`}
            </p>
          </div>
        )}
        {data.licenses.length === 0 ? (
          <p className="empty-inline">No licenses yet. {isAdmin && <Link to="/licenses/new">Create one.</Link>}</p>
        ) : (
          <div className="table-wrap">
            <table className="table table-cards">
              <caption className="sr-only">Lease TTL of each license</caption>
              <TableHead columns={['Key', 'Lease TTL', 'Heartbeat interval', 'Seats in use']} />
              <tbody>
                {ttlRows.slice(0, showAll ? undefined : TTL_ROWS).map((l) => (
                  <TtlRow
                    key={l.id}
                    license={l}
                    productName={data.names.get(l.productId) ?? ''}
                    canEdit={isAdmin}
                    editing={editing === l.id}
                    onEdit={(on) => setEditing(on ? l.id : null)}
                    onSaved={reload}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
        {!showAll && ttlRows.length > TTL_ROWS && (
          <div className="actions">
            <button type="button" className="btn" onClick={() => setShowAll(true)}>
              Show all {ttlRows.length} licenses
            </button>
          </div>
        )}
      </section>
    </>
  );
}

function TtlRow({
  license: l,
  productName,
  canEdit,
  editing,
  onEdit,
  onSaved,
}: {
  license: License & { customer: string | null };
  productName: string;
  canEdit: boolean;
  editing: boolean;
  onEdit: (on: boolean) => void;
  onSaved: () => void;
}) {
  const [value, setValue] = useState(l.leaseTtlSeconds === null ? '' : String(l.leaseTtlSeconds));
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const inputId = `ttl-${l.id}`;
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(false);
    const t = value.trim();
    const n = Number(t);
    try {
      // Text that is not a number goes as typed: the server's VALIDATION_FAILED says what is wrong with it.
      await api.updateLicense(l.id, { leaseTtlSeconds: t === '' ? null : Number.isFinite(n) ? n : t } as UpdateLicenseBody);
      setSaved(true);
      onEdit(false);
      onSaved();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr data-license-id={l.id}>
      <th scope="row" data-label="Key">
        <Link to={`/licenses/${l.id}`}>
          <code>{l.key}</code>
        </Link>
        <span className="sub">
          {productName}
          {l.customer ? ` · ${l.customer}` : ''}
        </span>
      </th>
      <td data-label="Lease TTL">
        {canEdit && editing ? (
          <form className="ttl-form" onSubmit={(e) => void save(e)} noValidate>
            <label htmlFor={inputId} className="sr-only">
              Lease TTL in seconds for {l.key}
            </label>
            <input
              id={inputId}
              type="number"
              inputMode="numeric"
              value={value}
              placeholder="no TTL"
              onChange={(e) => {
                setValue(e.target.value);
                setSaved(false);
              }}
              aria-invalid={error ? true : undefined}
              aria-describedby={`${inputId}-hint`}
            />
            <span className="unit">s</span>
            <button type="submit" className="btn btn-small" disabled={busy}>
              Save
            </button>
            <button type="button" className="btn btn-small" onClick={() => onEdit(false)} disabled={busy}>
              Cancel
            </button>
            <span id={`${inputId}-hint`} className="sub">
              {saved ? '✓ Saved. ' : ''}
              {l.leaseTtlSeconds === null ? 'none: never reclaimed' : fmtDuration(l.leaseTtlSeconds)}; empty = no TTL
            </span>
            <ErrorBox error={error} />
          </form>
        ) : (
          <>
            {l.leaseTtlSeconds === null ? 'none (never reclaimed)' : fmtDuration(l.leaseTtlSeconds)}
            {saved && <span className="sub">✓ Saved.</span>}
            {canEdit && (
              <button
                type="button"
                className="btn btn-small ttl-change"
                aria-label={`Change the lease TTL of ${l.key}`}
                onClick={() => {
                  setValue(l.leaseTtlSeconds === null ? '' : String(l.leaseTtlSeconds));
                  setError(null);
                  setSaved(false);
                  onEdit(true);
                }}
              >
                Change
              </button>
            )}
          </>
        )}
      </td>
      <td data-label="Heartbeat interval">{fmtDuration(l.heartbeatIntervalSeconds)}</td>
      <td data-label="Seats in use">
        {l.seatsUsed} / {l.seats}
      </td>
    </tr>
  );
}
