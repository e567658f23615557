// A real-browser test of the GraphiQL playground at GET /graphql.
//
// Builds and starts the server binary on a free port with a database of its
// own, opens /graphql in Debian's headless Chromium (driven by
// playwright-core), and uses GraphiQL the way a person does: runs the
// default example's Login with Ctrl-Enter, puts the token in the headers
// editor, runs `{ me { agent { username } } }` with the run button and reads
// the result pane, then runs a `customerEvents` subscription (over the
// page's own WebSocket) and sees an event another client causes. Every
// request the page makes is recorded; one that leaves
// the server's origin fails the test, as do Content-Security-Policy
// violations and uncaught page errors. Then it stops the server and drops
// the database.
//
//   node graphiql.test.mjs            (from tests/browser, after `npm ci`)
//
// Environment: CHROMIUM (default /usr/bin/chromium), PG_URL (the server to
// create the test database on; default postgres://postgres@127.0.0.1:5432),
// SKIP_CARGO_BUILD=1 to use target/debug/customer-api as it is, KEEP_SERVER_LOG=1
// to print the server's log even on success.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { serverAudits } from 'graphql-http';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PG_URL = (process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const STEP_TIMEOUT_MS = 30_000;

// The README's example password: the default query in GraphiQL uses it, and
// this test proves that example works exactly as shown.
const ADMIN_USERNAME = 'admin';
const ADMIN_PASSWORD = 'change-me-please';

const workDir = mkdtempSync(join(tmpdir(), 'customer-api-browser-'));
const database = `customer_api_browser_${process.pid}_${randomBytes(4).toString('hex')}`;
const startScreenshotPath = join(workDir, 'graphiql-start.png');
const screenshotPath = join(workDir, 'graphiql.png');
const serverLogPath = join(workDir, 'server.log');

let server = null;
let browser = null;
let page = null;

function log(message) {
  console.log(`browser-test: ${message}`);
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function buildServer() {
  if (process.env.SKIP_CARGO_BUILD === '1') return;
  log('cargo build --bin customer-api');
  const build = spawnSync('cargo', ['build', '--quiet', '--bin', 'customer-api'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error(`cargo build failed (exit ${build.status})`);
}

async function startServer(port) {
  const logFd = openSync(serverLogPath, 'w');
  // Run from an empty folder so that no .env or data folder of the
  // developer's is picked up.
  server = spawn(join(ROOT, 'target/debug/customer-api'), ['serve'], {
    cwd: workDir,
    stdio: ['ignore', logFd, logFd],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? workDir,
      DATABASE_URL: `${PG_URL}/${database}`,
      LISTEN_ADDR: `127.0.0.1:${port}`,
      ADMIN_USERNAME,
      ADMIN_PASSWORD,
      TOKEN_SECRET: randomBytes(32).toString('hex'),
      RUST_LOG: 'warn',
    },
  });
  let exited = null;
  server.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the server exited early (${JSON.stringify(exited)})`);
    try {
      const response = await fetch(`${origin}/readyz`);
      if (response.status === 200) return origin;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error('the server did not become ready within 90 s');
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) {
    server.kill('SIGKILL');
    await exited;
  }
}

function dropDatabase() {
  const drop = spawnSync(
    'psql',
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `${PG_URL}/postgres`, '-c', `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`],
    { encoding: 'utf8' },
  );
  if (drop.status !== 0) {
    log(`could not drop database ${database}: ${drop.stderr.trim()}`);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- the steps

const results = [];

async function step(name, fn) {
  if (results.some((r) => r.status === 'failed')) {
    results.push({ name, status: 'skipped' });
    console.log(`  - ${name} (skipped)`);
    return;
  }
  const started = Date.now();
  try {
    await Promise.race([
      fn(),
      sleep(STEP_TIMEOUT_MS).then(() => {
        throw new Error(`timed out after ${STEP_TIMEOUT_MS / 1000} s`);
      }),
    ]);
    results.push({ name, status: 'passed' });
    console.log(`  ok ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, status: 'failed', error });
    console.log(`  FAILED ${name}: ${error.message}`);
    const failurePath = join(workDir, 'failure.png');
    if (await page?.screenshot({ path: failurePath }).then(() => true, () => false)) {
      log(`screenshot of the failure: ${failurePath}`);
    }
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** The text Monaco shows in an editor, with its non-breaking spaces undone. */
async function editorText(page, selector) {
  return (await page.locator(`${selector} .view-lines`).innerText()).replace(/\u00a0/g, ' ');
}

/** Waits until `predicate(text of the editor)` holds; returns the text. */
async function waitForEditorText(page, selector, predicate, what) {
  const deadline = Date.now() + STEP_TIMEOUT_MS - 2_000;
  let text = '';
  while (Date.now() < deadline) {
    text = await editorText(page, selector);
    if (predicate(text)) return text;
    await sleep(100);
  }
  throw new Error(`${what}; the editor shows: ${text.slice(0, 300)}`);
}

/** Replaces an editor's contents by keyboard, as a person pasting would. */
async function replaceEditorText(page, selector, text) {
  await page.locator(`${selector} .view-lines`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

const QUERY_EDITOR = '.graphiql-query-editor';
const HEADERS_EDITOR = 'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden)';
const RESULT_PANE = '.graphiql-response';

async function main() {
  buildServer();
  const port = await freePort();
  log(`starting target/debug/customer-api on 127.0.0.1:${port}, database ${database}`);
  const origin = await startServer(port);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });

  // Every request of the page and its workers: recorded, and refused if it
  // would leave the server's origin.
  const requests = [];
  const offOrigin = [];
  const note = (url) => {
    const { protocol } = new URL(url);
    if (protocol === 'data:' || protocol === 'blob:') return; // never leaves the browser
    requests.push(url);
    if (new URL(url).origin !== origin) offOrigin.push(url);
  };
  context.on('request', (request) => note(request.url()));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin !== origin) return route.abort('blockedbyclient');
    return route.continue();
  });

  page = await context.newPage();
  // WebSockets are not requests to the router above: recorded on their own.
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy/i.test(text)) problems.push(`CSP: ${text.slice(0, 200)}`);
  });

  console.log('GraphiQL in headless Chromium:');
  let token = null;

  await step('GET /graphql serves GraphiQL with its security headers', async () => {
    const response = await page.goto(`${origin}/graphql`);
    assert(response.status() === 200, `status ${response.status()}`);
    const headers = response.headers();
    assert(headers['content-type']?.startsWith('text/html'), `content-type ${headers['content-type']}`);
    const csp = headers['content-security-policy'] ?? '';
    assert(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'"), `CSP: ${csp}`);
    assert(!csp.includes('unsafe-eval'), 'the CSP allows unsafe-eval');
    assert(headers['x-content-type-options'] === 'nosniff', 'no X-Content-Type-Options: nosniff');
    assert(headers['referrer-policy'] === 'no-referrer', 'no Referrer-Policy: no-referrer');
    assert((await page.title()) === 'VoIPbin customer API', `title "${await page.title()}"`);
  });

  await step('the schema docs load (introspection) and the explorer is there', async () => {
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.getByText('Root Types').waitFor({ timeout: STEP_TIMEOUT_MS });
    const text = (await docs.innerText()).replace(/\s+/g, ' ');
    assert(text.includes('query: Query') && text.includes('mutation: Mutation'), `the docs show: ${text.slice(0, 200)}`);
    await docs.getByText('CustomerConnection', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Show GraphiQL Explorer' }).waitFor();
  });

  await step('the headers editor opens with the Authorization hint', async () => {
    await waitForEditorText(
      page,
      HEADERS_EDITOR,
      (t) => t.includes('"Authorization": "Bearer <token from the login mutation>"'),
      'no Authorization hint',
    );
    await page.screenshot({ path: startScreenshotPath });
  });

  await step('the default example\'s Login runs with Ctrl-Enter and shows a token', async () => {
    const text = await editorText(page, QUERY_EDITOR);
    assert(text.includes('mutation Login') && text.includes('query Me'), 'the default example is not there');
    // Put the cursor inside the Login mutation, as the example says.
    await page.locator(`${QUERY_EDITOR} .view-line`, { hasText: 'expiresAt' }).click();
    const answered = page.waitForResponse(
      (r) => r.request().method() === 'POST' && r.request().postDataJSON()?.operationName === 'Login',
    );
    await page.keyboard.press('Control+Enter');
    const body = await (await answered).json();
    token = body?.data?.login?.token;
    assert(typeof token === 'string' && token.length > 20, `login answered ${JSON.stringify(body).slice(0, 300)}`);
    await waitForEditorText(page, RESULT_PANE, (t) => t.includes('"token"') && t.includes('"expiresAt"'), 'no token in the result pane');
  });

  await step('the token goes into the headers editor', async () => {
    await replaceEditorText(page, HEADERS_EDITOR, `{"Authorization": "Bearer ${token}"}`);
    await waitForEditorText(page, HEADERS_EDITOR, (t) => t.includes(`Bearer ${token.slice(0, 16)}`), 'the header was not set');
  });

  await step('a mistake in the query is underlined as you type', async () => {
    await replaceEditorText(page, QUERY_EDITOR, '{ me { nope } }');
    await page.locator(`${QUERY_EDITOR} .squiggly-error`).first().waitFor({ timeout: STEP_TIMEOUT_MS - 2_000 });
  });

  await step('{ me { agent { username } } } runs with the run button and shows the admin', async () => {
    await replaceEditorText(page, QUERY_EDITOR, '{ me { agent { username } } }');
    await waitForEditorText(page, QUERY_EDITOR, (t) => t.replace(/\s+/g, ' ').trim() === '{ me { agent { username } } }', 'the query was not typed as given');
    const answered = page.waitForResponse(
      (r) => r.request().method() === 'POST' && (r.request().postDataJSON()?.query ?? '').includes('me {'),
    );
    // GraphiQL re-reads the document's operations a moment after an edit;
    // until then the button still offers the old document's two operations.
    const runButton = page.locator('button.graphiql-execute-button:not([aria-haspopup])');
    await runButton.click();
    const request = (await answered).request();
    assert(request.headers().authorization === `Bearer ${token}`, 'the request did not carry the Authorization header');
    const text = await waitForEditorText(
      page,
      RESULT_PANE,
      (t) => t.includes(`"username": "${ADMIN_USERNAME}"`),
      `the result pane does not show "username": "${ADMIN_USERNAME}"`,
    );
    assert(!text.includes('"errors"'), `the result has errors: ${text.slice(0, 300)}`);
    await page.screenshot({ path: screenshotPath });
  });

  await step('a subscription shows an event that another client causes, over a same-origin WebSocket', async () => {
    const subscription = 'subscription Watch { customerEvents(types: ["customer_created"]) { type data } }';
    await replaceEditorText(page, QUERY_EDITOR, subscription);
    await waitForEditorText(page, QUERY_EDITOR, (t) => t.replace(/\s+/g, ' ').includes('customerEvents'), 'the subscription was not typed');
    await page.locator('button.graphiql-execute-button:not([aria-haspopup])').click();
    // The subscription is live once an event caused after it shows up.
    const deadline = Date.now() + STEP_TIMEOUT_MS - 3_000;
    let username = null;
    let text = '';
    while (Date.now() < deadline) {
      username = `browser-${randomBytes(4).toString('hex')}`;
      const created = await fetch(`${origin}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } } }',
          variables: { input: { username, password: 'browser-password-1' } },
        }),
      });
      const body = await created.json();
      assert(body?.data?.createCustomer?.customer?.id, `createCustomer answered ${JSON.stringify(body).slice(0, 300)}`);
      await sleep(700);
      text = await editorText(page, RESULT_PANE);
      if (text.includes('"customer_created"')) break;
    }
    assert(text.includes('"customer_created"') && text.includes('"username"'), `the result pane shows: ${text.slice(0, 300)}`);
    const expected = `${origin.replace(/^http/, 'ws')}/graphql`;
    assert(sockets.length > 0 && sockets.every((url) => url === expected), `WebSockets: ${sockets.join(', ')}`);
  });

  await step('every request stayed on the server\'s origin', async () => {
    assert(requests.length > 0, 'no request was recorded');
    assert(offOrigin.length === 0, `requests left ${origin}: ${offOrigin.join(', ')}`);
    const kinds = [...new Set(requests.map((u) => new URL(u).pathname.split('/').pop() || '/'))];
    log(`${requests.length} requests, all to ${origin}: ${kinds.join(', ')}`);
  });

  await step('no Content-Security-Policy violation and no page error', async () => {
    assert(problems.length === 0, problems.slice(0, 5).join('; '));
  });

  // The GraphQL-over-HTTP audit of graphql-http (the reference
  // implementation of the spec): every MUST and SHOULD; MAYs are reported.
  await step('every MUST and SHOULD of the graphql-http server audit passes', async () => {
    const failures = [];
    const notices = [];
    for (const audit of serverAudits({ url: `${origin}/graphql` })) {
      const result = await audit.fn();
      if (result.status === 'error') failures.push(`${audit.name}: ${result.reason}`);
      if (result.status === 'warn') failures.push(`${audit.name}: ${result.reason}`);
      if (result.status === 'notice') notices.push(audit.name);
    }
    log(`graphql-http audit: ${failures.length} failed; MAY not taken: ${notices.join('; ') || 'none'}`);
    assert(failures.length === 0, failures.slice(0, 5).join('; '));
  });
}

// ---------------------------------------------------------------- run it

let fatal = null;
const cleanupOnSignal = async (signal) => {
  log(`${signal}: cleaning up`);
  await browser?.close().catch(() => {});
  await stopServer();
  dropDatabase();
  process.exit(130);
};
process.once('SIGINT', cleanupOnSignal);
process.once('SIGTERM', cleanupOnSignal);

try {
  await main();
} catch (error) {
  fatal = error;
  log(`error: ${error.message}`);
} finally {
  await browser?.close().catch(() => {});
  await stopServer();
  if (server) {
    const dropped = dropDatabase();
    if (dropped) log(`stopped the server and dropped database ${database}`);
  }
}

const passed = results.filter((r) => r.status === 'passed').length;
const failed = results.filter((r) => r.status === 'failed').length + (fatal ? 1 : 0);
const skipped = results.filter((r) => r.status === 'skipped').length;
if (failed > 0 || process.env.KEEP_SERVER_LOG === '1') {
  let serverLog = '';
  try {
    serverLog = readFileSync(serverLogPath, 'utf8');
  } catch {
    // never started
  }
  if (serverLog.trim()) {
    console.log(`--- server log (${serverLogPath}), last lines:`);
    console.log(serverLog.trim().split('\n').slice(-30).join('\n'));
    console.log('---');
  }
}
if (results.some((r) => r.name.startsWith('{ me') && r.status === 'passed')) {
  log(`screenshots: ${startScreenshotPath} (as opened), ${screenshotPath} (after the run)`);
} else if (failed === 0 && !fatal) {
  rmSync(workDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
