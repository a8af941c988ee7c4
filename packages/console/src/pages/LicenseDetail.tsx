import { Fragment, useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, type Device, type Lease, type License } from '../api';
import { fmtDuration, fmtRelative, fmtTime, plural, vis } from '../format';
import { takeFlash } from '../flash';
import { Link, navigate } from '../router';
import { setFlash as setNextFlash } from '../flash';
import { useCan, useLiveRefetch, useLoad, useSession, useTitle } from '../session';
import { ConfirmDialog, CopyButton, ErrorBox, Loading, PageTitle, SeatBar, StatusBadge, TableHead } from '../components/ui';

export function LicenseDetail({ licenseId }: { licenseId: string }) {
  const isAdmin = useCan('admin');
  const isOperator = useCan('operator');
  // On-premise the license file owns the catalogue: the server refuses policy edits and deletion (ENTITLEMENT_MANAGED).
  const { onPrem } = useSession();
  const canCatalogue = isAdmin && !onPrem;
  const [flash, setFlash] = useState<string | null>(() => takeFlash());
  const { data, error, reload, setData } = useLoad(async () => {
    const license = await api.license(licenseId);
    const [leases, devices, product, customer] = await Promise.all([
      api.leases(licenseId),
      api.devices(licenseId),
      api.product(license.productId).catch(() => null),
      api.customer(license.customerId).catch(() => null),
    ]);
    // A customer's token may not read the catalogue: its customer page names the product of each of its licenses.
    const productName = product?.name ?? customer?.licenses.find((x) => x.id === licenseId)?.productName ?? license.productId;
    const customerName = customer?.customer.name ?? license.customerId;
    return { license, leases: leases.items, devices: devices.items, productName, customerName, at: Date.now() };
  }, [licenseId]);
  useLiveRefetch(reload, (e) => e.licenseId === licenseId);
  // Heartbeats send no live event (they change no seat), so last-accessed and expiry times are refreshed by a slow poll.
  useEffect(() => {
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, 30_000);
    return () => clearInterval(t);
  }, [reload]);
  useTitle(data ? `License ${data.license.key}` : 'License');

  const [suspendOpen, setSuspendOpen] = useState(false);
  const [deleteOpen, setDeleteOpen] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  if (!data) {
    if (error instanceof ApiError && error.status === 404)
      return (
        <>
          <PageTitle>License not found</PageTitle>
          <p>
            No license has the id <code>{licenseId}</code>. <Link to="/licenses">Back to the licenses</Link>
          </p>
        </>
      );
    return error ? <ErrorBox error={error} /> : <Loading />;
  }
  const l = data.license;

  const setSuspended = async (suspend: boolean) => {
    setBusy(true);
    setActionError(null);
    try {
      const updated = suspend ? await api.suspend(l.id) : await api.resume(l.id);
      setData({ ...data, license: updated });
      setFlash(suspend ? 'License suspended: checkouts and heartbeats are refused until you resume it.' : 'License resumed.');
      setSuspendOpen(false);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  };

  const deleteLicense = async (force: boolean) => {
    setBusy(true);
    setDeleteError(null);
    try {
      const r = await api.deleteLicense(l.id, force);
      setNextFlash(`License ${l.key} deleted${r.released ? `; ${plural(r.released, 'held seat')} released` : ''}.`);
      navigate('/licenses');
    } catch (e) {
      setDeleteError(e);
      setBusy(false);
    }
  };
  const seatsHeld = deleteError instanceof ApiError && deleteError.code === 'SEATS_HELD';

  return (
    <>
      <p className="crumbs">
        <Link to="/licenses">Licenses</Link> / {data.productName}
      </p>
      <PageTitle
        actions={
          <>
            <CopyButton text={l.key} label="Copy key" className="btn" />
            {canCatalogue && (
              <Link to={`/licenses/${l.id}/edit`} className="btn">
                Edit policy
              </Link>
            )}
            {isAdmin &&
              (l.suspended ? (
                <button type="button" className="btn" onClick={() => void setSuspended(false)} disabled={busy}>
                  Resume
                </button>
              ) : (
                <button type="button" className="btn btn-danger-outline" onClick={() => setSuspendOpen(true)}>
                  Suspend
                </button>
              ))}
            {canCatalogue && (
              <button
                type="button"
                className="btn btn-danger-outline"
                onClick={() => {
                  setDeleteError(null);
                  setDeleteOpen(true);
                }}
              >
                Delete
              </button>
            )}
          </>
        }
      >
        <span className="sr-only">License </span>
        <code className="key-title">{l.key}</code> <StatusBadge license={l} />
      </PageTitle>
      {flash && (
        <p className="alert alert-ok" role="status">
          {flash}{' '}
          <button type="button" className="btn-link" onClick={() => setFlash(null)}>
            Dismiss
          </button>
        </p>
      )}
      {!suspendOpen && <ErrorBox error={actionError} />}
      <ErrorBox error={error} title="Refresh failed; showing the last data" />

      <section className="card" aria-labelledby="policy-h">
        <h2 id="policy-h">Policy</h2>
        <PolicyList license={l} productName={data.productName} customerName={data.customerName} />
        <p className="links">
          <Link to={`/usage?licenseId=${l.id}`}>Usage over time</Link> ·{' '}
          <Link to={`/audit?licenseId=${l.id}`}>Audit log of this license</Link>
        </p>
      </section>

      <Seats license={l} leases={data.leases} canRelease={isOperator} onChanged={reload} />
      <DevicesSeen devices={data.devices} />

      <ConfirmDialog
        open={suspendOpen}
        title="Suspend this license?"
        confirmLabel="Suspend license"
        danger
        busy={busy}
        onCancel={() => {
          setSuspendOpen(false);
          setActionError(null);
        }}
        onConfirm={() => void setSuspended(true)}
      >
        <p>
          Checkouts and heartbeats on <code>{l.key}</code> are refused with <code>LICENSE_SUSPENDED</code> until you resume it. Seats
          already held are not released, and check-ins still work.
        </p>
        <ErrorBox error={actionError} />
      </ConfirmDialog>
      <ConfirmDialog
        open={deleteOpen}
        title={seatsHeld ? 'Seats are still held: release them and delete?' : 'Delete this license?'}
        confirmLabel={seatsHeld ? 'Release seats and delete' : 'Delete license'}
        danger
        busy={busy}
        onCancel={() => {
          setDeleteOpen(false);
          setDeleteError(null);
        }}
        onConfirm={() => void deleteLicense(seatsHeld)}
      >
        <p>
          <code>{l.key}</code> is removed for good: applications using it can no longer check out a seat. Its audit history stays.
        </p>
        {seatsHeld && (
          <p>
            {plural(l.seatsUsed, 'seat is', 'seats are')} held right now. Deleting releases them: their users lose the license at their next
            heartbeat.
          </p>
        )}
        <ErrorBox error={deleteError} />
      </ConfirmDialog>
    </>
  );
}

/** A sharing rule in words: `Per device`, `By user and host, at most 3 uses a seat`. */
export function describeSharing(rule: License['sharing']): string {
  const cap = rule.cap === null ? '' : `, at most ${plural(rule.cap, 'use')} a seat`;
  if (rule.by[0] === 'instance') return 'Per instance';
  if (rule.by[0] === 'site') return `Site (every use shares one seat)${cap}`;
  if (rule.by.length === 1 && rule.by[0] === 'device') return `Per device${cap}`;
  return `By ${rule.by.join(' and ')}${cap}`;
}

/** `user=alice&host=ws%201` → `user alice, host ws 1` (the values were URL-encoded by the server). */
function decodeGroup(group: string): string {
  return group
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      try {
        return `${part.slice(0, eq)} ${decodeURIComponent(part.slice(eq + 1))}`;
      } catch {
        return part;
      }
    })
    .join(', ');
}

function PolicyList({ license: l, productName, customerName }: { license: License; productName: string; customerName: string }) {
  const rows: [string, ReactNode][] = [
    [
      'Customer',
      <Link key="c" to={`/customers/${l.customerId}`} data-testid="license-customer">
        {customerName}
      </Link>,
    ],
    ['Product', productName],
    ['Seats in use', <SeatBar key="s" used={l.seatsUsed} offline={l.seatsOffline} total={l.seats} />],
    ...l.features.map((f): [string, ReactNode] => [
      `Feature ${f.name}${f.counting === 'instance' ? ' (per instance)' : ''}${f.leaseTtlSeconds !== undefined ? `, lease TTL ${fmtDuration(f.leaseTtlSeconds)}` : ''}`,
      <span key={f.name} data-feature={f.name}>
        <SeatBar used={l.featureSeatsUsed[f.name] ?? 0} offline={0} total={f.seats} />
      </span>,
    ]),
    ...(l.waiting > 0
      ? ([['Waiting', <span key="w" data-waiting-count="">{`${plural(l.waiting, 'checkout')} in the queue`}</span>]] as [
          string,
          ReactNode,
        ][])
      : []),
    ['Sharing', describeSharing(l.sharing)],
    ['Max instances per device', String(l.maxInstancesPerDevice)],
    [
      'Clone policy',
      l.clonePolicy === 'separate' ? 'Separate seat per machine' : l.clonePolicy === 'refuse' ? 'Clones refused' : 'Clones may share',
    ],
    ['VM policy', l.vmPolicy === 'allow' ? 'Allowed' : l.vmPolicy === 'deny' ? 'Denied' : 'A seat per VM or container use'],
    ['Linger', l.lingerSeconds > 0 ? fmtDuration(l.lingerSeconds) : 'None'],
    ['Overdraft', l.overdraftSeats > 0 ? `${plural(l.overdraftSeats, 'seat')} beyond the count` : 'None'],
    ['Who may check out', l.access.allow === null ? 'Everyone' : `Only ${l.access.allow.map(vis).join(', ')}`],
    ...(l.access.deny.length ? ([['Denied', l.access.deny.map(vis).join(', ')]] as [string, ReactNode][]) : []),
    ...(l.access.limits.length
      ? ([['Most seats at once', l.access.limits.map((x) => `${vis(x.principal)}: ${x.max}`).join(', ')]] as [string, ReactNode][])
      : []),
    ...(l.access.reservations.length
      ? ([['Reserved seats', l.access.reservations.map((x) => `${vis(x.principal)}: ${x.seats}`).join(', ')]] as [string, ReactNode][])
      : []),
    [
      'Model',
      l.model === 'subscription'
        ? `Subscription, ends ${fmtTime(l.expiresAt)}`
        : l.model === 'trial'
          ? `Trial, ${plural(l.trialDays ?? 0, 'day')}${l.trialStartedAt ? `, started ${fmtTime(l.trialStartedAt)}` : ', not started yet'}`
          : 'Permanent',
    ],
    ['Lease TTL', l.leaseTtlSeconds === null ? 'None (held until check-in or release)' : fmtDuration(l.leaseTtlSeconds)],
    ['Heartbeat interval', fmtDuration(l.heartbeatIntervalSeconds)],
    ['Offline checkout', l.maxOfflineSeconds > 0 ? `Up to ${fmtDuration(l.maxOfflineSeconds)}` : 'Not allowed'],
    ['Max seats offline', l.maxOfflineSeats === null ? 'No cap' : String(l.maxOfflineSeats)],
    ['License id', <code key="id">{l.id}</code>],
    ['Created', fmtTime(l.createdAt)],
  ];
  if (Object.keys(l.metadata).length > 0) rows.push(['Metadata', <code key="m">{vis(JSON.stringify(l.metadata))}</code>]);
  return (
    <dl className="dl">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

type ReleaseState = { lease: Lease; stage: 'confirm' | 'offline'; error: unknown; offlineExpiresAt: string | null };

function Seats({
  license,
  leases,
  canRelease,
  onChanged,
}: {
  license: License;
  leases: Lease[];
  canRelease: boolean;
  onChanged: () => void;
}) {
  const [release, setRelease] = useState<ReleaseState | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);
  useEffect(() => setNow(Date.now()), [leases]);

  const who = (x: Lease) => vis(x.hostname ?? x.fingerprint.slice(0, 12));
  const doRelease = async (force: boolean) => {
    if (!release) return;
    setBusy(true);
    try {
      const r = await api.release(release.lease.id, force);
      setDone(`Seat released from ${who(release.lease)}${r.offlineOverridden ? ' (its offline checkout was overridden)' : ''}.`);
      setRelease(null);
      onChanged();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'OFFLINE_LEASE_ACTIVE') {
        const oed = typeof e.details.offlineExpiresAt === 'string' ? e.details.offlineExpiresAt : release.lease.offlineExpiresAt;
        setRelease({ ...release, stage: 'offline', error: e, offlineExpiresAt: oed });
      } else if (e instanceof ApiError && e.code === 'LEASE_NOT_FOUND') {
        setDone(`That seat was already free (${e.code}).`);
        setRelease(null);
        onChanged();
      } else setRelease({ ...release, error: e });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="seats-h">
      <h2 id="seats-h">
        Devices holding seats <span className="count">{leases.length}</span>
      </h2>
      {done && (
        <p className="alert alert-ok" role="status">
          {done}
        </p>
      )}
      {leases.length === 0 ? (
        <p className="empty-inline">
          No seat is held. When an application checks out with this key, its device shows here at once.
          {license.suspended && ' The license is suspended, so checkouts are refused.'}
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Devices holding seats on this license</caption>
            <TableHead
              columns={[
                'Hostname',
                'User',
                { label: 'Instances', numeric: true },
                'Checked out at',
                'Last accessed',
                'Lease expiry',
                'Offline expiry',
                canRelease && { label: 'Actions', hidden: true },
              ]}
            />
            <tbody>
              {[...leases]
                .sort((a, b) => (a.shareGroup < b.shareGroup ? -1 : a.shareGroup > b.shareGroup ? 1 : 0))
                .map((x) => {
                  const expired = x.expiresAt !== null && Date.parse(x.expiresAt) <= now;
                  const offlineActive = x.offline && x.offlineExpiresAt !== null && Date.parse(x.offlineExpiresAt) > now;
                  return (
                    <Fragment key={x.id}>
                      <tr data-lease-id={x.id} data-share-group={x.shareGroup}>
                        <th scope="row" data-label="Hostname">
                          {x.hostname !== null ? vis(x.hostname) : <span className="muted">unknown</span>}
                          {x.overdraft && <span className="badge badge-warn">overdraft</span>}
                          {!(x.features.length === 1 && x.features[0] === 'base') && (
                            <span className="badge" data-pools={x.features.join('+')}>
                              {x.features.join(' + ')}
                            </span>
                          )}
                          {x.lingerUntil && <span className="badge">lingers until {fmtTime(x.lingerUntil)}</span>}
                          <span className="sub" title={`device ${x.deviceId}, fingerprint ${x.fingerprint}`}>
                            <code>{x.fingerprint.slice(0, 16)}</code>
                            {x.appVersion && ` · v${vis(x.appVersion)}`}
                            {' · '}
                            <span className="share-group">{vis(decodeGroup(x.shareGroup))}</span>
                          </span>
                        </th>
                        <td data-label="User">{x.user !== null ? vis(x.user) : <span className="muted">—</span>}</td>
                        <td data-label="Instances" className="num">
                          {x.instanceCount}
                        </td>
                        <td data-label="Checked out at">{fmtTime(x.grantedAt)}</td>
                        <td data-label="Last accessed">
                          {fmtTime(x.lastAccessedAt)}
                          <span className="sub">{fmtRelative(x.lastAccessedAt, now)}</span>
                        </td>
                        <td data-label="Lease expiry">
                          {x.expiresAt === null ? 'none (no TTL)' : fmtTime(x.expiresAt)}
                          {expired ? (
                            <span className="sub text-bad">expired — freed by the next reclamation</span>
                          ) : (
                            x.expiresAt && <span className="sub">{fmtRelative(x.expiresAt, now)}</span>
                          )}
                        </td>
                        <td data-label="Offline expiry">
                          {x.offline ? (
                            <>
                              <span className="badge badge-warn">offline</span> {fmtTime(x.offlineExpiresAt)}
                              {offlineActive && <span className="sub">{fmtRelative(x.offlineExpiresAt, now)}</span>}
                            </>
                          ) : (
                            <span className="muted">online</span>
                          )}
                        </td>
                        {canRelease && (
                          <td data-label="Actions" className="row-actions">
                            <button
                              type="button"
                              className="btn btn-small btn-danger-outline"
                              aria-label={`Release the seat held by ${who(x)}`}
                              onClick={() => {
                                setDone(null);
                                setRelease({ lease: x, stage: 'confirm', error: null, offlineExpiresAt: x.offlineExpiresAt });
                              }}
                            >
                              Release
                            </button>
                          </td>
                        )}
                      </tr>
                      {x.instances.length > 1 &&
                        x.instances.map((u) => (
                          <tr key={`${x.id}/${u.instanceId}`} className="use-row" data-use-of={x.id}>
                            <td data-label="Use" colSpan={canRelease ? 8 : 7}>
                              <span className="muted">↳ use</span> <code>{vis(u.instanceId)}</code>
                              {' on '}
                              {u.meta.hostname !== null ? vis(u.meta.hostname) : <span className="muted">unknown host</span>}
                              {u.meta.user !== null && ` (${vis(u.meta.user)})`}
                              {u.meta.vm && <span className="badge">VM</span>}
                              {u.meta.container && <span className="badge">container</span>}
                              <span className="sub">since {fmtTime(u.startedAt)}</span>
                            </td>
                          </tr>
                        ))}
                    </Fragment>
                  );
                })}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={release !== null}
        title={
          release?.stage === 'offline'
            ? 'This seat is checked out for offline use'
            : `Release the seat held by ${release ? who(release.lease) : ''}?`
        }
        confirmLabel={release?.stage === 'offline' ? 'Force release' : 'Release seat'}
        danger
        busy={busy}
        onCancel={() => setRelease(null)}
        onConfirm={() => void doRelease(release?.stage === 'offline')}
      >
        {release?.stage === 'offline' ? (
          <>
            <div className="alert alert-warn" role="alert">
              <strong>The server refused the release:</strong> {(release.error as ApiError).message} (<code>OFFLINE_LEASE_ACTIVE</code>)
            </div>
            <p>
              <strong>{who(release.lease)}</strong> borrowed this seat until <strong>{fmtTime(release.offlineExpiresAt)}</strong>. Its user
              may be working away from the network and relies on it. A forced release frees the seat now; their application learns it only
              when it is back online. The override is recorded in the audit log.
            </p>
          </>
        ) : (
          release && (
            <>
              <p>
                The seat goes back to the pool now. The application on <strong>{who(release.lease)}</strong>
                {release.lease.user ? ` (${vis(release.lease.user)})` : ''} gets <code>LEASE_NOT_FOUND</code> at its next heartbeat and must
                check out again. {plural(release.lease.instanceCount, 'running instance')} on it.
              </p>
              <ErrorBox error={release.error} />
            </>
          )
        )}
      </ConfirmDialog>
    </section>
  );
}

function DevicesSeen({ devices }: { devices: Device[] }) {
  if (devices.length === 0) return null;
  const suspects = devices.filter((d) => d.cloneSuspectedAt !== null).length;
  return (
    <section className="card" aria-labelledby="devices-h">
      {suspects > 0 && (
        <p className="alert alert-warn" role="status">
          {plural(suspects, 'device fingerprint')} seen from several machines at once (a cloned disk or VM image?): see the list below.
        </p>
      )}
      <details open={suspects > 0}>
        <summary>
          <h2 id="devices-h">
            Every device seen on this license <span className="count">{devices.length}</span>
          </h2>
        </summary>
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Devices seen on this license, most recently accessed first</caption>
            <TableHead
              columns={['Hostname', 'User', 'App version', 'First seen', 'Last accessed', { label: 'Seats held', numeric: true }]}
            />
            <tbody>
              {devices.map((d) => (
                <tr key={d.id}>
                  <th scope="row" data-label="Hostname">
                    {d.hostname !== null ? vis(d.hostname) : <span className="muted">unknown</span>}
                    <span className="sub">
                      <Link to={`/audit?deviceId=${d.id}`}>audit</Link> · <code>{d.fingerprint.slice(0, 16)}</code>
                    </span>
                  </th>
                  <td data-label="User">
                    {d.user !== null ? vis(d.user) : '—'}
                    {d.cloneSuspectedAt !== null && (
                      <span className="sub text-bad" data-clone-suspect={d.id}>
                        clone suspect since {fmtTime(d.cloneSuspectedAt)}: {d.machinesSeen.map(vis).join('; ')}
                      </span>
                    )}
                  </td>
                  <td data-label="App version">{d.appVersion !== null ? vis(d.appVersion) : '—'}</td>
                  <td data-label="First seen">{fmtTime(d.firstSeenAt)}</td>
                  <td data-label="Last accessed">{fmtTime(d.lastAccessedAt)}</td>
                  <td data-label="Seats held" className="num">
                    {d.seatsHeld}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </section>
  );
}
