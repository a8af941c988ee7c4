/**
 * Webhooks: endpoints that receive floatd's events (signed, retried for a day), each with its delivery log.
 * An admin adds one (its secret is shown once), pings it, enables or disables it, deletes it; an operator
 * redelivers a delivery. The event types come from the wire schema.
 */
import { useState } from 'react';
import { api, WEBHOOK_EVENT_TYPES, type CreatedWebhook, type Webhook } from '../api';
import { fmtTime } from '../format';
import { useCan, useLoad, useTitle } from '../session';
import {
  ConfirmDialog,
  CopyButton,
  EmptyState,
  ErrorBox,
  Field,
  Loading,
  PageTitle,
  TableHead,
  useConfirmedAction,
  useSubmit,
} from '../components/ui';

export function Webhooks() {
  useTitle('Webhooks');
  const isAdmin = useCan('admin');
  const { data, error, reload } = useLoad(async () => (await api.webhooks()).items, []);
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const remove = useConfirmedAction((w: Webhook) => api.deleteWebhook(w.id), reload);
  const [actionError, setActionError] = useState<unknown>(null);
  const act = (f: () => Promise<unknown>) => {
    setActionError(null);
    f().then(reload, setActionError);
  };
  return (
    <>
      <PageTitle>Webhooks</PageTitle>
      <p className="lead">
        Endpoints receive events (seats full, checkouts denied, seats reclaimed, licenses expiring…) as signed POSTs, retried for a day.
      </p>
      {isAdmin && (
        <CreateWebhook
          onCreated={(w) => {
            setCreated(w);
            reload();
          }}
        />
      )}
      {created && (
        <div className="alert alert-ok secret" role="status">
          <p>Endpoint created. Copy its signing secret now: it is shown only this once.</p>
          <p className="secret-line">
            <code data-testid="new-webhook-secret">{created.secret}</code>{' '}
            <CopyButton text={created.secret} ariaLabel="Copy the signing secret" />
          </p>
          <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>
            I have kept it
          </button>
        </div>
      )}
      <ErrorBox error={error ?? actionError} />
      {!data ? (
        !error && <Loading />
      ) : data.length === 0 ? (
        <EmptyState title="No webhook endpoints">
          <p>{isAdmin ? 'Add one above.' : 'An administrator has not added any.'}</p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Webhook endpoints</caption>
            <TableHead columns={['URL', 'Events', 'State', 'Actions']} />
            <tbody>
              {data.map((w) => (
                <tr key={w.id} data-webhook-id={w.id}>
                  <th scope="row" data-label="URL">
                    <code>{w.url}</code>
                    <span className="sub">{w.description || w.id}</span>
                  </th>
                  <td data-label="Events">{w.events.join(', ')}</td>
                  <td data-label="State">{w.enabled ? 'enabled' : 'disabled'}</td>
                  <td data-label="Actions">
                    <button type="button" className="btn btn-small" onClick={() => setOpen(open === w.id ? null : w.id)}>
                      {open === w.id ? 'Hide deliveries' : 'Deliveries'}
                    </button>
                    {isAdmin && (
                      <>
                        <button type="button" className="btn btn-small" onClick={() => act(() => api.pingWebhook(w.id))}>
                          Ping
                        </button>
                        <button
                          type="button"
                          className="btn btn-small"
                          onClick={() => act(() => api.updateWebhook(w.id, { enabled: !w.enabled }))}
                        >
                          {w.enabled ? 'Disable' : 'Enable'}
                        </button>
                        <button type="button" className="btn btn-small btn-danger" onClick={() => remove.ask(w)}>
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open && <Deliveries webhookId={open} />}
      <ConfirmDialog {...remove.dialog} title="Delete this webhook endpoint?" confirmLabel="Delete endpoint" danger>
        <p>Its delivery log goes with it; nothing more is sent to it.</p>
        <ErrorBox error={remove.error} />
      </ConfirmDialog>
    </>
  );
}

function Deliveries({ webhookId }: { webhookId: string }) {
  const mayRedeliver = useCan('operator');
  const { data, error, reload } = useLoad(async () => (await api.deliveries(webhookId)).items, [webhookId]);
  const [actionError, setActionError] = useState<unknown>(null);
  return (
    <section aria-labelledby="dlv-h">
      <h2 id="dlv-h">
        Deliveries{' '}
        <button type="button" className="btn btn-small" onClick={reload}>
          Refresh
        </button>
      </h2>
      <ErrorBox error={error ?? actionError} />
      {!data ? (
        !error && <Loading />
      ) : data.length === 0 ? (
        <p>Nothing sent yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <caption className="sr-only">Deliveries</caption>
            <TableHead columns={['Event', 'State', 'Attempts', 'Last answer', 'Next attempt', mayRedeliver && 'Actions']} />
            <tbody>
              {data.map((d) => {
                const last = d.lastAttempts[0];
                return (
                  <tr key={d.id} data-delivery-id={d.id}>
                    <th scope="row" data-label="Event">
                      {d.eventType}
                      <span className="sub">
                        <code>{d.eventId}</code> · {fmtTime(d.createdAt)}
                      </span>
                    </th>
                    <td data-label="State">
                      <span className={`badge ${d.state === 'delivered' ? 'badge-ok' : d.state === 'failed' ? 'badge-bad' : 'badge-warn'}`}>
                        {d.state}
                      </span>
                    </td>
                    <td data-label="Attempts">{d.attempts}</td>
                    <td data-label="Last answer">{last ? (last.status ?? last.error ?? '—') : '—'}</td>
                    <td data-label="Next attempt">{d.nextAttemptAt ? fmtTime(d.nextAttemptAt) : '—'}</td>
                    {mayRedeliver && (
                      <td data-label="Actions">
                        <button
                          type="button"
                          className="btn btn-small"
                          onClick={() => {
                            setActionError(null);
                            api.redeliver(d.id).then(reload, setActionError);
                          }}
                        >
                          Redeliver
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function CreateWebhook({ onCreated }: { onCreated: (w: CreatedWebhook) => void }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string>('*');
  const { busy, error, submit } = useSubmit(
    () => api.createWebhook({ url: url.trim(), events: events.split(/[\s,]+/).filter(Boolean) as never }),
    (w) => {
      onCreated(w);
      setUrl('');
    },
  );
  return (
    <form className="card form-inline" onSubmit={(e) => void submit(e)} noValidate aria-label="New webhook endpoint">
      <Field label="Endpoint URL" hint="http:// or https://">
        {(p) => <input {...p} type="url" value={url} onChange={(e) => setUrl(e.target.value)} maxLength={2048} />}
      </Field>
      <Field label="Events" hint={`* for all, or some of: ${WEBHOOK_EVENT_TYPES.join(', ')}`}>
        {(p) => <input {...p} value={events} onChange={(e) => setEvents(e.target.value)} />}
      </Field>
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Adding…' : 'Add endpoint'}
      </button>
      <ErrorBox error={error} title="The endpoint was not added" />
    </form>
  );
}
