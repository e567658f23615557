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
  }
`);

export const ListCustomers = graphql(`
  query ListCustomers($first: Int, $after: String, $last: Int, $before: String) {
    customers(first: $first, after: $after, last: $last, before: $before) {
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
