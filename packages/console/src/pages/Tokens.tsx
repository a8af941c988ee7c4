/** Admin tokens: create one with a role (its secret is shown once), list them, revoke one. Admin role only, like the API. */
import { useState } from 'react';
import { api, type AdminTokenInfo, type CreatedToken, type Role } from '../api';
import { fmtTime } from '../format';
import { Link } from '../router';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ConfirmDialog, CopyButton, ErrorBox, Field, Loading, PageTitle, TableHead, useConfirmedAction, useSubmit } from '../components/ui';

const ROLES: [Role, string][] = [
  ['viewer', 'viewer (reads, except tokens)'],
  ['operator', 'operator (also releases, reclaims)'],
  ['admin', 'admin (everything)'],
];

export function Tokens() {
  useTitle('Admin tokens');
  const isAdmin = useCan('admin');
  const { me } = useSession();
  const { data, error, reload } = useLoad(async () => {
    if (!isAdmin) return { tokens: [], customers: new Map<string, string>() };
    const [tokens, customers] = await Promise.all([api.tokens(), api.customers()]);
    return { tokens: tokens.items, customers: new Map(customers.items.map((c) => [c.id, c.name])) };
  }, [isAdmin]);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const revoke = useConfirmedAction((token: AdminTokenInfo) => api.revokeToken(token.id), reload);

  if (!isAdmin) {
    return (
      <>
        <PageTitle>Admin tokens</PageTitle>
        <p className="lead">Managing admin tokens needs the admin role; your token is {me.role}.</p>
      </>
    );
  }
  return (
    <>
      <PageTitle>Admin tokens</PageTitle>
      <p className="lead">Each person or script gets its own token with the least role it needs. A revoked token stops working at once.</p>
      <CreateToken
        customers={[...(data?.customers ?? new Map<string, string>())]}
        onCreated={(t) => {
          setCreated(t);
          reload();
        }}
      />
      {created && (
        <div className="alert alert-ok secret" role="status">
          <p>
            Token <strong>{created.name}</strong> ({created.role}) created. Copy its secret now: it is shown only this once.
          </p>
          <p className="secret-line">
            <code data-testid="new-token-secret">{created.token}</code> <CopyButton text={created.token} ariaLabel="Copy the new token" />
          </p>
          <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>
            I have kept it
          </button>
        </div>
      )}
      <ErrorBox error={error} title="The tokens could not be read" />
      {!data ? (
        !error && <Loading />
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Admin tokens</caption>
            <TableHead columns={['Name', 'Role', 'Customer', 'Created', 'Last used', 'State', 'Actions']} />
            <tbody>
              {data.tokens.map((t) => (
                <tr key={t.id} data-token-id={t.id}>
                  <th scope="row" data-label="Name">
                    {t.name}
                    <span className="sub">
                      <code>{t.id}</code>
                      {t.id === me.id ? ' · this session' : ''}
                    </span>
                  </th>
                  <td data-label="Role">
                    <span className={`badge ${t.role === 'admin' ? 'badge-warn' : 'badge-type'}`}>{t.role}</span>
                  </td>
                  <td data-label="Customer">
                    {t.customerId ? (
                      <Link to={`/customers/${t.customerId}`}>{data.customers.get(t.customerId) ?? t.customerId}</Link>
                    ) : (
                      <span className="muted">all (vendor)</span>
                    )}
                  </td>
                  <td data-label="Created">{fmtTime(t.createdAt)}</td>
                  <td data-label="Last used">{t.lastUsedAt ? fmtTime(t.lastUsedAt) : 'never'}</td>
                  <td data-label="State">{t.revokedAt ? `revoked ${fmtTime(t.revokedAt)}` : 'active'}</td>
                  <td data-label="Actions">
                    {!t.revokedAt && (
                      <button
                        type="button"
                        className="btn btn-small btn-danger"
                        aria-label={`Revoke token ${t.name}`}
                        onClick={() => revoke.ask(t)}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog {...revoke.dialog} title={`Revoke token ${revoke.target?.name ?? ''}?`} confirmLabel="Revoke token" danger>
        <p>
          Every request with this token is refused from now on{revoke.target?.id === me.id ? ', including this session' : ''}. The last
          active admin token cannot be revoked.
        </p>
        <ErrorBox error={revoke.error} />
      </ConfirmDialog>
    </>
  );
}

function CreateToken({ onCreated, customers }: { onCreated: (t: CreatedToken) => void; customers: [string, string][] }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [customerId, setCustomerId] = useState('');
  const { busy, error, submit } = useSubmit(
    () => api.createToken(name.trim(), role, customerId || undefined),
    (t) => {
      onCreated(t);
      setName('');
    },
  );
  return (
    <form className="card form-inline" onSubmit={(e) => void submit(e)} noValidate aria-label="Create an admin token">
      <Field label="Token name" hint="Who or what uses it, e.g. build server, Alice">
        {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} maxLength={100} autoComplete="off" />}
      </Field>
      <Field
        label="Role"
        hint="viewer: reads everything but tokens; operator: also releases seats and runs reclamation; admin: also licenses, products and tokens"
      >
        {(p) => (
          <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map(([r, label]) => (
              <option key={r} value={r}>
                {label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="For" hint="A customer's own administrator sees and manages only that customer's licenses">
        {(p) => (
          <select {...p} value={customerId} onChange={(e) => setCustomerId(e.target.value)}>
            <option value="">all customers (vendor)</option>
            {customers.map(([id, cname]) => (
              <option key={id} value={id}>
                {cname}
              </option>
            ))}
          </select>
        )}
      </Field>
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create token'}
      </button>
      <ErrorBox error={error} title="The token was not created" />
    </form>
  );
}
