// The GraphiQL playground of customer-api, served at GET /graphql.
// Everything it needs (scripts, styles, fonts, Monaco's workers) is bundled
// into ../assets/graphiql/ and served by the API server itself.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './page.css';

import { getIntrospectionQuery, getOperationAST, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { explorerPlugin } from '@graphiql/plugin-explorer';

import { DEFAULT_HEADERS, DEFAULT_QUERY } from './defaults.js';

// The API answers on the page's own path: same origin, no cookies.
const ENDPOINT = '/graphql';

// graphql-js asks for 9 levels of `ofType` by default, a document 14 deep:
// deeper than the server's MAX_QUERY_DEPTH (12 by default) allows. This API's
// types nest 3 deep at most (`[AgentPermission!]!`), so 6 levels are plenty
// and keep the schema docs working under the default limit.
const INTROSPECTION_NAME = 'GraphiQLIntrospection';
const INTROSPECTION_QUERY = getIntrospectionQuery({ typeDepth: 6 }).replace(
  'query IntrospectionQuery',
  `query ${INTROSPECTION_NAME}`,
);

// Subscriptions run over a WebSocket on the same path (graphql-transport-ws),
// with the headers editor's Authorization sent in `connection_init`. One
// client per credential, opened on first use.
const socketUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${ENDPOINT}`;
const socketClients = new Map();

function socketClient(authorization) {
  let client = socketClients.get(authorization);
  if (!client) {
    client = createClient({
      url: socketUrl,
      lazy: true,
      connectionParams: authorization ? { Authorization: authorization } : {},
    });
    socketClients.set(authorization, client);
  }
  return client;
}

function isSubscription(params) {
  try {
    const operation = getOperationAST(parse(params.query), params.operationName ?? undefined);
    return operation?.operation === 'subscription';
  } catch {
    // Unparsable: let the server say what is wrong, over HTTP.
    return false;
  }
}

function headerValue(headers, name) {
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : String(headers[key]);
}

function fetcher(params, options) {
  if (isSubscription(params)) {
    const authorization = headerValue(options?.headers, 'authorization');
    return socketClient(authorization).iterate(params);
  }
  return fetchOverHttp(params, options);
}

async function fetchOverHttp(params, options) {
  if (params.operationName === INTROSPECTION_NAME) {
    params = { ...params, query: INTROSPECTION_QUERY };
  }
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    credentials: 'omit',
    headers: {
      accept: 'application/graphql-response+json, application/json',
      'content-type': 'application/json',
      ...(options?.headers ?? {}),
    },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    // Not GraphQL (a proxy's error page, a 413, a timeout): show what came back.
    return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
  }
}

const explorer = explorerPlugin({ showAttribution: false });

createRoot(document.getElementById('graphiql')).render(
  createElement(GraphiQL, {
    fetcher,
    introspectionQueryName: INTROSPECTION_NAME,
    plugins: [explorer],
    defaultQuery: DEFAULT_QUERY,
    defaultHeaders: DEFAULT_HEADERS,
    defaultEditorToolsVisibility: 'headers',
    // A bearer token in localStorage would outlive the tab; keep it opt-in.
    shouldPersistHeaders: false,
    visiblePlugin: 'Documentation Explorer',
  }, createElement(GraphiQL.Logo, null, 'VoIPbin customer API')),
);
