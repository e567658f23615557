// The GraphiQL playground of customer-api, served at GET /graphql.
// Everything it needs (scripts, styles, fonts, Monaco's workers) is bundled
// into ../assets/graphiql/ and served by the API server itself.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './page.css';

import { getIntrospectionQuery } from 'graphql';
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

async function fetcher(params, options) {
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
