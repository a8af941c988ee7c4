/**
 * On-premise: the vendor-signed license file in force (customer, serial, validity, the server it is bound
 * to, seats per license) and loading a new one (a renewal, more seats) without a restart. On a hosted server
 * the page says what the role means instead.
 */
import { useState } from 'react';
import { api, type Entitlements } from '../api';
import { fmtTime } from '../format';
import { Link } from '../router';
import { useCan, useLoad, useTitle } from '../session';
import { ErrorBox, Loading, PageTitle, TableHead } from '../components/ui';

export function LicenseFile() {
  useTitle('License file');
  const isAdmin = useCan('admin');
  const { data, error, reload } = useLoad(() => api.entitlements(), []);
  if (!data) return error ? <ErrorBox error={error} /> : <Loading />;
  return (
    <>
      <PageTitle>License file</PageTitle>
      {data.mode !== 'on-prem' ? (
        <p className="lead">
          This is a hosted server: its products, licenses and seats are managed here, in the console. A license file is what an on-premise
          server (<code>floatd serve --mode on-prem</code>) takes its seats from.
        </p>
      ) : (
        <OnPrem data={data} isAdmin={isAdmin} onLoaded={reload} />
      )}
    </>
  );
}

function OnPrem({ data, isAdmin, onLoaded }: { data: Entitlements; isAdmin: boolean; onLoaded: () => void }) {
  const f = data.licenseFile;
  const now = Date.now();
  const validity = !f
    ? null
    : Date.parse(f.notBefore) > now
      ? 'not yet valid'
      : f.notAfter && Date.parse(f.notAfter) <= now
        ? 'expired'
        : 'valid';
  return (
    <>
      <p className="lead">
        This on-premise server takes its products, licenses and seats from a license file signed by the vendor. Editing the database grants
        nothing: to change seats or dates, load a new file from the vendor.
      </p>
      {!f ? (
        <p className="alert alert-warn" role="status">
          No license file is loaded: the server grants no seat yet. Send the vendor an activation request (
          <code>floatd entitlements request</code>) and load the file it sends back below.
        </p>
      ) : (
        <section className="card" aria-labelledby="file-h">
          <h2 id="file-h">In force</h2>
          <dl className="dl">
            <div>
              <dt>Customer</dt>
              <dd>
                {f.customer?.name ?? '—'}
                {f.customer?.id && <span className="sub">{f.customer.id}</span>}
              </dd>
            </div>
            <div>
              <dt>Serial</dt>
              <dd>{f.serial}</dd>
            </div>
            <div>
              <dt>Valid</dt>
              <dd>
                {fmtTime(f.notBefore)} – {f.notAfter ? fmtTime(f.notAfter) : 'no end'}
                <span className="sub">{validity}</span>
              </dd>
            </div>
            <div>
              <dt>Issued</dt>
              <dd>{fmtTime(f.issuedAt)}</dd>
            </div>
            <div>
              <dt>Bound to server</dt>
              <dd>
                {f.boundTo ? <span className="mono-wrap">{f.boundTo}</span> : 'any server (not bound)'}
                <span className="sub">
                  {f.boundTo && data.fingerprint ? (f.boundTo === data.fingerprint ? 'this server' : 'another server') : ''}
                </span>
              </dd>
            </div>
            <div>
              <dt>This server's fingerprint</dt>
              <dd className="mono-wrap">{data.fingerprint ?? '—'}</dd>
            </div>
          </dl>
          <h3 className="subhead">Licenses granted by the file</h3>
          <div className="table-wrap">
            <table className="table table-cards">
              <caption className="sr-only">Licenses granted by the license file</caption>
              <TableHead columns={['Key', 'Seats', 'Model', 'Expires']} />
              <tbody>
                {f.licenses.map((l) => (
                  <tr key={l.id}>
                    <th scope="row" data-label="Key">
                      <Link to={`/licenses/${l.id}`}>
                        <code>{l.key}</code>
                      </Link>
                    </th>
                    <td data-label="Seats">{l.seats}</td>
                    <td data-label="Model">{l.model}</td>
                    <td data-label="Expires">{l.expiresAt ? fmtTime(l.expiresAt) : 'never'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      {isAdmin ? <LoadFile onLoaded={onLoaded} /> : <p className="muted">Loading a new license file needs the admin role.</p>}
    </>
  );
}

function LoadFile({ onLoaded }: { onLoaded: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = async (file: File | undefined) => {
    if (!file) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      let doc: unknown;
      try {
        doc = JSON.parse(await file.text());
      } catch {
        throw new Error(`${file.name} is not a license file (not JSON).`);
      }
      // Any JSON goes: the server verifies the signature and says what is wrong (ENTITLEMENT_INVALID).
      const r = await api.loadLicenseFile(doc as Record<string, unknown>);
      setResult(
        r.unchanged ? `Serial ${r.loaded.serial} is already in force: nothing changed.` : `License file serial ${r.loaded.serial} loaded.`,
      );
      onLoaded();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-labelledby="load-h">
      <h2 id="load-h">Load a new license file</h2>
      <p>A renewal or an upgrade from the vendor: it takes effect at once, without a restart. A file with a lower serial is refused.</p>
      <label htmlFor="license-file-input">License file (JSON)</label>
      <input
        id="license-file-input"
        className="fileinput"
        type="file"
        accept=".json,application/json"
        disabled={busy}
        onChange={(e) => void load(e.target.files?.[0])}
      />
      {result && (
        <p className="alert alert-ok" role="status">
          {result}
        </p>
      )}
      <ErrorBox error={error} title="The license file was not loaded" />
    </section>
  );
}
