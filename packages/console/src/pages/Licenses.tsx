import { useMemo, useState } from 'react';
import { api, licenseCustomer, type License } from '../api';
import { expiry } from './Dashboard';
import { takeFlash } from '../flash';
import { fmtDuration, normaliseKey, plural } from '../format';
import { Link, navigate, useLocation } from '../router';
import { useCan, useLiveRefetch, useLoad, useSession, useTitle } from '../session';
import {
  CopyButton,
  EmptyState,
  ErrorBox,
  Field,
  LicenseCustomer,
  licenseState,
  Loading,
  PageTitle,
  SeatBar,
  StatusBadge,
  TableHead,
} from '../components/ui';

const PAGE_SIZE = 20;

/**
 * Every license, searchable. The admin API has no text search, so the console loads the licenses
 * (500 per request) and filters them here; fine for thousands of keys.
 */
export function Licenses() {
  useTitle('Licenses');
  const { onPrem, me } = useSession();
  const isAdmin = useCan('admin') && !onPrem;
  // A customer's token sees its own licenses only: no customer column (it would be the same on every row).
  const ownCustomer = me.customerId !== null;
  const [flash] = useState(() => takeFlash());
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const productId = query.get('productId') ?? '';
  const status = query.get('status') ?? '';
  const page = Math.max(1, Number(query.get('page') ?? '1') || 1);

  const { data, error, reload } = useLoad(async () => {
    const [licenses, productNames, customerNames] = await Promise.all([api.licenses(), api.productNames(), api.customerNames()]);
    const products = [...productNames].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name));
    return { licenses: licenses.items, truncated: licenses.truncated, products, productNames, customerNames };
  }, []);
  // The whole list is reloaded, so changes are batched for longer than on the dashboard.
  useLiveRefetch(reload, () => true, 1500);

  const setQuery = (patch: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(patch)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    if (!('page' in patch)) next.delete('page');
    const s = next.toString();
    navigate(`/licenses${s ? `?${s}` : ''}`, { replace: true });
  };

  const filtered = useMemo(() => {
    if (!data) return [];
    const text = q.trim().toLowerCase();
    const keyText = normaliseKey(q);
    return data.licenses.filter((l) => {
      if (productId && l.productId !== productId) return false;
      if (status) {
        const s = licenseState(l).label.toLowerCase();
        if (status === 'active' ? s !== 'active' && s !== 'full' : s !== status) return false;
      }
      if (!text) return true;
      return (
        (keyText.length >= 3 && normaliseKey(l.key).includes(keyText)) ||
        l.id.toLowerCase().includes(text) ||
        (data.productNames.get(l.productId) ?? '').toLowerCase().includes(text) ||
        licenseCustomer(l, data.customerNames).toLowerCase().includes(text) ||
        JSON.stringify(l.metadata).toLowerCase().includes(text)
      );
    });
  }, [data, q, productId, status]);

  const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
  const current = Math.min(page, pages);
  const shown = filtered.slice((current - 1) * PAGE_SIZE, current * PAGE_SIZE);

  return (
    <>
      <PageTitle
        actions={
          isAdmin ? (
            <Link to="/licenses/new" className="btn btn-primary">
              New license
            </Link>
          ) : undefined
        }
      >
        Licenses
      </PageTitle>
      {flash && (
        <p className="alert alert-ok" role="status">
          {flash}
        </p>
      )}
      <ErrorBox error={error} />
      {!data ? (
        !error && <Loading />
      ) : data.licenses.length === 0 ? (
        <EmptyState title="No licenses yet">
          <p>
            A license is what a customer buys: a number of seats shared by their users.{' '}
            {isAdmin ? (
              data.products.length === 0 ? (
                <>
                  First <Link to="/products">create a product</Link>.
                </>
              ) : (
                <Link to="/licenses/new">Create the first license.</Link>
              )
            ) : (
              'An administrator creates them.'
            )}
          </p>
        </EmptyState>
      ) : (
        <>
          <form className="filters" role="search" aria-label="Filter licenses" onSubmit={(e) => e.preventDefault()}>
            <Field label="Search" hint="Key (with or without dashes), id, product, customer or metadata">
              {(p) => <input {...p} type="search" value={q} onChange={(e) => setQuery({ q: e.target.value })} autoComplete="off" />}
            </Field>
            <Field label="Product">
              {(p) => (
                <select {...p} value={productId} onChange={(e) => setQuery({ productId: e.target.value })}>
                  <option value="">All products</option>
                  {data.products.map((pr) => (
                    <option key={pr.id} value={pr.id}>
                      {pr.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Status">
              {(p) => (
                <select {...p} value={status} onChange={(e) => setQuery({ status: e.target.value })}>
                  <option value="">Any</option>
                  <option value="active">Active</option>
                  <option value="full">Full</option>
                  <option value="suspended">Suspended</option>
                  <option value="expired">Expired</option>
                  <option value="trial ended">Trial ended</option>
                </select>
              )}
            </Field>
          </form>
          <p className="muted small" role="status" aria-live="polite">
            {filtered.length === data.licenses.length
              ? plural(filtered.length, 'license')
              : `${plural(filtered.length, 'license')} match, of ${data.licenses.length}`}
            {data.truncated && ' (only the first 10,000 licenses are searched)'}
          </p>
          {filtered.length === 0 ? (
            <p className="empty-inline">
              No license matches.{' '}
              <button type="button" className="btn-link" onClick={() => navigate('/licenses', { replace: true })}>
                Clear the filters
              </button>
            </p>
          ) : (
            <div className="table-wrap">
              <table className="table table-cards">
                <caption className="sr-only">Licenses, page {current}</caption>
                <TableHead
                  columns={[
                    'Key',
                    'Product',
                    !ownCustomer && 'Customer',
                    'Seats',
                    'Model',
                    'Expires',
                    'Lease TTL',
                    'Status',
                    { label: 'Actions', hidden: true },
                  ]}
                />
                <tbody>
                  {shown.map((l) => (
                    <KeyRow
                      key={l.id}
                      license={l}
                      productName={data.productNames.get(l.productId) ?? l.productId}
                      customerNames={ownCustomer ? null : data.customerNames}
                    />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {pages > 1 && (
            <nav className="pager" aria-label="Pages">
              <button
                type="button"
                className="btn btn-small"
                disabled={current <= 1}
                onClick={() => setQuery({ page: String(current - 1) })}
              >
                ← Previous
              </button>
              <span>
                Page {current} of {pages}
              </span>
              <button
                type="button"
                className="btn btn-small"
                disabled={current >= pages}
                onClick={() => setQuery({ page: String(current + 1) })}
              >
                Next →
              </button>
            </nav>
          )}
        </>
      )}
    </>
  );
}

/** One license's row; `customerNames` null: no customer column (a customer's own token). */
function KeyRow({
  license: l,
  productName,
  customerNames,
}: {
  license: License;
  productName: string;
  customerNames: Map<string, string> | null;
}) {
  return (
    <tr data-license-id={l.id}>
      <th scope="row" data-label="Key">
        <Link to={`/licenses/${l.id}`}>
          <code>{l.key}</code>
        </Link>
      </th>
      <td data-label="Product">{productName}</td>
      {customerNames && (
        <td data-label="Customer">
          <LicenseCustomer license={l} names={customerNames} />
        </td>
      )}
      <td data-label="Seats">
        <SeatBar used={l.seatsUsed} offline={l.seatsOffline} total={l.seats} />
      </td>
      <td data-label="Model">
        {l.model}
        {l.model === 'trial' && l.trialDays ? ` (${l.trialDays} d)` : ''}
      </td>
      <td data-label="Expires">{expiry(l)}</td>
      <td data-label="Lease TTL">{l.leaseTtlSeconds === null ? 'none' : fmtDuration(l.leaseTtlSeconds)}</td>
      <td data-label="Status">
        <StatusBadge license={l} />
      </td>
      <td data-label="Actions" className="row-actions">
        <CopyButton text={l.key} label="Copy key" ariaLabel={`Copy key ${l.key}`} />
      </td>
    </tr>
  );
}
