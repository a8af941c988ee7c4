/**
 * Customers: the organisations licenses belong to. Every license belongs to one (the built-in
 * `DEFAULT_CUSTOMER_ID` when none was named); a customer with licenses cannot be deleted, and
 * deleting one revokes its own administrators' tokens in the same transaction, so no token is
 * left pointing at nothing. Writes go through a store transaction with an audit entry naming
 * the actor, like the catalogue's.
 */
import { DEFAULT_CUSTOMER_ID, type CreateCustomer, type UpdateCustomer } from '@floatd/protocol';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { AuditEntry, Customer, License } from '../domain/types.js';
import { newId } from '../ids.js';
import type { Store } from '../store/port.js';
import { lastDaysRange } from './overview.js';

/** How far back the customer page's usage figures look. */
export const CUSTOMER_USAGE_DAYS = 30;

export interface CustomerDetail {
  customer: Customer;
  licenses: { license: License; productName: string | null }[];
  seats: number;
  seatsUsed: number;
  nextExpiry: { licenseId: string; at: number } | null;
  usage: { from: number; to: number; peakSeats: number; checkouts: number; denials: number };
}

export class CustomerService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(input: CreateCustomer, actor: string): Promise<Customer> {
    const now = this.clock.now();
    const customer: Customer = {
      id: newId('cus'),
      name: input.name,
      contact: input.contact ?? {},
      metadata: input.metadata ?? {},
      createdAt: now,
      updatedAt: now,
    };
    await this.store.transaction((tx) =>
      tx.apply([
        { type: 'customer.insert', customer },
        audit(now, 'customer.created', actor, { customerId: customer.id, name: customer.name }),
      ]),
    );
    return customer;
  }

  async update(id: string, patch: UpdateCustomer, actor: string): Promise<Result<Customer>> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const current = await tx.customer(id);
      if (!current) return fail('CUSTOMER_NOT_FOUND', `no customer ${id}`);
      const customer: Customer = {
        ...current,
        name: patch.name ?? current.name,
        contact: patch.contact ?? current.contact,
        metadata: patch.metadata ?? current.metadata,
        updatedAt: now,
      };
      await tx.apply([
        { type: 'customer.update', customer },
        audit(now, 'customer.updated', actor, { customerId: id, changed: Object.keys(patch) }),
      ]);
      return ok(customer);
    });
  }

  async delete(id: string, actor: string): Promise<Result<{ deleted: true; tokensRevoked: number }>> {
    if (id === DEFAULT_CUSTOMER_ID)
      return fail('DEFAULT_CUSTOMER', 'the built-in customer holds the licenses created without one; it can be renamed, not deleted');
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      if (!(await tx.customer(id))) return fail('CUSTOMER_NOT_FOUND', `no customer ${id}`);
      const licenses = await tx.licenseCountOfCustomer(id);
      if (licenses > 0)
        return fail('CUSTOMER_HAS_LICENSES', `customer ${id} still owns ${licenses} license key(s); move or delete them first`, {
          licenses,
        });
      const tokens = await tx.customerTokens(id);
      const effects: Effect[] = [
        ...tokens.map((t): Effect => ({ type: 'adminToken.revoke', tokenId: t.id, at: now })),
        { type: 'customer.delete', customerId: id },
        audit(now, 'customer.deleted', actor, { customerId: id, tokensRevoked: tokens.map((t) => t.id) }),
      ];
      await tx.apply(effects);
      return ok({ deleted: true as const, tokensRevoked: tokens.length });
    });
  }

  /** The customer with its licenses, seats in use, the next expiry and its usage over the last `CUSTOMER_USAGE_DAYS` days. */
  async detail(id: string): Promise<Result<CustomerDetail>> {
    const customer = await this.store.getCustomer(id);
    if (!customer) return fail('CUSTOMER_NOT_FOUND', `no customer ${id}`);
    const licenses: License[] = [];
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await this.store.listLicenses({ limit: 500, cursor, customerId: id });
      licenses.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    }
    const now = this.clock.now();
    const names = new Map<string, string | null>();
    for (const productId of new Set(licenses.map((l) => l.productId)))
      names.set(productId, (await this.store.getProduct(productId))?.name ?? null);
    // Through the end of the current hour (its row is the live one).
    const { from, to } = lastDaysRange(now, CUSTOMER_USAGE_DAYS);
    // Each license's hours summed hour by hour: the customer's peak is the busiest hour of all its licenses together.
    const byHour = new Map<number, number>();
    let checkouts = 0;
    let denials = 0;
    for (const l of licenses) {
      for (const row of await this.store.usage(l.id, from, to)) {
        byHour.set(row.hour, (byHour.get(row.hour) ?? 0) + row.peakSeats);
        checkouts += row.checkouts;
        denials += row.denials;
      }
    }
    const upcoming = licenses
      .filter((l) => l.expiresAt !== null && l.expiresAt > now)
      .sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0))[0];
    return ok({
      customer,
      licenses: licenses.map((license) => ({ license, productName: names.get(license.productId) ?? null })),
      seats: licenses.reduce((n, l) => n + l.seats, 0),
      seatsUsed: licenses.reduce((n, l) => n + l.seatsUsed, 0),
      nextExpiry: upcoming ? { licenseId: upcoming.id, at: upcoming.expiresAt as number } : null,
      usage: { from, to, peakSeats: Math.max(0, ...byHour.values()), checkouts, denials },
    });
  }
}

function audit(at: number, type: AuditEntry['type'], actor: string, data: Record<string, unknown>): Effect {
  return { type: 'audit', entry: { at, type, actor, licenseId: null, deviceId: null, leaseId: null, reason: null, data } };
}
