// What a frontend does with the generated documents. Compiled, never run:
// its point is that `tsc --strict` accepts correct use and rejects the
// mistakes marked @ts-expect-error (each of which must stay an error).
import { ApiRequestError, execute, type Connection } from './client.js';
import type {
  AgentPermission,
  CustomerEventsSubscription,
  CustomerEventsSubscriptionVariables,
  CustomerStatus,
  ListCustomersQuery,
  WebhookDeliveryState,
  WebhookMethod,
} from './gql/graphql.js';
import {
  CreateCustomer,
  DeleteCustomer,
  FreezeCustomer,
  GetCustomer,
  ListCustomers,
  ListEvents,
  ListWebhookDeliveries,
  Login,
  Me,
  RecoverCustomer,
  RedeliverEvent,
  RotateWebhookSecret,
} from './operations.js';

export async function logIn(url: string, username: string, password: string): Promise<Connection> {
  const { login } = await execute({ url }, Login, { username, password });
  const expiresAt: string = login.expiresAt; // DateTime is an RFC 3339 string
  console.log(`logged in as ${login.agent.username} until ${expiresAt}`);
  return { url, token: login.token };
}

export async function whoAmI(api: Connection): Promise<string> {
  const { me } = await execute(api, Me);
  // `agent` is null when the credential is an access key.
  const name: string = me.agent?.username ?? `access key of ${me.customer.username}`;
  const permissions: AgentPermission[] = me.permissions;
  return `${name} (${permissions.join(', ')})`;
}

/** Every live customer, page by page, following `pageInfo.endCursor`. */
export async function allCustomers(api: Connection): Promise<string[]> {
  const names: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page: ListCustomersQuery = await execute(api, ListCustomers, { first: 100, after });
    for (const { cursor, node } of page.customers.edges) {
      const guest: string | undefined = node.guestAgent?.username;
      const method: WebhookMethod | null = node.webhookMethod;
      names.push(`${node.username} [${cursor}] guest=${guest ?? '-'} webhook=${method ?? 'none'}`);
    }
    const total: number = page.customers.totalCount;
    console.log(`${names.length} of ${total}`);
    if (!page.customers.pageInfo.hasNextPage) return names;
    after = page.customers.pageInfo.endCursor;
  }
}

export async function createThenDelete(api: Connection): Promise<void> {
  const { createCustomer } = await execute(api, CreateCustomer, {
    input: {
      username: 'test1',
      password: 'a-long-password',
      name: 'test 1',
      webhookMethod: 'POST',
      webhookUri: 'https://example.com/hook',
    },
  });
  const customer = createCustomer.customer;
  const guestIsAdmin: boolean | undefined = customer.guestAgent?.permissions.includes('CUSTOMER_ADMIN');
  console.log(customer.id, guestIsAdmin);

  const { customer: fetched } = await execute(api, GetCustomer, { id: customer.id });
  if (fetched === null) throw new Error('not found'); // `customer(id)` is nullable
  const bitmask: number | undefined = fetched.guestAgent?.permission;
  console.log(fetched.lineSecret.length, bitmask);

  try {
    const { deleteCustomer } = await execute(api, DeleteCustomer, { id: customer.id });
    const deletedAt: string | null = deleteCustomer.customer.tmDelete;
    console.log(deletedAt);
  } catch (error) {
    if (error instanceof ApiRequestError && error.code === 'NOT_FOUND') return;
    throw error;
  }
}

// Mistakes the types catch.
export async function mistakes(api: Connection): Promise<void> {
  const { createCustomer } = await execute(api, CreateCustomer, {
    input: { username: 'test2', password: 'a-long-password' },
  });
  // @ts-expect-error a password is write-only: no type has it
  console.log(createCustomer.customer.password);
  // @ts-expect-error PATCH is not a WebhookMethod
  await execute(api, CreateCustomer, { input: { username: 'x3', password: 'a-long-password', webhookMethod: 'PATCH' } });
  // @ts-expect-error username is required
  await execute(api, CreateCustomer, { input: { password: 'a-long-password' } });
  // @ts-expect-error GetCustomer needs its id
  await execute(api, GetCustomer);
  // @ts-expect-error customer(id) may be null
  console.log((await execute(api, GetCustomer, { id: 'x' })).customer.username);
  // @ts-expect-error me.agent may be null (access keys)
  console.log((await execute(api, Me)).me.agent.username);
}

/** Frozen customers whose name or username contains `search`, oldest first. */
export async function frozenMatching(api: Connection, search: string): Promise<string[]> {
  const page = await execute(api, ListCustomers, {
    first: 50,
    filter: { search, status: 'FROZEN', createdAfter: '2024-01-01T00:00:00Z' },
    orderBy: 'TM_CREATE_ASC',
  });
  // @ts-expect-error: the statuses are an enum, not any string
  await execute(api, ListCustomers, { filter: { status: 'SUSPENDED' } });
  return page.customers.edges.map(({ node }) => `${node.username} ${node.status}`);
}

/** Freezes a customer, then brings it back. */
export async function freezeThenRecover(api: Connection, id: string): Promise<CustomerStatus> {
  const { freezeCustomer } = await execute(api, FreezeCustomer, { input: { id } });
  const frozenAt: string | null | undefined = freezeCustomer.customer.tmFreeze;
  console.log(`frozen at ${frozenAt ?? '?'}`);
  const { recoverCustomer } = await execute(api, RecoverCustomer, { input: { id } });
  return recoverCustomer.customer.status;
}

/** Who deleted a customer, and when: its `customer_deleted` events. */
export async function whoDeleted(api: Connection, customerId: string): Promise<string[]> {
  const { events } = await execute(api, ListEvents, {
    first: 10,
    filter: { customerId, types: ['customer_deleted'] },
  });
  return events.edges.map(({ node }) => `${node.actorId ?? 'the server'} at ${node.tmCreate}`);
}

/** A new webhook secret, to configure on the receiving side. */
export async function newWebhookSecret(api: Connection, customerId: string): Promise<string> {
  const { rotateWebhookSecret } = await execute(api, RotateWebhookSecret, { input: { customerId } });
  return rotateWebhookSecret.webhookSecret;
}

/** A customer's failed deliveries, each with its attempts, sent again. */
export async function redeliverFailed(api: Connection, customerId: string): Promise<string[]> {
  const { webhookDeliveries } = await execute(api, ListWebhookDeliveries, {
    first: 20,
    filter: { customerId, state: 'FAILED' },
  });
  const retried: string[] = [];
  for (const { node } of webhookDeliveries.edges) {
    const history = node.attempts.map((a) => `#${a.number} ${a.statusCode ?? a.error ?? '?'}`);
    console.log(`${node.event.type} ${node.eventId}: ${history.join(', ')}`);
    const { redeliverEvent } = await execute(api, RedeliverEvent, { input: { eventId: node.eventId } });
    const state: WebhookDeliveryState = redeliverEvent.delivery.state;
    const due: string | null = redeliverEvent.delivery.nextAttemptAt;
    retried.push(`${redeliverEvent.delivery.eventId} ${state} due ${due ?? '-'}`);
  }
  // @ts-expect-error: the states are an enum, not any string
  await execute(api, ListWebhookDeliveries, { filter: { state: 'RETRYING' } });
  return retried;
}

// A subscription's typed shapes, for whichever WebSocket client runs it.
export function describeLiveEvent(result: CustomerEventsSubscription): string {
  const event = result.customerEvents;
  const data: unknown = event.data; // JSON: the resource in its REST shape
  return `${event.type} of ${event.customerId ?? 'the platform'} at ${event.tmCreate}: ${JSON.stringify(data)}`;
}

export const onlyCreations: CustomerEventsSubscriptionVariables = { types: ['customer_created'] };
// @ts-expect-error event types are strings
export const wrongTypes: CustomerEventsSubscriptionVariables = { types: [42] };
