#!/usr/bin/env node
// An independent verifier of seized's hash chain (format 2) and evidence packages, written from the
// format's description alone: Node.js 18 or later, its standard library only, no network.
//
//   node verify.js package DIR --public-key HEX [--public-key HEX ...]
//       an unzipped evidence package: the manifest's signature by a pinned key, every file's SHA-256,
//       every row's hash recomputed from its record, the chain from the first row to the signed head
//   node verify.js log HITS.jsonl [--checkpoints WITNESS.jsonl] [--public-key HEX ...]
//       hits as the API gives them (one JSON object per line, any order), each node's chain from its
//       first hit, and the checkpoints (a witness file's lines) against it
//   node verify.js vectors chain-v2.json
//       the published test vectors
//
// Exit status 0: everything checked; 1: something failed (each failure is printed); 2: bad usage.
//
// Format 2: leaf = SHA-256(canonical record); hash = SHA-256(prev_hash || leaf), both in lower-case
// hex ASCII. The canonical record is the JSON array [2, value of each field in FIELDS order], no
// whitespace; integers only (the duration in whole microseconds); strings escaped as JSON.stringify
// does; null for an absent value; headers an array of [name, value]; device an object with its keys
// in code point order.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const FIELDS = ['uid', 'received_at', 'node', 'host', 'domain', 'scheme', 'method', 'path', 'query', 'http_version',
  'client_ip', 'client_port', 'peer_ip', 'peer_port', 'server_ip', 'server_port', 'headers', 'user_agent',
  'body_size', 'body_sha256', 'status', 'duration_us', 'error', 'client_kind', 'account', 'device', 'password_hmac',
  'country', 'city', 'asn', 'as_org'];
const GENESIS = '0'.repeat(64);
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const failures = [];
const fail = (message) => { failures.push(message); console.log('FAIL ' + message); };

function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0)), y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function encode(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error('not an integer: ' + value);
    return String(value);
  }
  if (Array.isArray(value)) return '[' + value.map(encode).join(',') + ']';
  if (typeof value === 'object') {
    return '{' + Object.keys(value).sort(byCodePoint).map((k) => JSON.stringify(k) + ':' + encode(value[k])).join(',') + '}';
  }
  throw new Error('a value the format does not hold: ' + value);
}

function canonical(record) {
  const values = FIELDS.map((name) => name === 'duration_us' ? Math.round(record.duration_ms * 1000) : record[name]);
  return '[2,' + values.map(encode).join(',') + ']';
}

const leafOf = (record) => sha256(Buffer.from(canonical(record), 'utf8'));
const link = (prev, leaf) => sha256(Buffer.from(prev + leaf, 'ascii'));

// A checkpoint's signed message: canonical JSON of {at, clock (where it has one), count, head, last_id, node}.
function checkpointMessage(cp) {
  const fields = { at: cp.at };
  if (cp.clock !== null && cp.clock !== undefined) fields.clock = cp.clock;
  Object.assign(fields, { count: cp.count, head: cp.head, last_id: cp.last_id, node: cp.node });
  return Buffer.from(JSON.stringify(fields), 'utf8');
}

function signedBy(publicKeyHex, message, signatureHex) {
  try {
    const key = crypto.createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(publicKeyHex, 'hex')]),
      format: 'der', type: 'spki',
    });
    return crypto.verify(null, message, key, Buffer.from(signatureHex, 'hex'));
  } catch (error) {
    return false;
  }
}

function checkCheckpoint(cp, pinned, what) {
  if (!cp.signature) return fail(`${what}: unsigned`);
  if (!signedBy(cp.public_key || '', checkpointMessage(cp), cp.signature)) return fail(`${what}: invalid signature`);
  if (pinned.length && !pinned.includes(cp.public_key)) fail(`${what}: signed by a key that is not pinned (${cp.public_key})`);
}

function jsonLines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

// RFC 4180, as Python's csv module writes it.
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false, i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    field += c; i++;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// hits.csv as seized writes it: a text cell a spreadsheet would evaluate (beginning with =, +, -, @,
// tab or CR) holds a single quote before the text (OWASP's rule); numbers are written as they are.
function csvCell(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' && /^[=+\-@\t\r]/.test(value) ? "'" + value : String(value);
}

function verifyPackage(dir, pinned) {
  if (!pinned.length) { console.log('usage: a package is checked against a pinned key: --public-key HEX'); process.exit(2); }
  const read = (name) => fs.readFileSync(path.join(dir, name));
  const manifestBytes = read('manifest.json');
  const manifest = JSON.parse(manifestBytes.toString('utf8'));
  let signature = '';
  try { signature = read('manifest.sig').toString('ascii').trim(); } catch (error) { fail('manifest.sig is missing: the package is not signed'); }
  if (signature) {
    const by = pinned.find((key) => signedBy(key, manifestBytes, signature));
    if (!by) fail('manifest.json is not signed by a pinned key (edited, or another signer)');
    else console.log(`manifest.json signed by ${by}`);
  }
  for (const [name, digest] of Object.entries(manifest.files)) {
    let data = null;
    try { data = read(name); } catch (error) { fail(`${name}: listed in the manifest but missing`); continue; }
    if (sha256(data) !== digest) fail(`${name}: its SHA-256 differs from the manifest's`);
  }
  const own = ['manifest.json', 'manifest.sig', 'manifest.tsr'];
  for (const name of fs.readdirSync(dir)) {
    if (!(name in manifest.files) && !own.includes(name)) fail(`${name}: in the package but not in the manifest`);
  }
  const records = jsonLines(path.join(dir, 'records.jsonl'));
  if (records.length !== manifest.rows) fail(`records.jsonl holds ${records.length} rows, the manifest says ${manifest.rows}`);
  const csv = parseCsv(read('hits.csv').toString('utf8'));
  const header = csv.shift() || [];
  if (csv.length !== records.length) fail(`hits.csv holds ${csv.length} rows, records.jsonl ${records.length}`);
  const column = Object.fromEntries(header.map((name, i) => [name, i]));
  csv.forEach((row, i) => {
    const r = records[i] || {};
    const expected = { client_ip: r.client_ip, client_port: r.client_port, timestamp_utc: manifest.package_format === 1 ? (r.received_at || '').slice(0, 23) + 'Z' : r.received_at,
      server_ip: r.server_ip, node: r.node, position: r.position, id: r.id, uid: r.uid, prev_hash: r.prev_hash, hash: r.hash };
    for (const [name, value] of Object.entries(expected)) {
      if (row[column[name]] !== csvCell(value)) {
        fail(`hits.csv row ${i + 1}: ${name} differs from its record`);
      }
    }
  });
  let format1 = 0;
  for (const chain of manifest.chains) {
    const leaves = read(chain.leaves).toString('ascii').split('\n').filter((l) => l);
    if (leaves.length !== chain.last_position - chain.first_position + 1) fail(`${chain.leaves}: ${leaves.length} leaves for positions ${chain.first_position}..${chain.last_position}`);
    const rows = new Map(records.filter((r) => r.node === chain.node).map((r) => [r.position, r]));
    if (!chain.proof_start) { format1 += rows.size; continue; }
    let prev = chain.proof_start.prev_hash;
    for (let position = chain.proof_start.position; position <= chain.last_position; position++) {
      const leaf = leaves[position - chain.first_position];
      const record = rows.get(position);
      if (record) {
        let own = null;
        try { own = leafOf(record); } catch (error) { fail(`row id ${record.id}: ${error.message}`); }
        if (own !== leaf) fail(`row id ${record.id} (node ${chain.node}, position ${position}): its record does not hash to the chain's leaf: edited`);
        if (record.prev_hash !== prev) fail(`row id ${record.id}: prev_hash is not the chain's`);
      }
      prev = link(prev, leaf);
      if (record && record.hash !== prev) fail(`row id ${record.id}: hash is not the chain's`);
    }
    for (const [position] of rows) if (position < chain.proof_start.position) format1 += 1;
    if (prev !== chain.head) fail(`node ${chain.node}: the chain ends at ${prev}, the manifest says ${chain.head}`);
    const cp = chain.covering_checkpoint;
    if (cp) {
      if (cp.count !== chain.last_position || cp.head !== prev) fail(`node ${chain.node}: the covering checkpoint is not where the chain ends`);
      checkCheckpoint(cp, pinned, `node ${chain.node}: covering checkpoint`);
    }
    console.log(`node ${chain.node}: ${chain.rows} rows, chain positions ${chain.first_position}..${chain.last_position}, head ${prev}` +
      (cp ? `, covered by the checkpoint of ${cp.at}` : ', covered by the signed manifest (no checkpoint yet)'));
  }
  if (format1) console.log(`note: ${format1} rows are in chain format 1 (stored before seized had format 2): only the manifest's signature covers them here`);
  console.log(`${records.length} rows`);
}

function verifyLog(file, witness, pinned) {
  const nodes = new Map();
  for (const hit of jsonLines(file)) {
    if (!nodes.has(hit.node)) nodes.set(hit.node, []);
    nodes.get(hit.node).push(hit);
  }
  const checkpoints = witness ? jsonLines(witness) : [];
  for (const [node, hits] of nodes) {
    hits.sort((a, b) => a.id - b.id);
    let prev = GENESIS;
    const heads = new Map();
    hits.forEach((hit, i) => {
      if (hit.prev_hash !== prev) fail(`node ${node}: hit ${hit.id}: prev_hash does not match the hit before it`);
      let leaf = null;
      try { leaf = leafOf(hit); } catch (error) { fail(`node ${node}: hit ${hit.id}: ${error.message}`); }
      if (link(hit.prev_hash, leaf) !== hit.hash) fail(`node ${node}: hit ${hit.id}: does not match its hash`);
      prev = hit.hash;
      heads.set(i + 1, [hit.hash, hit.id]);
    });
    let checked = 0;
    for (const cp of checkpoints.filter((c) => c.node === node)) {
      const at = heads.get(cp.count);
      if (!at) fail(`node ${node}: the chain ends before the checkpoint at position ${cp.count}`);
      else if (at[0] !== cp.head || at[1] !== cp.last_id) fail(`node ${node}: the chain differs from the checkpoint at position ${cp.count}`);
      checkCheckpoint(cp, pinned, `node ${node}: checkpoint at ${cp.count}`);
      checked += 1;
    }
    console.log(`node ${node}: ${hits.length} hits, head ${prev}, ${checked} checkpoints`);
  }
}

function verifyVectors(file, pinned) {
  const vectors = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (vectors.format !== 2 || JSON.stringify(vectors.fields) !== JSON.stringify(FIELDS)) fail('the vectors are for another field list');
  let prev = vectors.genesis;
  for (const hit of vectors.hits) {
    const text = canonical(hit.record);
    if (text !== hit.canonical) fail(`position ${hit.position}: canonical bytes differ:\n  ours   ${text}\n  theirs ${hit.canonical}`);
    if (leafOf(hit.record) !== hit.leaf) fail(`position ${hit.position}: leaf differs`);
    if (hit.prev_hash !== prev || link(prev, hit.leaf) !== hit.hash) fail(`position ${hit.position}: hash differs`);
    prev = hit.hash;
  }
  const cp = vectors.checkpoint;
  if (checkpointMessage(cp).toString('utf8') !== cp.message) fail('the checkpoint message differs');
  if (cp.head !== prev || cp.count !== vectors.hits.length) fail('the checkpoint does not cover the vectors');
  checkCheckpoint(cp, pinned.length ? pinned : [cp.public_key], 'checkpoint');
  console.log(`${vectors.hits.length} hits and a checkpoint`);
}

function main(argv) {
  const [mode, target, ...rest] = argv;
  const pinned = [];
  let witness = null;
  for (let i = 0; i < rest.length; i += 2) {
    if (rest[i] === '--public-key' && /^[0-9a-fA-F]{64}$/.test(rest[i + 1] || '')) pinned.push(rest[i + 1].toLowerCase());
    else if (rest[i] === '--checkpoints' && rest[i + 1]) witness = rest[i + 1];
    else { console.log(`unknown or bad option: ${rest[i]} ${rest[i + 1] || ''}`); process.exit(2); }
  }
  if (!target || !['package', 'log', 'vectors'].includes(mode)) {
    console.log('usage: node verify.js package DIR --public-key HEX | log HITS.jsonl [--checkpoints FILE] | vectors FILE');
    process.exit(2);
  }
  try {
    if (mode === 'package') verifyPackage(target, pinned);
    else if (mode === 'log') verifyLog(target, witness, pinned);
    else verifyVectors(target, pinned);
  } catch (error) {
    fail(`cannot check ${target}: ${error.message}`);
  }
  console.log(failures.length ? `FAILED: ${failures.length} problems` : 'OK');
  process.exit(failures.length ? 1 : 0);
}

main(process.argv.slice(2));
