// The operations a customer-management frontend sends. graphql-codegen
// turns each into a typed document in src/gql/ (generated, not committed).
import { graphql } from './gql/index.js';

export const CustomerFields = graphql(`
  fragment CustomerFields on Customer {
    id
    username
    name
    detail
    webhookMethod
    webhookUri
    permissionIds
    tmCreate
    tmUpdate
    tmDelete
    tmFreeze
    status
  }
`);

export const ListCustomers = graphql(`
  query ListCustomers(
    $first: Int
    $after: String
    $last: Int
    $before: String
    $filter: CustomerFilter
    $orderBy: CustomerOrder
  ) {
    customers(
      first: $first
      after: $after
      last: $last
      before: $before
      filter: $filter
      orderBy: $orderBy
    ) {
      totalCount
      edges {
        cursor
        node {
          ...CustomerFields
          guestAgent {
            id
            username
            permissions
          }
        }
      }
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
    }
  }
`);

export const GetCustomer = graphql(`
  query GetCustomer($id: UUID!) {
    customer(id: $id) {
      ...CustomerFields
      lineSecret
      lineToken
      guestAgent {
        id
        username
        name
        permission
        permissions
      }
    }
  }
`);

export const CreateCustomer = graphql(`
  mutation CreateCustomer($input: CreateCustomerInput!) {
    createCustomer(input: $input) {
      customer {
        ...CustomerFields
        guestAgent {
          id
          username
          permissions
        }
      }
    }
  }
`);

export const DeleteCustomer = graphql(`
  mutation DeleteCustomer($id: UUID!) {
    deleteCustomer(input: { id: $id }) {
      customer {
        id
        tmDelete
      }
    }
  }
`);

export const Login = graphql(`
  mutation Login($username: String!, $password: String!) {
    login(input: { username: $username, password: $password }) {
      token
      expiresAt
      agent {
        id
        username
        permissions
      }
    }
  }
`);

export const Me = graphql(`
  query Me {
    me {
      agent {
        id
        username
        permissions
      }
      customer {
        id
        username
        name
      }
      permissions
    }
  }
`);

export const AccessKeyFields = graphql(`
  fragment AccessKeyFields on AccessKey {
    id
    customerId
    name
    detail
    tokenPrefix
    tmExpire
    tmLastUsed
    tmCreate
    tmUpdate
    tmDelete
  }
`);

export const ListAccessKeys = graphql(`
  query ListAccessKeys($customerId: UUID, $first: Int, $after: String) {
    accessKeys(customerId: $customerId, first: $first, after: $after) {
      nodes {
        ...AccessKeyFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const GetAccessKey = graphql(`
  query GetAccessKey($id: UUID!) {
    accessKey(id: $id) {
      ...AccessKeyFields
    }
  }
`);

export const CreateAccessKey = graphql(`
  mutation CreateAccessKey($input: CreateAccessKeyInput!) {
    createAccessKey(input: $input) {
      token
      accessKey {
        ...AccessKeyFields
      }
    }
  }
`);

export const UpdateAccessKey = graphql(`
  mutation UpdateAccessKey($input: UpdateAccessKeyInput!) {
    updateAccessKey(input: $input) {
      accessKey {
        ...AccessKeyFields
      }
    }
  }
`);

export const DeleteAccessKey = graphql(`
  mutation DeleteAccessKey($id: UUID!) {
    deleteAccessKey(input: { id: $id }) {
      accessKey {
        id
        tmDelete
      }
    }
  }
`);

export const UpdateCustomer = graphql(`
  mutation UpdateCustomer($input: UpdateCustomerInput!) {
    updateCustomer(input: $input) {
      customer {
        ...CustomerFields
      }
    }
  }
`);

export const UpdateCustomerLineInfo = graphql(`
  mutation UpdateCustomerLineInfo($input: UpdateCustomerLineInfoInput!) {
    updateCustomerLineInfo(input: $input) {
      customer {
        ...CustomerFields
      }
    }
  }
`);

export const UpdateCustomerPermissionIds = graphql(`
  mutation UpdateCustomerPermissionIds($input: UpdateCustomerPermissionIdsInput!) {
    updateCustomerPermissionIds(input: $input) {
      customer {
        ...CustomerFields
      }
    }
  }
`);

export const FreezeCustomer = graphql(`
  mutation FreezeCustomer($input: FreezeCustomerInput!) {
    freezeCustomer(input: $input) {
      customer {
        ...CustomerFields
      }
    }
  }
`);

export const RecoverCustomer = graphql(`
  mutation RecoverCustomer($input: RecoverCustomerInput!) {
    recoverCustomer(input: $input) {
      customer {
        ...CustomerFields
      }
    }
  }
`);

export const ListEvents = graphql(`
  query ListEvents($filter: EventFilter, $first: Int, $after: String) {
    events(filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          type
          customerId
          actorId
          requestId
          tmCreate
          data
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const RotateWebhookSecret = graphql(`
  mutation RotateWebhookSecret($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) {
      webhookSecret
      customer {
        id
        webhookUri
      }
    }
  }
`);

export const ListWebhookDeliveries = graphql(`
  query ListWebhookDeliveries($filter: WebhookDeliveryFilter, $first: Int, $after: String) {
    webhookDeliveries(filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node {
          eventId
          customerId
          state
          attemptCount
          nextAttemptAt
          lastStatusCode
          lastError
          tmCreate
          tmUpdate
          event {
            id
            type
            tmCreate
          }
          attempts {
            number
            tmAttempt
            statusCode
            error
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const RedeliverEvent = graphql(`
  mutation RedeliverEvent($input: RedeliverEventInput!) {
    redeliverEvent(input: $input) {
      delivery {
        eventId
        state
        attemptCount
        nextAttemptAt
        tmCreate
      }
    }
  }
`);

// Over WebSocket (graphql-transport-ws at /graphql), e.g. with graphql-ws's
// `client.iterate({ query: print(CustomerEvents), variables })`.
export const CustomerEvents = graphql(`
  subscription CustomerEvents($customerId: UUID, $types: [String!]) {
    customerEvents(customerId: $customerId, types: $types) {
      id
      type
      customerId
      actorId
      requestId
      tmCreate
      data
    }
  }
`);
