import { useMemo } from 'react';
import { api, DEFAULT_USAGE_RANGE, type UsageHour } from '../api';
import { fmtDate, fmtDuration, fmtHour, plural } from '../format';
import { Link, navigate, useLocation } from '../router';
import { useLiveRefetch, useLoad, useTitle } from '../session';
import { EmptyState, ErrorBox, Field, Loading, PageTitle, TableHead } from '../components/ui';
import { UsageChart, type Bucket } from '../components/UsageChart';

const RANGES: [string, string, number][] = [
  ['24h', 'Last 24 hours', 1],
  ['7d', 'Last 7 days', 7],
  ['30d', 'Last 30 days', 30],
  ['90d', 'Last 90 days', 90],
  ['365d', 'Last 365 days', 365],
];

/** Hourly rows → local calendar days: the day's peak, its last level, and the sums. */
export function toDays(items: UsageHour[]): Bucket[] {
  const days = new Map<string, Bucket>();
  for (const h of items) {
    const d = new Date(h.hour);
    const start = new Date(d.getFullYear(), d.getMonth(), d.getDate());
    const k = start.toISOString();
    const b = days.get(k);
    if (!b) days.set(k, { start, peakSeats: h.peakSeats, seatsAtEnd: h.seatsAtEnd, checkouts: h.checkouts, denials: h.denials });
    else {
      b.peakSeats = Math.max(b.peakSeats, h.peakSeats);
      b.seatsAtEnd = h.seatsAtEnd;
      b.checkouts += h.checkouts;
      b.denials += h.denials;
    }
  }
  return [...days.values()];
}

const toHours = (items: UsageHour[]): Bucket[] =>
  items.map((h) => ({
    start: new Date(h.hour),
    peakSeats: h.peakSeats,
    seatsAtEnd: h.seatsAtEnd,
    checkouts: h.checkouts,
    denials: h.denials,
  }));

export function UsagePage() {
  useTitle('Usage');
  const { query } = useLocation();
  const rangeKey = RANGES.some((r) => r[0] === query.get('range')) ? (query.get('range') as string) : DEFAULT_USAGE_RANGE;
  const days = RANGES.find((r) => r[0] === rangeKey)?.[2] ?? 7;
  const view: 'hour' | 'day' =
    query.get('view') === 'hour' || query.get('view') === 'day' ? (query.get('view') as 'hour' | 'day') : days <= 1 ? 'hour' : 'day';

  const keys = useLoad(async () => {
    const [licenses, names] = await Promise.all([api.licenses(), api.productNames()]);
    return licenses.items.map((l) => ({ license: l, productName: names.get(l.productId) ?? l.productId }));
  }, []);
  const licenseId = query.get('licenseId') ?? keys.data?.[0]?.license.id ?? '';
  const selected = keys.data?.find((k) => k.license.id === licenseId);

  const usage = useLoad(async () => {
    if (!licenseId) return null;
    const to = new Date();
    const from = new Date(to.getTime() - days * 86_400_000);
    return { ...(await api.usage(licenseId, from.toISOString(), to.toISOString())), from, to };
  }, [licenseId, days]);
  useLiveRefetch(usage.reload, (e) => e.licenseId === licenseId, 1000);
  // A seat count from the last 30 days of demand, with its reason (the server's method: docs/api.md).
  const advice = useLoad(async () => (licenseId ? api.recommendation(licenseId) : null), [licenseId]);
  useLiveRefetch(advice.reload, (e) => e.licenseId === licenseId, 5000);

  const setQuery = (patch: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(patch)) next.set(k, v);
    navigate(`/usage?${next.toString()}`, { replace: true });
  };

  const buckets = useMemo(
    () => (usage.data ? (view === 'day' ? toDays(usage.data.items) : toHours(usage.data.items)) : []),
    [usage.data, view],
  );

  if (!keys.data) return keys.error ? <ErrorBox error={keys.error} /> : <Loading />;
  if (keys.data.length === 0)
    return (
      <>
        <PageTitle>Usage</PageTitle>
        <EmptyState title="No licenses yet">
          <p>
            Usage shows how many seats of a license were in use over time, so you can tell whether a customer has too many or too few. It
            starts with the first license: <Link to="/licenses/new">create one</Link>.
          </p>
        </EmptyState>
      </>
    );

  const seats = selected?.license.seats ?? 0;
  const u = usage.data;
  const fullHours = u ? u.items.filter((h) => seats > 0 && h.peakSeats >= seats).length : 0;
  // The queue over the window: checkouts that waited, waiters served, and their average wait.
  const queued = (u?.items ?? []).reduce((n, h) => n + h.queued, 0);
  const served = (u?.items ?? []).reduce((n, h) => n + h.queueGrants, 0);
  const waitedSeconds = (u?.items ?? []).reduce((n, h) => n + h.queueWaitSeconds, 0);
  // Per feature pool over the window: its peak, grants and denials.
  const featureTotals = new Map<string, { peak: number; checkouts: number; denials: number }>();
  for (const h of u?.items ?? [])
    for (const [name, f] of Object.entries(h.features)) {
      const t = featureTotals.get(name) ?? { peak: 0, checkouts: 0, denials: 0 };
      featureTotals.set(name, { peak: Math.max(t.peak, f.peak), checkouts: t.checkouts + f.checkouts, denials: t.denials + f.denials });
    }
  const label = view === 'day' ? fmtDate : fmtHour;
  const verdict = !u
    ? ''
    : u.denials > 0
      ? `Too few seats: users were turned away ${plural(u.denials, 'time')} because all ${seats} seats were in use (${plural(fullHours, 'hour')} at full capacity).`
      : u.peakSeats === 0
        ? 'No seat was used in this period.'
        : u.peakSeats < seats
          ? `At most ${u.peakSeats} of ${seats} seats were in use at once: ${plural(seats - u.peakSeats, 'seat')} ${seats - u.peakSeats === 1 ? 'was' : 'were'} never needed in this period.`
          : `Every one of the ${seats} seats was in use at the peak (${plural(fullHours, 'hour')} at full capacity), but nobody was turned away.`;

  const csv = () => {
    if (!u || !selected) return;
    const lines = ['period_start_utc,period,peak_seats,seats_at_end,checkouts,denials,seats_total'];
    for (const b of buckets) lines.push([b.start.toISOString(), view, b.peakSeats, b.seatsAtEnd, b.checkouts, b.denials, seats].join(','));
    const blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `floatd-usage-${selected.license.key}-${view}-${u.to.toISOString().slice(0, 10)}.csv`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };

  return (
    <>
      <PageTitle>Usage</PageTitle>
      <p className="lead">Concurrent seats over time: see whether a customer's seats are too many or too few.</p>
      <form className="filters" aria-label="Usage options" onSubmit={(e) => e.preventDefault()}>
        <Field label="License">
          {(p) => (
            <select {...p} value={licenseId} onChange={(e) => setQuery({ licenseId: e.target.value })}>
              {keys.data?.map((k) => (
                <option key={k.license.id} value={k.license.id}>
                  {k.productName} — {k.license.key}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Period">
          {(p) => (
            <select {...p} value={rangeKey} onChange={(e) => setQuery({ range: e.target.value })}>
              {RANGES.map(([k, l]) => (
                <option key={k} value={k}>
                  {l}
                </option>
              ))}
            </select>
          )}
        </Field>
        <fieldset className="seg-field">
          <legend className="label">Bars per</legend>
          <div className="segmented">
            {(['hour', 'day'] as const).map((v) => (
              <label key={v} className={view === v ? 'on' : undefined}>
                <input type="radio" name="view" value={v} checked={view === v} onChange={() => setQuery({ view: v })} />
                {v === 'hour' ? 'Hour' : 'Day'}
              </label>
            ))}
          </div>
        </fieldset>
      </form>
      <ErrorBox error={usage.error} />
      {!u ? (
        !usage.error && <Loading />
      ) : (
        <>
          <section className="stats" aria-label="Summary">
            <div className="stat">
              <div className="stat-value">
                {u.peakSeats} / {seats}
              </div>
              <div className="stat-label">Peak seats in use</div>
            </div>
            <div className="stat">
              <div className="stat-value">{seats > 0 ? Math.round((u.peakSeats / seats) * 100) : 0}%</div>
              <div className="stat-label">Peak utilisation</div>
            </div>
            <div className={`stat${u.denials > 0 ? ' stat-bad' : ''}`}>
              <div className="stat-value">{u.denials}</div>
              <div className="stat-label">Denials</div>
            </div>
            <div className="stat">
              <div className="stat-value">{u.checkouts}</div>
              <div className="stat-label">New checkouts</div>
            </div>
            {queued + served > 0 && (
              <div className="stat" data-queue-stat="">
                <div className="stat-value">{queued}</div>
                <div className="stat-label">
                  Waited in the queue
                  {served > 0 ? ` (${served} served, ${fmtDuration(Math.round(waitedSeconds / served))} on average)` : ''}
                </div>
              </div>
            )}
          </section>
          <p className={`verdict${u.denials > 0 ? ' verdict-bad' : ''}`}>{verdict}</p>
          {advice.data && (
            <section className="card" aria-labelledby="reco-h" data-testid="recommendation">
              <h2 id="reco-h">
                Recommended: {plural(advice.data.recommendedSeats, 'seat')} <span className="sub">(now {advice.data.seats})</span>
              </h2>
              <p>
                {advice.data.reason} <span className="muted small">From the last 30 days of checkouts and refusals.</span>
              </p>
            </section>
          )}
          {featureTotals.size > 0 && (
            <div className="table-wrap">
              <table className="table" data-feature-usage="">
                <caption>Feature pools in this period</caption>
                <TableHead
                  columns={[
                    'Feature',
                    { label: 'Seats', numeric: true },
                    { label: 'Peak in use', numeric: true },
                    { label: 'Checkouts', numeric: true },
                    { label: 'Denials', numeric: true },
                  ]}
                />
                <tbody>
                  {[...featureTotals].map(([name, t]) => (
                    <tr key={name} data-feature={name}>
                      <th scope="row">{name}</th>
                      <td className="num">{selected?.license.features.find((f) => f.name === name)?.seats ?? '—'}</td>
                      <td className="num">{t.peak}</td>
                      <td className="num">{t.checkouts}</td>
                      <td className="num">{t.denials}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <UsageChart
            buckets={buckets}
            seats={seats}
            label={label}
            title={`Concurrent seats per ${view} for ${selected?.license.key ?? ''}`}
            summary={`${buckets.length} ${view}s from ${label(u.from)} to ${label(u.to)}. Peak ${u.peakSeats} of ${seats} seats; ${u.denials} denials; ${u.checkouts} new checkouts.`}
          />
          <div className="actions">
            <button type="button" className="btn" onClick={csv}>
              Download CSV
            </button>
            <span className="muted small">
              Times in your time zone; the CSV has UTC. {view === 'day' ? 'Days are your local calendar days.' : ''}
            </span>
          </div>
          <details className="data-table">
            <summary>The numbers as a table</summary>
            <div className="table-wrap">
              <table className="table">
                <caption className="sr-only">Seats per {view}</caption>
                <TableHead
                  columns={[
                    view === 'day' ? 'Day' : 'Hour',
                    { label: 'Peak seats', numeric: true },
                    { label: 'Seats at end', numeric: true },
                    { label: 'Checkouts', numeric: true },
                    { label: 'Denials', numeric: true },
                  ]}
                />
                <tbody>
                  {[...buckets].reverse().map((b) => (
                    <tr key={b.start.toISOString()}>
                      <th scope="row">{label(b.start)}</th>
                      <td className="num">{b.peakSeats}</td>
                      <td className="num">{b.seatsAtEnd}</td>
                      <td className="num">{b.checkouts}</td>
                      <td className="num">{b.denials}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </>
  );
}
