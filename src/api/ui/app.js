// The auditor web view of notarium's register (docs/API.md, The auditor web view).
//
// Rules this file keeps: every value from the API is put in the page as text (createTextNode / textContent),
// never parsed as markup; the only links are to this page's own routes (#/...) with the value URI-encoded;
// requests go to this origin only, with the token from sessionStorage in the Authorization header. Inclusion
// proofs (RFC 9162) and checkpoint signatures (C2SP signed note, Ed25519) are checked here with WebCrypto
// against the log key the auditor pins; nothing the server says about them is taken on trust.
'use strict';

const TOKEN = 'notarium.token';
const LOG_KEY = 'notarium.logkey';
const PAGE = 100;
/// How many entries the view reads itself when the server has no search route.
const FALLBACK_WINDOW = 1000;
const FILTERS = ['digest', 'repository', 'key', 'key_version', 'kind', 'actor', 'from', 'to'];

// ---------------------------------------------------------------------------------------------------------
// Building the page: elements with text children only.

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'href') node.setAttribute('href', localHref(String(value)));
    else if (name === 'class') node.className = String(value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// Links go to this page's routes only: anything else becomes a dead link.
function localHref(href) {
  return href.startsWith('#/') ? href : '#/';
}

function text(value) {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function show(...nodes) {
  const main = document.getElementById('main');
  main.replaceChildren(...nodes.flat());
}

function entryLink(index) {
  const n = Number(index);
  return el('a', { href: `#/entry/${n}`, class: 'mono' }, `#${n}`);
}

function imageLink(digest) {
  if (!digest) return '';
  return el('a', { href: `#/image/${encodeURIComponent(digest)}`, class: 'mono' }, digest);
}

function table(headings, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c))))));
}

function failure(error) {
  return el('p', { class: 'error' }, `Failed: ${error && error.message ? error.message : String(error)}`);
}

// ---------------------------------------------------------------------------------------------------------
// The API, with the token.

class ApiFailure extends Error {
  constructor(status, slug, message) {
    super(message);
    this.status = status;
    this.slug = slug;
  }
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
  if (!response.ok) {
    let slug = '';
    let message = `${response.status}`;
    try {
      const problem = await response.json();
      slug = text(problem.type).split('/').pop();
      message = `${response.status} ${text(problem.title)}${problem.detail ? `: ${text(problem.detail)}` : ''}`;
    } catch (_) { /* not a problem document */ }
    throw new ApiFailure(response.status, slug, message);
  }
  return response;
}

async function apiJson(path) {
  return (await api(path)).json();
}

// ---------------------------------------------------------------------------------------------------------
// Bytes, hashes, signatures.

const utf8 = new TextEncoder();

function hexToBytes(hex) {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function base64ToBytes(b64) {
  const binary = atob(b64.trim());
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/// RFC 8785 canonical JSON of a value parsed from an entry: keys sorted by UTF-16 code units (JavaScript's
/// default sort), strings and numbers as JSON.stringify writes them (entries hold only exact integers).
function canonical(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

async function leafHash(entry) {
  return sha256(concat(new Uint8Array([0]), utf8.encode(canonical(entry))));
}

async function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

/// The root an RFC 9162 inclusion proof leads to (§2.1.3.2), or null when the proof does not fit the index
/// and size.
async function rootFromInclusionProof(index, size, leaf, proof) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) return null;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/// A C2SP checkpoint in a signed note: its body, origin, size, root and signature lines.
function parseCheckpoint(note) {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint has no signature block');
  const body = note.slice(0, split + 1);
  const [origin, size, root] = body.split('\n');
  if (!/^[0-9]+$/.test(size || '')) throw new Error('the checkpoint size is not a number');
  const signatures = note.slice(split + 2).split('\n').filter((l) => l !== '').map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) throw new Error('a signature line is malformed');
    return { name: match[1], bytes: base64ToBytes(match[2]) };
  });
  return { body, origin, size: BigInt(size), root: base64ToBytes(root), signatures };
}

/// The pinned log key: a note verifier key `name+hexid+base64(0x01 || key)` or an Ed25519 public key PEM.
function parseLogKey(pinned) {
  const trimmed = pinned.trim();
  if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    const der = base64ToBytes(trimmed.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
    const prefix = hexToBytes('302a300506032b6570032100');
    if (der.length !== 44 || !equal(der.slice(0, 12), prefix)) throw new Error('the PEM is not an Ed25519 public key');
    return { name: null, id: null, key: der.slice(12) };
  }
  const parts = trimmed.split('+');
  if (parts.length !== 3) throw new Error('not a verifier key name+id+key nor a PEM public key');
  const data = base64ToBytes(parts[2]);
  if (data.length !== 33 || data[0] !== 1) throw new Error('the verifier key is not an Ed25519 note key');
  return { name: parts[0], id: hexToBytes(parts[1]), key: data.slice(1) };
}

async function noteKeyId(name, key) {
  return (await sha256(concat(utf8.encode(name), new Uint8Array([0x0a, 0x01]), key))).slice(0, 4);
}

/// Whether the checkpoint carries a valid Ed25519 signature by the pinned key, named as its origin.
async function checkpointSignedBy(checkpoint, pinned) {
  const key = parseLogKey(pinned);
  const name = key.name === null ? checkpoint.origin : key.name;
  if (name !== checkpoint.origin) return { ok: false, why: 'the pinned key is for another log origin' };
  const id = await noteKeyId(name, key.key);
  if (key.id !== null && !equal(id, key.id)) return { ok: false, why: 'the pinned key id does not match its key' };
  const publicKey = await crypto.subtle.importKey('raw', key.key, { name: 'Ed25519' }, false, ['verify']);
  for (const s of checkpoint.signatures) {
    if (s.name !== name || s.bytes.length !== 68 || !equal(s.bytes.slice(0, 4), id)) continue;
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, s.bytes.slice(4), utf8.encode(checkpoint.body));
    return ok ? { ok: true } : { ok: false, why: 'the signature by the pinned key does not verify' };
  }
  return { ok: false, why: 'no signature by the pinned key' };
}

// ---------------------------------------------------------------------------------------------------------
// Reading entries: the search route, or the newest entries filtered here when the server has none.

function matches(entry, filters) {
  const subject = entry.subject || {};
  const details = entry.details || {};
  const keyVersion = details.key_version ?? (String(entry.kind).startsWith('key-') ? subject.version : undefined);
  const checks = {
    digest: subject.digest,
    repository: subject.repository,
    key: details.key ?? subject.key,
    key_version: keyVersion,
    kind: entry.kind,
    actor: (entry.actor || {}).name,
  };
  for (const [name, value] of Object.entries(checks)) {
    if (filters[name] && text(value) !== filters[name]) return false;
  }
  const time = Date.parse(entry.time);
  if (filters.from && !(time >= Date.parse(filters.from))) return false;
  if (filters.to && !(time < Date.parse(filters.to))) return false;
  return true;
}

async function treeSize() {
  const note = await (await api('/v1/log/checkpoint')).text();
  return parseCheckpoint(note).size;
}

/// One page of entries, newest first: `{entries, next_cursor, fallback}`.
async function search(filters, cursor) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name]);
  if (cursor) query.set('cursor', cursor);
  query.set('limit', String(PAGE));
  try {
    return await apiJson(`/v1/log/search?${query}`);
  } catch (error) {
    if (!(error instanceof ApiFailure && error.status === 404 && error.slug === 'no-such-route')) throw error;
  }
  const size = await treeSize();
  const start = size > BigInt(FALLBACK_WINDOW) ? size - BigInt(FALLBACK_WINDOW) : 0n;
  const page = await apiJson(`/v1/log/entries?start=${start}&end=${size}`);
  const entries = page.entries.filter((e) => matches(e.entry || {}, filters)).reverse();
  return { entries, next_cursor: null, fallback: true };
}

/// Every entry matching `filters`, following cursors up to `pages` pages.
async function searchAll(filters, pages = 10) {
  let found = [];
  let cursor = null;
  for (let i = 0; i < pages; i += 1) {
    const page = await search(filters, cursor);
    found = found.concat(page.entries);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// What an entry says, in a line.

function subjectOf(entry) {
  const s = entry.subject || {};
  if (s.digest !== undefined) return [text(s.repository), ' ', imageLink(text(s.digest))];
  if (s.key !== undefined) return `${text(s.key)} v${text(s.version)}`;
  if (s.policy !== undefined) return `${text(s.policy)} ${text(s.version)}`;
  if (s.token !== undefined) return `token ${text(s.token)}`;
  if (s.route !== undefined) return text(s.route);
  return text(s);
}

function summaryOf(entry) {
  const d = entry.details || {};
  switch (entry.kind) {
    case 'verify':
      return el('span', { class: d.allowed ? 'ok' : 'bad' },
        d.allowed ? 'allowed' : 'DENIED', d.reasons && d.reasons.length ? `: ${d.reasons.map(text).join('; ')}` : '');
    case 'sign': return `key ${text(d.key)} v${text(d.key_version)}, identity ${text(d.identity)}`;
    case 'attest': return `predicate ${text(d.predicate_type)}, key ${text(d.key)} v${text(d.key_version)}`;
    case 'request-denied': return `${text(d.reason)} (×${text(d.count)})`;
    default:
      if (String(entry.kind).startsWith('registry-')) return `tag ${text(d.tag)} ${text(d.media_type)}`;
      return '';
  }
}

function entryRows(found) {
  return found.map((e) => {
    const entry = e.entry || {};
    return [entryLink(e.index), text(entry.time), text(entry.kind), text((entry.actor || {}).name),
      subjectOf(entry), summaryOf(entry)];
  });
}

const ENTRY_HEADINGS = ['Index', 'Time', 'Kind', 'Actor', 'Subject', 'What'];

// ---------------------------------------------------------------------------------------------------------
// Pages.

function signinPage() {
  const token = el('input', { type: 'password', name: 'token', autocomplete: 'off', id: 'token' });
  const logKey = el('textarea', { name: 'logkey', rows: 5, id: 'logkey' });
  logKey.value = localStorage.getItem(LOG_KEY) || '';
  const status = el('p', { id: 'signin-status' });
  const form = el('form', { class: 'stack', id: 'signin' },
    el('label', {}, 'Auditor or admin token', token),
    el('label', {}, 'Log key you hold (a note verifier key name+id+key, or the Ed25519 PEM); kept in this browser',
      logKey),
    el('button', { type: 'submit' }, 'Sign in'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    localStorage.setItem(LOG_KEY, logKey.value.trim());
    if (logKey.value.trim()) {
      try { parseLogKey(logKey.value); } catch (error) { status.textContent = `Log key: ${error.message}`; return; }
    }
    sessionStorage.setItem(TOKEN, token.value.trim());
    try {
      await apiJson('/v1/log/entries?start=0&end=0');
      status.textContent = 'Signed in.';
      location.hash = '#/timeline';
    } catch (error) {
      sessionStorage.removeItem(TOKEN);
      status.textContent = `Refused: ${error.message}`;
    }
  });
  const signOut = el('button', { type: 'button', id: 'signout' }, 'Sign out');
  signOut.addEventListener('click', () => { sessionStorage.removeItem(TOKEN); status.textContent = 'Signed out.'; whoAmI(); });
  show(el('h1', {}, 'Sign in'), form, el('p', {}, signOut),
    el('p', { class: 'note' }, 'The token stays in this tab (sessionStorage) and is sent only to this server.'));
}

function filtersFrom(params) {
  const filters = {};
  for (const name of FILTERS) if (params.get(name)) filters[name] = params.get(name);
  return filters;
}

async function timelinePage(params) {
  const filters = filtersFrom(params);
  const inputs = FILTERS.map((name) => {
    const input = el('input', { name, id: `filter-${name}`, placeholder: name === 'from' || name === 'to' ? 'RFC 3339' : '' });
    input.value = filters[name] || '';
    return el('label', {}, name.replace('_', ' '), input);
  });
  const form = el('form', { class: 'filters', id: 'filters' }, inputs, el('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    location.hash = `#/timeline?${query}`;
  });
  const results = el('div', { id: 'results' }, el('p', {}, 'Searching…'));
  show(el('h1', {}, 'Timeline'), form, results);
  let cursor = null;
  const rows = [];
  const more = el('button', { type: 'button', id: 'more' }, 'More');
  const load = async () => {
    try {
      const page = await search(filters, cursor);
      rows.push(...entryRows(page.entries));
      cursor = page.next_cursor;
      const note = page.fallback
        ? el('p', { class: 'note', id: 'fallback' }, `This server has no search route: the newest ${FALLBACK_WINDOW} entries, filtered here.`)
        : '';
      results.replaceChildren(note, el('p', {}, `${rows.length} entries, newest first`),
        table(ENTRY_HEADINGS, rows), cursor ? more : '');
    } catch (error) {
      results.replaceChildren(failure(error));
    }
  };
  more.addEventListener('click', load);
  await load();
}

async function entryPage(index) {
  show(el('h1', {}, `Entry #${index}`), el('p', {}, 'Checking…'));
  try {
    const page = await apiJson(`/v1/log/entries?start=${index}&end=${index + 1n}`);
    if (!page.entries.length) throw new Error('the register has no such entry');
    const { entry, leaf_hash: servedLeaf } = page.entries[0];
    const note = await (await api('/v1/log/checkpoint')).text();
    const checkpoint = parseCheckpoint(note);
    const checks = [];
    const leaf = await leafHash(entry);
    checks.push([bytesToHex(leaf) === text(servedLeaf), 'leaf hash computed here from the entry equals the one served']);
    const pinned = localStorage.getItem(LOG_KEY) || '';
    let signed = { ok: false, why: 'no log key pinned (Sign in / log key)' };
    if (pinned) {
      try { signed = await checkpointSignedBy(checkpoint, pinned); } catch (error) { signed = { ok: false, why: error.message }; }
    }
    checks.push([signed.ok, signed.ok ? `checkpoint signed by the pinned log key (${checkpoint.origin})` : `checkpoint signature: ${signed.why}`]);
    let included = false;
    if (index < checkpoint.size) {
      const proof = await apiJson(`/v1/log/proof/inclusion?index=${index}&tree_size=${checkpoint.size}`);
      const root = await rootFromInclusionProof(index, checkpoint.size, leaf, proof.hashes.map(hexToBytes));
      included = root !== null && equal(root, checkpoint.root);
    }
    checks.push([included, `inclusion proof leads to the checkpoint's root (tree size ${checkpoint.size})`]);
    const verified = checks.every(([ok]) => ok);
    const verdict = el('p', { class: `verdict ${verified ? 'verified' : 'not-verified'}`, id: 'verdict' },
      verified ? 'Verified' : 'NOT verified');
    const list = el('ul', { class: 'checks' },
      checks.map(([ok, what]) => el('li', { class: ok ? 'ok' : 'bad' }, ok ? '✓ ' : '✗ ', what)));
    const s = entry.subject || {};
    show(el('h1', {}, `Entry #${index}: ${text(entry.kind)}`), verdict, list,
      table(['Field', 'Value'], [
        ['Time', text(entry.time)], ['Actor', text((entry.actor || {}).name)],
        ['Subject', subjectOf(entry)], ['What', summaryOf(entry)],
      ]),
      s.digest ? el('p', {}, 'Everything about this image: ', imageLink(text(s.digest))) : '',
      el('h2', {}, 'The entry as recorded'), el('pre', { id: 'entry-json' }, JSON.stringify(entry, null, 2)),
      el('h2', {}, 'Checkpoint'), el('pre', {}, note));
  } catch (error) {
    show(el('h1', {}, `Entry #${index}`), failure(error));
  }
}

async function imagePage(digest) {
  show(el('h1', {}, 'Image ', el('span', { class: 'mono' }, digest)), el('p', {}, 'Reading…'));
  try {
    const found = (await searchAll({ digest })).slice().reverse();
    const of = (...kinds) => found.filter((e) => kinds.includes((e.entry || {}).kind));
    const section = (title, entries) => [el('h2', {}, `${title} (${entries.length})`),
      entries.length ? table(ENTRY_HEADINGS, entryRows(entries)) : el('p', { class: 'note' }, 'None.')];
    const pulls = of('registry-pull');
    const decisions = of('verify');
    const findings = [];
    if (pulls.length && !decisions.length) findings.push('pulled but never verified');
    const denied = decisions.filter((d) => !(d.entry.details || {}).allowed);
    if (denied.length && pulls.some((p) => denied.some((d) => d.index < p.index))) findings.push('pulled after a denial');
    show(el('h1', {}, 'Image ', el('span', { class: 'mono' }, digest)),
      findings.length ? el('p', { class: 'bad', id: 'findings' }, `Findings: ${findings.join('; ')}`) : '',
      section('Signatures', of('sign')), section('Attestations', of('attest')),
      section('Verify and admission decisions', decisions),
      section('Registry events', of('registry-push', 'registry-pull', 'registry-delete', 'registry-mount')));
  } catch (error) {
    show(el('h1', {}, 'Image'), failure(error));
  }
}

async function keysPage() {
  show(el('h1', {}, 'Keys'), el('p', {}, 'Reading…'));
  try {
    const { keys } = await apiJson('/v1/keys');
    const changes = (await searchAll({ kind: 'key-added' })).concat(await searchAll({ kind: 'key-rotated' }));
    const rows = [];
    for (const key of keys) {
      const signed = (await searchAll({ kind: 'sign', key: text(key.id), key_version: text(key.version) }, 5))
        .concat(await searchAll({ kind: 'attest', key: text(key.id), key_version: text(key.version) }, 5));
      const digests = [...new Set(signed.map((e) => text((e.entry.subject || {}).digest)))];
      const logged = changes.filter((c) => text((c.entry.subject || {}).key) === text(key.id)
        && text((c.entry.subject || {}).version) === text(key.version));
      rows.push([text(key.id), text(key.version), text(key.algorithm), text(key.backend),
        logged.map((c) => [entryLink(c.index), ` ${text(c.entry.kind)} `]),
        `${digests.length}`, digests.map((d) => el('div', {}, imageLink(d)))]);
    }
    show(el('h1', {}, 'Keys'), table(['Key', 'Version', 'Algorithm', 'Backend', 'Added / rotated', 'Images', 'Digests'], rows),
      el('h2', {}, 'Rotations and additions'), table(ENTRY_HEADINGS, entryRows(changes.sort((a, b) => b.index - a.index))));
  } catch (error) {
    show(el('h1', {}, 'Keys'), failure(error));
  }
}

function evidencePage() {
  const from = el('input', { name: 'from', id: 'evidence-from', placeholder: 'RFC 3339, e.g. 2026-11-01T00:00:00Z' });
  const to = el('input', { name: 'to', id: 'evidence-to', placeholder: 'RFC 3339 (exclusive)' });
  const status = el('p', { id: 'evidence-status' });
  const form = el('form', { class: 'stack', id: 'evidence' },
    el('label', {}, 'From', from), el('label', {}, 'To', to), el('button', { type: 'submit' }, 'Download the evidence pack'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (from.value.trim()) query.set('from', from.value.trim());
    if (to.value.trim()) query.set('to', to.value.trim());
    status.textContent = 'Preparing…';
    try {
      const blob = await (await api(`/v1/evidence?${query}`)).blob();
      const url = URL.createObjectURL(blob);
      const link = el('a', { id: 'evidence-file', download: 'evidence.zip' }, 'evidence.zip');
      link.href = url;
      status.replaceChildren(`Ready (${blob.size} bytes): `, link);
      link.click();
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  });
  show(el('h1', {}, 'Evidence pack'), form,
    el('p', { class: 'note' }, 'The pack holds the period\'s entries with proofs, checkpoints, keys, policies and the report; check it offline with notarium evidence verify.'));
}

// ---------------------------------------------------------------------------------------------------------
// Routing.

function whoAmI() {
  const who = document.getElementById('who');
  const pinned = localStorage.getItem(LOG_KEY) ? 'log key pinned' : 'no log key pinned';
  who.textContent = `${sessionStorage.getItem(TOKEN) ? 'signed in' : 'not signed in'} · ${pinned}`;
}

async function route() {
  document.body.setAttribute('data-loading', 'true');
  try {
    await render();
  } finally {
    document.body.removeAttribute('data-loading');
  }
}

/// The page the location names; a page is drawn when this returns (tests wait for body:not([data-loading])).
async function render() {
  whoAmI();
  const hash = location.hash.replace(/^#/, '') || '/timeline';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  document.body.setAttribute('data-page', parts[0] || 'timeline');
  if (!sessionStorage.getItem(TOKEN) && parts[0] !== 'signin') {
    document.body.setAttribute('data-page', 'signin');
    signinPage();
    return;
  }
  switch (parts[0]) {
    case 'signin': signinPage(); break;
    case 'entry':
      if (/^[0-9]+$/.test(parts[1] || '')) await entryPage(BigInt(parts[1]));
      else show(failure(new Error('no such entry')));
      break;
    case 'image': await imagePage(decodeURIComponent(parts.slice(1).join('/'))); break;
    case 'keys': await keysPage(); break;
    case 'evidence': evidencePage(); break;
    default: await timelinePage(params);
  }
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', route);
