// A minimal typed GraphQL client over fetch: the result and variables types
// come from the generated document, so a wrong field or variable is a
// compile error.
import type { TypedDocumentString } from './gql/graphql.js';

/** `extensions.code` of every error the API returns. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'BAD_USER_INPUT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

export interface ApiError {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: {
    code?: ErrorCode;
    /** The input field a BAD_USER_INPUT error is about. */
    field?: string;
    retryAfterSeconds?: number;
    [key: string]: unknown;
  };
}

export class ApiRequestError extends Error {
  readonly errors: readonly ApiError[];

  constructor(errors: readonly ApiError[]) {
    super(errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; '));
    this.name = 'ApiRequestError';
    this.errors = errors;
  }

  /** The code of the first error, e.g. to send the user to the login page. */
  get code(): ErrorCode | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

export interface Connection {
  /** The API's endpoint, e.g. `http://127.0.0.1:8080/graphql`. */
  url: string;
  /** A login token or an access key (`vb_…`). */
  token?: string;
}

/** Operations without variables take none; the others require theirs. */
type VariablesArg<TVariables> =
  TVariables extends Record<string, never> ? [variables?: TVariables] : [variables: TVariables];

export async function execute<TResult, TVariables>(
  connection: Connection,
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: VariablesArg<TVariables>
): Promise<TResult> {
  const headers: Record<string, string> = {
    accept: 'application/graphql-response+json, application/json',
    'content-type': 'application/json',
  };
  if (connection.token !== undefined) headers.authorization = `Bearer ${connection.token}`;
  const response = await fetch(connection.url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json()) as { data?: TResult | null; errors?: ApiError[] };
  if (body.errors?.length) throw new ApiRequestError(body.errors);
  if (body.data == null) throw new Error(`HTTP ${response.status} without data`);
  return body.data;
}
