/** Groups of users and hosts, which license access policies name as group:<name>. Everyone reads; admins change. */
import { useState, type FormEvent } from 'react';
import { api, type Group } from '../api';
import { fmtTime, vis } from '../format';
import { useCan, useLoad, useTitle } from '../session';
import { ConfirmDialog, ErrorBox, Field, Loading, PageTitle, TableHead, useConfirmedAction } from '../components/ui';

const entries = (t: string) =>
  t
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

export function Groups() {
  useTitle('Groups');
  const isAdmin = useCan('admin');
  const { data, error, reload } = useLoad(async () => (await api.groups()).items, []);
  const remove = useConfirmedAction((g: Group) => api.deleteGroup(g.name), reload);
  return (
    <>
      <PageTitle>Groups</PageTitle>
      <p className="lead">
        Named sets of users and hosts. A license&apos;s access policy names them as <code>group:name</code> to allow, deny, limit or reserve
        seats for them. A change applies from the next checkout.
      </p>
      {isAdmin && <GroupForm onSaved={reload} />}
      <ErrorBox error={error} title="The groups could not be read" />
      {!data ? (
        !error && <Loading />
      ) : data.length === 0 ? (
        <p className="empty-inline">No group yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Groups</caption>
            <TableHead columns={['Group', 'Users', 'Hosts', 'Updated', isAdmin && { label: 'Actions', hidden: true }]} />
            <tbody>
              {data.map((g) => (
                <tr key={g.name} data-group={g.name}>
                  <th scope="row" data-label="Group">
                    <code>group:{g.name}</code>
                  </th>
                  <td data-label="Users">{g.users.map(vis).join(', ') || '—'}</td>
                  <td data-label="Hosts">{g.hosts.map(vis).join(', ') || '—'}</td>
                  <td data-label="Updated">{fmtTime(g.updatedAt)}</td>
                  {isAdmin && (
                    <td data-label="Actions" className="row-actions">
                      <button type="button" className="btn btn-small btn-danger-outline" onClick={() => remove.ask(g)}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog {...remove.dialog} title={`Delete group ${remove.target?.name ?? ''}?`} confirmLabel="Delete group" danger>
        <p>Access policies that name it then match no one through it.</p>
        <ErrorBox error={remove.error} />
      </ConfirmDialog>
    </>
  );
}

function GroupForm({ onSaved }: { onSaved: () => void }) {
  const [name, setName] = useState('');
  const [users, setUsers] = useState('');
  const [hosts, setHosts] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const g = await api.putGroup(name.trim(), entries(users), entries(hosts));
      setDone(`Group ${g.name} saved: ${g.users.length} user(s), ${g.hosts.length} host(s).`);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-label="Create or replace a group">
      <ErrorBox error={error} title="The group was not saved" />
      {done && (
        <p className="alert alert-ok" role="status">
          {done}
        </p>
      )}
      <div className="grid">
        <Field label="Group name" hint="Letters, digits, . _ - (a group with this name is replaced).">
          {(p) => <input {...p} name="groupName" value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Users" hint="One a line, or comma separated.">
          {(p) => <textarea {...p} name="groupUsers" rows={3} value={users} onChange={(e) => setUsers(e.target.value)} />}
        </Field>
        <Field label="Hosts" hint="One a line, or comma separated.">
          {(p) => <textarea {...p} name="groupHosts" rows={3} value={hosts} onChange={(e) => setHosts(e.target.value)} />}
        </Field>
      </div>
      <div className="actions">
        <button type="submit" className="btn btn-primary">
          Save group
        </button>
      </div>
    </form>
  );
}
