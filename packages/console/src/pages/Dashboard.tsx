import { api, licenseCustomer, type DashboardRow } from '../api';
import { fmtDate, fmtTime, plural } from '../format';
import { Link } from '../router';
import { useCan, useLiveRefetch, useLoad, useSession, useTitle } from '../session';
import { EmptyState, ErrorBox, LicenseCustomer, Loading, PageTitle, SeatBar, StatusBadge, TableHead } from '../components/ui';

export function Dashboard() {
  useTitle('Dashboard');
  const { onPrem, me } = useSession();
  const isAdmin = useCan('admin') && !onPrem;
  // A customer's token sees one customer's licenses: a customer column would say the same on every row.
  const ownCustomer = me.customerId !== null;
  const { data, error, reload } = useLoad(async () => {
    const [rows, names] = await Promise.all([api.dashboard(), api.customerNames()]);
    // Only a fresh install needs the products (for its first steps).
    const productCount = rows.items.length === 0 ? (await api.products()).items.length : 0;
    return { ...rows, names, productCount, at: new Date().toISOString() };
  }, []);
  useLiveRefetch(reload);

  if (!data) return error ? <ErrorBox error={error} title="Could not load the dashboard" /> : <Loading />;
  const rows = data.items;
  const totals = rows.reduce(
    (t, r) => ({
      used: t.used + r.license.seatsUsed,
      total: t.total + r.license.seats,
      offline: t.offline + r.license.seatsOffline,
      denials: t.denials + r.denialsToday,
    }),
    { used: 0, total: 0, offline: 0, denials: 0 },
  );

  return (
    <>
      <PageTitle
        actions={
          isAdmin && rows.length > 0 ? (
            <Link to="/licenses/new" className="btn btn-primary">
              New license
            </Link>
          ) : undefined
        }
      >
        Dashboard
      </PageTitle>
      <ErrorBox error={error} title="Refresh failed; showing the last data" />
      {rows.length === 0 ? (
        ownCustomer ? (
          <EmptyState title="No licenses yet">
            <p>No license belongs to {data.names.get(me.customerId ?? '') ?? 'your organisation'} yet. Your vendor creates them.</p>
          </EmptyState>
        ) : (
          <FreshInstall isAdmin={isAdmin} productCount={data.productCount} />
        )
      ) : (
        <>
          <section className="stats" aria-label="Totals">
            <Stat label="Licenses" value={String(rows.length)} />
            <Stat label="Seats in use" value={`${totals.used} / ${totals.total}`} />
            <Stat label="Offline seats" value={String(totals.offline)} />
            <Stat label="Denials today" value={String(totals.denials)} tone={totals.denials > 0 ? 'bad' : undefined} />
          </section>
          <ExpiringSoon rows={rows} names={data.names} />
          <div className="table-wrap">
            <table className="table table-cards" aria-describedby="dash-note">
              <caption className="sr-only">Licenses and their seats</caption>
              <TableHead
                columns={[
                  'Key',
                  !ownCustomer && 'Customer',
                  'Seats used / total',
                  { label: 'Online', numeric: true },
                  { label: 'Offline', numeric: true },
                  { label: 'Denials today', numeric: true },
                  'Expires',
                  'Status',
                ]}
              />
              <tbody>
                {rows.map((r) => (
                  <DashRow key={r.license.id} row={r} names={ownCustomer ? null : data.names} />
                ))}
              </tbody>
            </table>
          </div>
          <p className="muted small" id="dash-note">
            Every license, updated live. Denials count “no seat free” answers since 00:00 UTC.
            {data.truncated && ' Only the first 10,000 licenses are shown.'} Last refreshed {fmtTime(data.at)}.
          </p>
        </>
      )}
    </>
  );
}

const EXPIRING_DAYS = 30;

/** Licenses that stop granting within EXPIRING_DAYS (subscriptions, and trials that have started), soonest first. */
function ExpiringSoon({ rows, names }: { rows: DashboardRow[]; names: Map<string, string> }) {
  const now = Date.now();
  const soon = rows
    .map((r) => {
      const l = r.license;
      const end =
        l.model === 'subscription' && l.expiresAt
          ? Date.parse(l.expiresAt)
          : l.model === 'trial' && l.trialStartedAt && l.trialDays
            ? Date.parse(l.trialStartedAt) + l.trialDays * 86_400_000
            : null;
      return { r, end };
    })
    .filter((x): x is { r: DashboardRow; end: number } => x.end !== null && x.end > now && x.end - now <= EXPIRING_DAYS * 86_400_000)
    .sort((a, b) => a.end - b.end);
  if (soon.length === 0) return null;
  return (
    <section className="card" aria-labelledby="expiring-h" data-testid="expiring-soon">
      <h2 id="expiring-h">Expiring within {EXPIRING_DAYS} days</h2>
      <ul>
        {soon.map(({ r, end }) => (
          <li key={r.license.id}>
            <Link to={`/licenses/${r.license.id}`}>{r.license.key}</Link> ({licenseCustomer(r.license, names)}) ends{' '}
            {fmtTime(new Date(end).toISOString())}, in {plural(Math.ceil((end - now) / 86_400_000), 'day')}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** One license's row; `names` null: no customer column (a customer's own token). */
function DashRow({ row, names }: { row: DashboardRow; names: Map<string, string> | null }) {
  const l = row.license;
  return (
    <tr data-license-id={l.id}>
      <th scope="row" data-label="Key">
        <Link to={`/licenses/${l.id}`} className="keylink">
          <span className="keylink-product">{row.productName ?? l.productId}</span>
          <code className="keylink-key">{l.key}</code>
        </Link>
      </th>
      {names && (
        <td data-label="Customer">
          <LicenseCustomer license={l} names={names} />
        </td>
      )}
      <td data-label="Seats used / total" className="seats-cell">
        <SeatBar used={l.seatsUsed} offline={l.seatsOffline} total={l.seats} />
        {l.seatsUsed > l.seats && (
          <span className="badge badge-warn" data-overdraft={l.id}>
            {l.seatsUsed - l.seats} in overdraft
          </span>
        )}
        {l.waiting > 0 && (
          <span className="badge badge-warn" data-waiting={l.id}>
            {l.waiting} waiting
          </span>
        )}
        {l.features.map((f) => (
          <span key={f.name} className="badge" data-feature={`${l.id}:${f.name}`}>
            {f.name} {l.featureSeatsUsed[f.name] ?? 0}/{f.seats}
          </span>
        ))}
      </td>
      <td data-label="Online" className="num">
        {l.seatsUsed - l.seatsOffline}
      </td>
      <td data-label="Offline" className="num">
        {l.seatsOffline}
      </td>
      <td data-label="Denials today" className={`num${row.denialsToday > 0 ? ' text-bad' : ''}`}>
        {row.denialsToday}
      </td>
      <td data-label="Expires">{expiry(l)}</td>
      <td data-label="Status">
        <StatusBadge license={l} />
      </td>
    </tr>
  );
}

function Stat({ label, value, tone }: { label: string; value: string; tone?: 'bad' }) {
  return (
    <div className={`stat${tone ? ` stat-${tone}` : ''}`}>
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
    </div>
  );
}

function FreshInstall({ isAdmin, productCount }: { isAdmin: boolean; productCount: number }) {
  return (
    <EmptyState title="No licenses yet">
      <p>floatd shares a pool of seats on each license among many users. Once a license exists, this page shows its seats in use, live.</p>
      <ol className="steps">
        <li className={productCount > 0 ? 'done' : undefined}>
          <strong>Create a product</strong> — the application you sell.{' '}
          {productCount > 0 ? `(${plural(productCount, 'product')} so far.)` : ''}
        </li>
        <li>
          <strong>Create a license</strong> for a customer, with the number of seats they bought.
        </li>
        <li>
          <strong>Give the key to the customer.</strong> Their application checks a seat out at start (<code>POST /v1/client/checkout</code>
          ) and checks it in at exit.
        </li>
      </ol>
      {isAdmin ? (
        <div className="actions">
          {productCount === 0 ? (
            <Link to="/products" className="btn btn-primary">
              Create a product
            </Link>
          ) : (
            <Link to="/licenses/new" className="btn btn-primary">
              Create a license
            </Link>
          )}
        </div>
      ) : (
        <p className="muted">Your token has a read-only role: ask an administrator to create products and licenses.</p>
      )}
    </EmptyState>
  );
}

/** When a license stops working: a subscription's end, a trial's end once started, or never. */
export function expiry(l: DashboardRow['license']): string {
  if (l.expiresAt) return fmtDate(new Date(l.expiresAt));
  if (l.model === 'trial')
    return l.trialStartedAt && l.trialDays
      ? fmtDate(new Date(Date.parse(l.trialStartedAt) + l.trialDays * 86_400_000))
      : `${l.trialDays ?? '?'} d after first use`;
  return 'never';
}
