/**
 * Customers: the organisations licenses belong to. A list with search (name, license key, a device's host or
 * user name) and a form for a new one; a customer's page with its contact, licenses, seats in use, next expiry
 * and 30 days of usage, where an admin edits or deletes it. A customer's own token sees its own page only.
 */
import { useState } from 'react';
import { api, ApiError, DEFAULT_CUSTOMER, type Customer, type CustomerDetail } from '../api';
import { fmtDate, fmtTime, plural, vis } from '../format';
import { Link, navigate } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import {
  ConfirmDialog,
  EmptyState,
  ErrorBox,
  Field,
  Loading,
  PageTitle,
  SeatBar,
  TableHead,
  useConfirmedAction,
  useSubmit,
} from '../components/ui';

export function Customers() {
  useTitle('Customers');
  const isAdmin = useCan('admin');
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const { data, error, reload } = useLoad(async () => {
    const [customers, licenses] = await Promise.all([api.customers(search || undefined), api.licenses()]);
    // Each customer's licenses and seats, from the license list (the customer list carries the records only).
    const held = new Map<string, { licenses: number; seats: number; used: number }>();
    for (const l of licenses.items) {
      const h = held.get(l.customerId) ?? { licenses: 0, seats: 0, used: 0 };
      held.set(l.customerId, { licenses: h.licenses + 1, seats: h.seats + l.seats, used: h.used + l.seatsUsed });
    }
    // The answer carries the search it answers: while the next one loads, the list still says what it shows.
    return { ...customers, held, search };
  }, [search]);
  return (
    <>
      <PageTitle
        actions={
          isAdmin && (
            <button type="button" className="btn btn-primary" aria-expanded={creating} onClick={() => setCreating((x) => !x)}>
              New customer
            </button>
          )
        }
      >
        Customers
      </PageTitle>
      <p className="lead">
        Every license belongs to a customer. Licenses created without one belong to the built-in customer (“Unassigned” unless renamed).
      </p>
      {isAdmin && creating && <CreateCustomer onCreated={(c) => (reload(), navigate(`/customers/${c.id}`))} />}
      <form
        className="card form-inline"
        role="search"
        aria-label="Search customers"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
        }}
      >
        <Field label="Search" hint="A name or part of it, a license key, or a device's host or user name">
          {(p) => <input {...p} type="search" value={q} onChange={(e) => setQ(e.target.value)} maxLength={200} />}
        </Field>
        <button type="submit" className="btn">
          Search
        </button>
        {search && (
          <button
            type="button"
            className="btn"
            onClick={() => {
              setQ('');
              setSearch('');
            }}
          >
            Show all
          </button>
        )}
      </form>
      <ErrorBox error={error} title="The customers could not be read" />
      {!data ? (
        !error && <Loading />
      ) : data.items.length === 0 ? (
        <EmptyState title={data.search ? 'No customer matches' : 'No customers'}>
          <p>
            {data.search
              ? `No customer's name, license key, device host or user matches “${data.search}”.`
              : 'An administrator creates them.'}
          </p>
        </EmptyState>
      ) : (
        <>
          <p className="muted small" role="status" aria-live="polite">
            {data.search ? `${plural(data.items.length, 'customer')} match “${data.search}”` : plural(data.items.length, 'customer')}
            {data.truncated && ' (only the first 10,000 are shown)'}
          </p>
          <div className="table-wrap">
            <table className="table table-cards">
              <caption className="sr-only">Customers</caption>
              <TableHead columns={['Name', 'Contact', 'Licenses', 'Seats in use', 'Created']} />
              <tbody>
                {data.items.map((c) => (
                  <tr key={c.id} data-customer-id={c.id}>
                    <th scope="row" data-label="Name">
                      <Link to={`/customers/${c.id}`}>{c.name}</Link>
                      <span className="sub">
                        <code>{c.id}</code>
                        {c.id === DEFAULT_CUSTOMER && ' · built-in'}
                      </span>
                    </th>
                    <td data-label="Contact">{contactLine(c) || <span className="muted">—</span>}</td>
                    <td data-label="Licenses">{data.held.get(c.id)?.licenses ?? 0}</td>
                    <td data-label="Seats in use">
                      {data.held.get(c.id)?.used ?? 0} / {data.held.get(c.id)?.seats ?? 0}
                    </td>
                    <td data-label="Created">{fmtTime(c.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

const contactLine = (c: Customer): string => [c.contact.name, c.contact.email, c.contact.phone].filter(Boolean).join(' · ');

/** The contact fields of the forms: what was typed, trimmed, empty ones left out. */
type ContactInput = { name: string; email: string; phone: string };
function contactOf(input: ContactInput): Customer['contact'] {
  const contact: Customer['contact'] = {};
  if (input.name.trim()) contact.name = input.name.trim();
  if (input.email.trim()) contact.email = input.email.trim();
  if (input.phone.trim()) contact.phone = input.phone.trim();
  return contact;
}

/** The field a validation answer names (`body/contact/email` → `contact/email`), to show its message beside that input. */
function badField(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  const f = error.details.field;
  return typeof f === 'string' ? f.replace(/^body\/?/, '') : null;
}

/** Name, contact person, email and phone, with the server's message beside the field it refused. */
function CustomerFields({
  name,
  setName,
  contact,
  setContact,
  error,
  nameLabel,
}: {
  name: string;
  setName: (v: string) => void;
  contact: ContactInput;
  setContact: (c: ContactInput) => void;
  error: unknown;
  nameLabel: string;
}) {
  const bad = badField(error);
  const msg = (field: string) => (bad === field && error instanceof ApiError ? `${error.message} (${error.code})` : null);
  return (
    <>
      <Field label={nameLabel} error={msg('name')}>
        {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={200} autoComplete="off" />}
      </Field>
      <Field label="Contact person" hint="Optional" error={msg('contact/name')}>
        {(p) => <input {...p} value={contact.name} onChange={(e) => setContact({ ...contact, name: e.target.value })} maxLength={200} />}
      </Field>
      <Field label="Contact email" hint="Optional" error={msg('contact/email')}>
        {(p) => (
          <input
            {...p}
            type="email"
            value={contact.email}
            onChange={(e) => setContact({ ...contact, email: e.target.value })}
            maxLength={254}
          />
        )}
      </Field>
      <Field label="Contact phone" hint="Optional" error={msg('contact/phone')}>
        {(p) => (
          <input
            {...p}
            type="tel"
            value={contact.phone}
            onChange={(e) => setContact({ ...contact, phone: e.target.value })}
            maxLength={40}
          />
        )}
      </Field>
    </>
  );
}

const NO_CONTACT: ContactInput = { name: '', email: '', phone: '' };

function CreateCustomer({ onCreated }: { onCreated: (c: Customer) => void }) {
  const [name, setName] = useState('');
  const [contact, setContact] = useState<ContactInput>(NO_CONTACT);
  const { busy, error, submit } = useSubmit(
    () => {
      const c = contactOf(contact);
      return api.createCustomer({ name: name.trim(), ...(Object.keys(c).length > 0 ? { contact: c } : {}) });
    },
    (c) => {
      onCreated(c);
      setName('');
      setContact(NO_CONTACT);
    },
  );
  return (
    <form className="card form-inline" onSubmit={(e) => void submit(e)} noValidate aria-label="New customer">
      <CustomerFields name={name} setName={setName} contact={contact} setContact={setContact} error={error} nameLabel="Customer name" />
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create customer'}
      </button>
      <ErrorBox error={badField(error) ? null : error} title="The customer was not created" />
    </form>
  );
}

/** A refused deletion in words an administrator can act on (the code and request id stay visible). */
function deleteRefusal(e: unknown, name: string): unknown {
  if (!(e instanceof ApiError)) return e;
  const say = (message: string) => new ApiError(e.status, e.code, message, e.requestId, e.details);
  if (e.code === 'CUSTOMER_HAS_LICENSES') {
    const n = typeof e.details.licenses === 'number' ? e.details.licenses : null;
    return say(
      `${name} still owns ${n === null ? 'licenses' : plural(n, 'license')}. Move ${n === 1 ? 'it' : 'them'} to another customer (Edit policy, Customer) or delete ${n === 1 ? 'it' : 'them'} first.`,
    );
  }
  if (e.code === 'DEFAULT_CUSTOMER')
    return say('The built-in customer holds the licenses created without one: it can be renamed, not deleted.');
  return e;
}

export function CustomerPage({ customerId }: { customerId: string }) {
  const { me } = useSession();
  const isAdmin = useCan('admin');
  const own = me.customerId === customerId;
  const { data, error, reload } = useLoad(() => api.customer(customerId), [customerId]);
  useTitle(data?.customer.name ?? 'Customer');
  const [editing, setEditing] = useState(false);
  const remove = useConfirmedAction(
    (id: string) => api.deleteCustomer(id).catch((e: unknown) => Promise.reject(deleteRefusal(e, data?.customer.name ?? id))),
    () => navigate('/customers'),
  );
  if (!data) {
    if (error instanceof ApiError && error.status === 404)
      return (
        <>
          <PageTitle>Customer not found</PageTitle>
          <p>
            No customer has the id <code>{customerId}</code>. <Link to={me.customerId ? '/' : '/customers'}>Back</Link>
          </p>
        </>
      );
    return error ? <ErrorBox error={error} title="The customer could not be read" /> : <Loading />;
  }
  const c = data.customer;
  const metadata = Object.keys(c.metadata).length > 0 ? vis(JSON.stringify(c.metadata)) : null;
  return (
    <>
      {!me.customerId && (
        <p className="crumbs">
          <Link to="/customers">Customers</Link> / {c.id === DEFAULT_CUSTOMER ? 'built-in' : c.id}
        </p>
      )}
      <PageTitle
        actions={
          isAdmin && (
            <>
              <Link to={`/licenses/new?customerId=${encodeURIComponent(c.id)}`} className="btn btn-primary">
                New license
              </Link>
              <button type="button" className="btn" aria-expanded={editing} onClick={() => setEditing((x) => !x)}>
                Edit
              </button>
              {c.id !== DEFAULT_CUSTOMER && (
                <button type="button" className="btn btn-danger-outline" onClick={() => remove.ask(c.id)}>
                  Delete
                </button>
              )}
            </>
          )
        }
      >
        {c.name}
      </PageTitle>
      {own && <p className="lead">Your organisation's licenses, its seats in use and its last 30 days.</p>}
      {editing && (
        <EditCustomer
          customer={c}
          onSaved={() => {
            setEditing(false);
            reload();
          }}
        />
      )}
      <ErrorBox error={error} title="Refresh failed; showing the last data" />
      <section className="stats" aria-label="Totals">
        <Stat label="Licenses" value={String(data.licenses.length)} />
        <Stat label="Seats in use" value={`${data.seatsUsed} / ${data.seats}`} testId="customer-seats" />
        <Stat label="Peak seats, 30 days" value={String(data.usage.peakSeats)} testId="customer-peak" />
        <Stat
          label="Denials, 30 days"
          value={String(data.usage.denials)}
          tone={data.usage.denials > 0 ? 'bad' : undefined}
          testId="customer-denials"
        />
      </section>
      <section className="card" aria-labelledby="cust-h">
        <h2 id="cust-h">Customer</h2>
        <dl className="dl">
          <dt>Id</dt>
          <dd>
            <code>{c.id}</code>
            {c.id === DEFAULT_CUSTOMER && <span className="muted"> (built-in: licenses created without a customer)</span>}
          </dd>
          <dt>Contact</dt>
          <dd data-testid="customer-contact">
            {contactLine(c) ? (
              <>
                {c.contact.name && <span>{c.contact.name}</span>}
                {c.contact.email && (
                  <>
                    {c.contact.name && ' · '}
                    <a href={`mailto:${c.contact.email}`}>{c.contact.email}</a>
                  </>
                )}
                {c.contact.phone && (
                  <>
                    {(c.contact.name || c.contact.email) && ' · '}
                    <a href={`tel:${c.contact.phone.replace(/[^0-9+]/g, '')}`}>{c.contact.phone}</a>
                  </>
                )}
              </>
            ) : (
              <span className="muted">none</span>
            )}
          </dd>
          <dt>Seats in use</dt>
          <dd>
            {data.seatsUsed} of {data.seats}, across {plural(data.licenses.length, 'license')}
          </dd>
          <dt>Next expiry</dt>
          <dd data-testid="customer-next-expiry">
            {data.nextExpiry ? (
              <>
                {fmtTime(data.nextExpiry.at)} (
                <Link to={`/licenses/${data.nextExpiry.licenseId}`}>{keyOf(data, data.nextExpiry.licenseId)}</Link>)
              </>
            ) : (
              'none: no license of this customer has an end date ahead'
            )}
          </dd>
          <dt>Last 30 days</dt>
          <dd data-testid="customer-usage">
            peak {plural(data.usage.peakSeats, 'seat')}, {plural(data.usage.checkouts, 'checkout')}, {plural(data.usage.denials, 'denial')}{' '}
            <span className="muted small">
              ({fmtDate(new Date(data.usage.from))} to {fmtDate(new Date(data.usage.to))})
            </span>
          </dd>
          {metadata && (
            <>
              <dt>Metadata</dt>
              <dd>
                <code style={{ overflowWrap: 'anywhere' }}>{metadata}</code>
              </dd>
            </>
          )}
          <dt>Created</dt>
          <dd>{fmtTime(c.createdAt)}</dd>
        </dl>
      </section>
      <section aria-labelledby="cust-lic-h">
        <h2 id="cust-lic-h">Licenses</h2>
        {data.licenses.length === 0 ? (
          <p className="empty-inline">No license belongs to this customer yet.</p>
        ) : (
          <div className="table-wrap">
            <table className="table table-cards">
              <caption className="sr-only">Licenses of {c.name}</caption>
              <TableHead columns={['Key', 'Product', 'Model', 'Seats used / total', 'Expires', 'State']} />
              <tbody>
                {data.licenses.map((l) => (
                  <tr key={l.id} data-license-id={l.id}>
                    <th scope="row" data-label="Key">
                      <Link to={`/licenses/${l.id}`}>
                        <code>{l.key}</code>
                      </Link>
                    </th>
                    <td data-label="Product">{l.productName ?? l.productId}</td>
                    <td data-label="Model">{l.model}</td>
                    <td data-label="Seats used / total">
                      <SeatBar used={l.seatsUsed} offline={l.seatsOffline} total={l.seats} />
                    </td>
                    <td data-label="Expires">
                      {l.expiresAt ? fmtDate(new Date(l.expiresAt)) : l.model === 'trial' ? 'after its trial' : 'never'}
                    </td>
                    <td data-label="State">
                      <LicenseState license={l} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <ConfirmDialog {...remove.dialog} title={`Delete customer ${c.name}?`} confirmLabel="Delete customer" danger>
        <p>
          The customer record goes, and its administrators' tokens are revoked with it. A customer that still owns licenses cannot be
          deleted: move them to another customer first.
        </p>
        <ErrorBox error={remove.error} title="The customer was not deleted" />
      </ConfirmDialog>
    </>
  );
}

const keyOf = (d: CustomerDetail, licenseId: string): string => d.licenses.find((l) => l.id === licenseId)?.key ?? 'license';

function LicenseState({ license: l }: { license: CustomerDetail['licenses'][number] }) {
  if (l.suspended) return <span className="badge badge-bad">Suspended</span>;
  if (l.expiresAt && Date.parse(l.expiresAt) <= Date.now()) return <span className="badge badge-bad">Expired</span>;
  if (l.seatsUsed >= l.seats) return <span className="badge badge-warn">Full</span>;
  return <span className="badge badge-ok">Active</span>;
}

function Stat({ label, value, tone, testId }: { label: string; value: string; tone?: 'bad'; testId?: string }) {
  return (
    <div className={`stat${tone ? ` stat-${tone}` : ''}`} data-testid={testId}>
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
    </div>
  );
}

function EditCustomer({ customer, onSaved }: { customer: Customer; onSaved: () => void }) {
  const [name, setName] = useState(customer.name);
  const [contact, setContact] = useState<ContactInput>({
    name: customer.contact.name ?? '',
    email: customer.contact.email ?? '',
    phone: customer.contact.phone ?? '',
  });
  const { busy, error, submit } = useSubmit(
    () => api.updateCustomer(customer.id, { name: name.trim(), contact: contactOf(contact) }),
    onSaved,
  );
  return (
    <form className="card form-inline" onSubmit={(e) => void submit(e)} noValidate aria-label="Edit customer">
      <CustomerFields name={name} setName={setName} contact={contact} setContact={setContact} error={error} nameLabel="Name" />
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Saving…' : 'Save'}
      </button>
      <ErrorBox error={badField(error) ? null : error} title="The customer was not saved" />
    </form>
  );
}
