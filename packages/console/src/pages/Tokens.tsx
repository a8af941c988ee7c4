/** Admin tokens: create one with a role (its secret is shown once), list them, revoke one. Admin role only, like the API. */
import { useState, type FormEvent } from 'react';
import { api, type AdminTokenInfo, type CreatedToken, type Role } from '../api';
import { fmtTime } from '../format';
import { useCan, useLoad, useSession, useTitle } from '../session';
import { ConfirmDialog, CopyButton, ErrorBox, Field, Loading, PageTitle, TableHead, useConfirmedAction } from '../components/ui';

const ROLES: [Role, string][] = [
  ['viewer', 'viewer (reads, except tokens)'],
  ['operator', 'operator (also releases, reclaims)'],
  ['admin', 'admin (everything)'],
];

export function Tokens() {
  useTitle('Admin tokens');
  const isAdmin = useCan('admin');
  const { me } = useSession();
  const { data, error, reload } = useLoad(async () => (isAdmin ? (await api.tokens()).items : []), [isAdmin]);
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
            <TableHead columns={['Name', 'Role', 'Created', 'Last used', 'State', 'Actions']} />
            <tbody>
              {data.map((t) => (
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

function CreateToken({ onCreated }: { onCreated: (t: CreatedToken) => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(await api.createToken(name.trim(), role));
      setName('');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
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
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create token'}
      </button>
      <ErrorBox error={error} title="The token was not created" />
    </form>
  );
}
