// taskflow test S3 server: s3rver 3.7.1 wrapped to
//  - verify AWS SigV4 (header auth) for real, with our own key pair and buckets;
//  - flush objects/parts to disk before answering (s3rver 3.7.1 answers early);
//  - check Content-MD5 like S3 does (400 InvalidDigest / BadDigest, and the
//    object or part is not kept; plain s3rver ignores the header);
//  - implement AbortMultipartUpload (plain s3rver answers 405) and
//    ListMultipartUploads (GET /bucket?uploads&prefix=P; plain s3rver: NotImplemented);
//  - complete a multipart upload as S3 does (part list checks, multipart ETag
//    "<md5 of the part md5s>-<N>") without re-reading or re-hashing the parts
//    (putObjectMultipart below);
//  - S3_TIMING=1: one stderr line per request (wall ms, server CPU ms);
//  - inject faults at run time through an admin endpoint that needs no auth:
//      POST /__faults  {"status": 500|503|429|..., "count": N, "after": M,
//                       "match": "PUT" | "<substring of 'METHOD url'>",
//                       "delay_ms": D, "drop": N}
//        answer the next N matching requests (after skipping M) with that
//        status (503 -> SlowDown XML), or delay them D ms (then answer normally,
//        or with the status if given), or destroy the socket without answering
//        (drop: N is shorthand for count N), or answer normally but cut the
//        body to T bytes ("truncate": T), or flip the first byte of the
//        request body as it is stored ("corrupt": true: a body damaged in
//        transit, caught by Content-MD5 -> 400 BadDigest).  Several rules may
//        be active.
//      DELETE /__faults          clear all rules
//      GET /__stats              {"methods": {"PUT": n, ...}, "total": n, "faults": n,
//                                 "aborts": n, "log": ["PUT /b/k?partNumber=1... 200", ...],
//                                 "auth": [{"req": "PUT /b/k...", "payload": "UNSIGNED-PAYLOAD" | hex,
//                                           "signed": "content-md5;host;...", "md5": "<Content-MD5>"}, ...]}
//      DELETE /__stats           reset the counters
//
// Usage: S3_PORT=0 S3_DIR=./s3data S3_ACCESS_KEY=k S3_SECRET_KEY=s S3_BUCKETS=b1,b2 \
//        node --openssl-legacy-provider server.js
// (the flag keeps s3rver's paginated listings working on node >= 17).  It prints
// "s3server listening on 127.0.0.1:<port> ..." once ready.  Virtual-host style
// works with endpoint http://s3.localhost:<port> (bucket.s3.localhost).
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Readable, pipeline, Transform } = require('stream');
const { promisify } = require('util');
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Error = require('s3rver/lib/models/error');

const port = Number(process.env.S3_PORT || 45680);
const dir = path.resolve(process.env.S3_DIR || './s3data');
const AK = process.env.S3_ACCESS_KEY || 'testkey';
const SK = process.env.S3_SECRET_KEY || 'testsecret';
const buckets = (process.env.S3_BUCKETS || 'testbkt').split(',').filter(Boolean);
const allowAnon = process.env.S3_ALLOW_ANON === '1';
// S3_TIMING=1: one line on stderr per request (wall ms, server CPU ms meanwhile)
const timing = process.env.S3_TIMING === '1';

// ---------------------------------------------------------------------------
// s3rver 3.7.1 bug: putObject/putPart resolve when the md5 Transform finishes,
// not when the file is flushed, so a GET right after a PUT can read a short
// file.  Wait for the write stream instead.
const pipelineP = promisify(pipeline);
//
// Content-MD5 (checkBody below puts the header and the "corrupt" fault on the
// request stream): the body goes to a temporary file, renamed into place only
// if its md5 matches the header, so a refused body leaves any previous object
// or part untouched, as on S3.  A part is written only into an existing
// upload directory: a part that arrives after AbortMultipartUpload (e.g. the
// in-flight part of an aborted writer, already received) is answered
// NoSuchUpload as on S3, instead of recreating the aborted upload.
async function writeHashed(content, file, mkdir = true) {
  if (mkdir) await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const md5 = crypto.createHash('md5');
  let size = 0;
  let corrupt = Boolean(content && content.tfCorrupt);
  const want = content && content.tfContentMd5;
  const src = Buffer.isBuffer(content) ? Readable.from([content]) : content;
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    await pipelineP(src, new Transform({
      transform(c, e, cb) {
        if (corrupt && c.length > 0) { c = Buffer.from(c); c[0] ^= 0xff; corrupt = false; }
        md5.update(c); size += c.length; cb(null, c);
      },
    }), fs.createWriteStream(tmp));
    const hex = md5.digest('hex');
    if (want && Buffer.from(hex, 'hex').toString('base64') !== want)
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    await fs.promises.rename(tmp, file);
    return { size, md5: hex };
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
FilesystemStore.prototype.putObject = async function (object) {
  const r = await writeHashed(object.content, this.getResourcePath(object.bucket, object.key, 'object'));
  await this.putMetadata(object.bucket, object.key, object.metadata, r.md5);
  return r;
};
FilesystemStore.prototype.putPart = async function (bucket, uploadId, partNumber, content) {
  const partPath = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, partNumber.toString());
  try {
    const r = await writeHashed(content, partPath, false);
    await fs.promises.writeFile(`${partPath}.md5`, r.md5);
    return r;
  } catch (e) {
    if (e.code === 'ENOENT')
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
    throw e;
  }
};

// CompleteMultipartUpload as S3 does it, and cheaply.  s3rver 3.7.1 reads
// every part back through a stream, md5s all the bytes again and writes the
// object through a stream of 64 kB chunks (about 1.5 s of this one-threaded
// server's CPU per 431 MB, on top of what the parts cost as they arrived),
// and gives the object the md5 of its bytes as ETag.  S3 instead checks the
// list (ascending part numbers, every part present with the ETag the client
// names: InvalidPartOrder / InvalidPart; every part but the last at least
// 5 MiB: EntityTooSmall), assembles the object from the stored parts
// without the client re-sending or the store re-hashing anything, and
// answers the multipart ETag "<md5 of the parts' binary md5s>-<N>".  Here:
// the same checks, the parts' md5s from their .md5 files (computed as they
// arrived, where Content-MD5 was checked), and a plain copy of the part
// files into the object (cat, below: no hashing, no copy through this
// process), then the object appears by rename as before.
const MIN_PART = 5 * 1024 * 1024;
const CAT_BATCH = 256;			// part files per cat process
// append files to the open file fd with cat(1): coreutils >= 9 copies with
// copy_file_range, in the kernel, at about a fifth of the CPU of a read /
// write loop here (measured: 144 MB in 65 ms instead of 350 ms); an older
// cat still copies correctly.  Its CPU counts in this process's cutime.
function catInto(files, fd) {
  return new Promise((resolve, reject) => {
    const child = spawn('cat', ['--', ...files], { stdio: ['ignore', fd, 'pipe'] });
    let err = '';
    child.stderr.on('data', d => { err += d; });
    child.on('error', reject);
    child.on('close', code => (code === 0 ? resolve() : reject(new Error(`cat exited with ${code}: ${err}`))));
  });
}
FilesystemStore.prototype.putObjectMultipart = async function (bucket, uploadId, parts) {
  const uploadDir = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  let key;
  let metadata;
  try {
    key = (await fs.promises.readFile(path.join(uploadDir, 'key'))).toString();
    metadata = JSON.parse(await fs.promises.readFile(path.join(uploadDir, 'metadata')));
  } catch (e) {
    if (e.code === 'ENOENT')
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
    throw e;
  }
  const md5s = [];
  const sizes = [];
  for (let i = 0; i < parts.length; i++) {
    const n = parts[i].number;
    if (!Number.isInteger(n) || n < 1 || (i > 0 && n <= parts[i - 1].number))
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.');
    const p = path.join(uploadDir, String(n));
    let md5;
    let st;
    try {
      md5 = (await fs.promises.readFile(`${p}.md5`)).toString();
      st = await fs.promises.stat(p);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    if (!md5 || parts[i].etag.toLowerCase() !== md5)
      throw new S3Error('InvalidPart', "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.");
    md5s.push(Buffer.from(md5, 'hex'));
    sizes.push(st.size);
  }
  for (let i = 0; i < sizes.length - 1; i++)
    if (sizes[i] < MIN_PART)
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
  const file = this.getResourcePath(bucket, key, 'object');
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const size = sizes.reduce((a, b) => a + b, 0);
  try {
    const out = await fs.promises.open(tmp, 'w');
    try {
      const files = parts.map(p => path.join(uploadDir, String(p.number)));
      for (let i = 0; i < files.length; i += CAT_BATCH)
        await catInto(files.slice(i, i + CAT_BATCH), out.fd);
    } finally {
      await out.close();
    }
    const st = await fs.promises.stat(tmp);
    if (st.size !== size) throw new Error(`assembled ${st.size} bytes, the parts hold ${size}`);
    await fs.promises.rename(tmp, file);
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
  const etag = `${crypto.createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}`;
  await this.putMetadata(bucket, key, metadata, etag);
  await fs.promises.rm(uploadDir, { recursive: true, force: true });
  return { size, md5: etag };
};

// replace the hardcoded S3RVER/S3RVER pair with ours
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(AK, SK);

const enc = s => encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const hmac = (k, d) => crypto.createHmac('sha256', k).update(d).digest();
const sha256hex = d => crypto.createHash('sha256').update(d).digest('hex');
const xmlEsc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function s3error(ctx, status, code, msg, extra = '') {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEsc(msg)}</Message>${extra}</Error>`;
}

async function drain(req) {
  try { for await (const c of req) void c; } catch (e) { /* client went away */ }
}
const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// admin endpoint, stats and fault injection (runs before authentication)
let rules = [];
let stats;
function resetStats() { stats = { methods: {}, total: 0, faults: 0, aborts: 0, log: [], auth: [] }; }
resetStats();

const faultBodies = {
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  503: ['SlowDown', 'Please reduce your request rate.'],
  429: ['SlowDown', 'Please reduce your request rate.'],
  400: ['InjectedBadRequest', 'Injected fault.'],
  403: ['AccessDenied', 'Access Denied'],
  404: ['NoSuchKey', 'The specified key does not exist.'],
};

function logAuth(ctx, payload, signed) {
  stats.auth.push({ req: `${ctx.method} ${ctx.req.url}`, payload, signed, md5: ctx.get('content-md5') || null });
  if (stats.auth.length > 500) stats.auth.shift();
}

function ruleMatches(rule, ctx) {
  if (!rule.match) return true;
  if (/^[A-Z]+$/.test(rule.match)) return ctx.method === rule.match;
  return `${ctx.method} ${ctx.req.url}`.includes(rule.match);
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString();
  return s ? JSON.parse(s) : {};
}

async function admin(ctx, next) {
  const url = ctx.req.url;
  if (url.startsWith('/__faults')) {
    if (ctx.method === 'POST') {
      let f;
      try { f = await readJson(ctx.req); } catch (e) { ctx.status = 400; ctx.body = 'bad json\n'; return; }
      const rule = {
        match: f.match || null,
        status: f.status ? Number(f.status) : null,
        delay_ms: f.delay_ms ? Number(f.delay_ms) : 0,
        drop: Boolean(f.drop),
        truncate: f.truncate ? Number(f.truncate) : 0,
        corrupt: Boolean(f.corrupt),
        count: Number(f.count || f.drop || 1),
        after: Number(f.after || 0),
      };
      rules.push(rule);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify({ rules });
      return;
    }
    if (ctx.method === 'DELETE') { rules = []; ctx.status = 204; return; }
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ rules });
    return;
  }
  if (url.startsWith('/__stats')) {
    if (ctx.method === 'DELETE') { resetStats(); ctx.status = 204; return; }
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(stats);
    return;
  }

  stats.total++;
  stats.methods[ctx.method] = (stats.methods[ctx.method] || 0) + 1;
  const entry = `${ctx.method} ${url}`;
  const t0 = timing ? process.hrtime.bigint() : 0n;
  const c0 = timing ? process.cpuUsage() : null;
  const logIt = st => {
    stats.log.push(`${entry} ${st}`);
    if (stats.log.length > 500) stats.log.shift();
    if (timing) {
      // wall time of the request, and the server's CPU meanwhile (all
      // requests in flight together: exact only for a request alone)
      const c = process.cpuUsage(c0);
      console.error(`timing ${entry} ${st} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms, cpu ${((c.user + c.system) / 1000).toFixed(1)} ms`);
    }
  };

  const rule = rules.find(r => r.count > 0 && ruleMatches(r, ctx) && (r.after-- <= 0));
  if (rule) {
    rule.count--;
    rules = rules.filter(r => r.count > 0);
    stats.faults++;
    if (rule.corrupt) ctx.state.tfCorrupt = true;
    if (rule.drop) {
      logIt('dropped');
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    if (rule.delay_ms) {
      // keep the connection silent; the client may give up (timeout, cancel)
      await sleep(rule.delay_ms);
      if (ctx.req.socket.destroyed) { logIt('client gone'); ctx.respond = false; return; }
    }
    if (rule.status) {
      await drain(ctx.req);
      const [code, msg] = faultBodies[rule.status] || ['InjectedFault', 'Injected fault.'];
      s3error(ctx, rule.status, code, msg);
      logIt(rule.status);
      return;
    }
  }
  await next();
  if (rule && rule.truncate && ctx.body != null && typeof ctx.body.pipe !== 'function') {
    // a complete-looking 200 whose body was cut short
    ctx.body = Buffer.from(ctx.body).subarray(0, rule.truncate);
    logIt(`${ctx.status} truncated`);
    return;
  }
  logIt(ctx.status);
}

// ---------------------------------------------------------------------------
// SigV4 verification
async function sigv4(ctx, next) {
  const auth = ctx.get('authorization');
  if (!auth) {
    if (allowAnon) return next();
    return s3error(ctx, 403, 'AccessDenied', 'Anonymous access denied by test server');
  }
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return s3error(ctx, 400, 'AuthorizationHeaderMalformed', 'Unsupported Authorization header');
  const [, akid, date, region, service, signedHeaders, sig] = m;
  logAuth(ctx, ctx.get('x-amz-content-sha256'), signedHeaders);
  if (akid !== AK) return s3error(ctx, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const payloadHash = ctx.get('x-amz-content-sha256');
  if (!payloadHash) return s3error(ctx, 400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  const amzDate = ctx.get('x-amz-date');
  if (!amzDate.startsWith(date)) return s3error(ctx, 403, 'AccessDenied', 'x-amz-date does not match credential date');
  const sh = signedHeaders.split(';');
  for (const h of ['host', 'x-amz-content-sha256', 'x-amz-date'])
    if (!sh.includes(h)) return s3error(ctx, 403, 'AccessDenied', `header ${h} must be signed`);
  if (ctx.get('x-amz-security-token') && !sh.includes('x-amz-security-token'))
    return s3error(ctx, 403, 'AccessDenied', 'header x-amz-security-token must be signed');
  if (process.env.S3_SESSION_TOKEN && ctx.get('x-amz-security-token') !== process.env.S3_SESSION_TOKEN)
    return s3error(ctx, 403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
  // Canonicalize like AWS S3 does: decode what was received, re-encode once (RFC 3986, '/' kept in path).
  const raw = ctx.req.url;
  const qi = raw.indexOf('?');
  const rawPath = qi < 0 ? raw : raw.slice(0, qi);
  const rawQuery = qi < 0 ? '' : raw.slice(qi + 1);
  const canonUri = rawPath.split('/').map(seg => enc(decodeURIComponent(seg))).join('/');
  const canonQuery = rawQuery.split('&').filter(Boolean).map(p => {
    const i = p.indexOf('=');
    const k = decodeURIComponent((i < 0 ? p : p.slice(0, i)).replace(/\+/g, ' '));
    const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' '));
    return [enc(k), enc(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonHeaders = sh.map(h => `${h}:${String(ctx.req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonReq = [ctx.method, canonUri, canonQuery, canonHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonReq)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + SK, date), region), service), 'aws4_request');
  const expected = crypto.createHmac('sha256', kSigning).update(sts).digest('hex');
  if (expected !== sig) {
    if (process.env.S3_DEBUG) console.error('SignatureDoesNotMatch; expected canonical request:\n' + canonReq);
    await drain(ctx.req);
    return s3error(ctx, 403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      `<CanonicalRequest>${xmlEsc(canonReq)}</CanonicalRequest>`);
  }
  if (payloadHash !== 'UNSIGNED-PAYLOAD') {
    if (!/^[0-9a-f]{64}$/.test(payloadHash))
      return s3error(ctx, 400, 'InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256');
    // buffer the body, check its hash, then hand s3rver an equivalent stream
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (sha256hex(body) !== payloadHash)
      return s3error(ctx, 400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    const r = Readable.from(body.length ? [body] : []);
    for (const k of ['headers', 'method', 'url', 'httpVersion', 'socket', 'connection']) r[k] = ctx.req[k];
    ctx.req = ctx.request.req = ctx.response.req = r;
  }
  return next();
}

// ---------------------------------------------------------------------------
// Content-MD5: a malformed header is refused here; the body is checked as it
// is stored (writeHashed), where the "corrupt" fault also acts.
async function checkBody(ctx, next) {
  const cmd5 = ctx.get('content-md5');
  if (cmd5 && ctx.method === 'PUT') {
    if (!/^[A-Za-z0-9+/]{22}==$/.test(cmd5)) {
      await drain(ctx.req);
      return s3error(ctx, 400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
    }
    ctx.req.tfContentMd5 = cmd5;
  }
  if (ctx.state.tfCorrupt) ctx.req.tfCorrupt = true;
  return next();
}

// ---------------------------------------------------------------------------
// AbortMultipartUpload: DELETE /bucket/key?uploadId=ID (runs after the vhost
// rewrite, so ctx.path always starts with the bucket)
const store = new FilesystemStore(dir);
async function abortMultipart(ctx, next) {
  if (ctx.method !== 'DELETE' || !('uploadId' in ctx.query)) return next();
  const bucket = ctx.path.split('/')[1];
  const uploadId = String(ctx.query.uploadId);
  if (!/^[0-9a-zA-Z_-]+$/.test(uploadId)) return s3error(ctx, 400, 'InvalidArgument', 'bad uploadId');
  const upDir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  if (!fs.existsSync(upDir))
    return s3error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
  await fs.promises.rm(upDir, { recursive: true, force: true });
  stats.aborts++;
  ctx.status = 204;
}

// ListMultipartUploads: GET /bucket?uploads[&prefix=P] (plain s3rver answers
// NotImplemented).  No pagination: every in-progress upload under the prefix.
async function listMultipart(ctx, next) {
  if (ctx.method !== 'GET' || !('uploads' in ctx.query)) return next();
  const parts = ctx.path.split('/').filter(Boolean);
  if (parts.length !== 1) return next();
  const bucket = parts[0];
  const prefix = String(ctx.query.prefix || '');
  const upRoot = store.getResourcePath(bucket, undefined, 'uploads');
  const ups = [];
  let ids = [];
  try { ids = await fs.promises.readdir(upRoot); } catch (e) { /* none yet */ }
  for (const id of ids.sort()) {
    let key;
    try { key = (await fs.promises.readFile(path.join(upRoot, id, 'key'))).toString(); } catch (e) { continue; }
    if (key.startsWith(prefix)) ups.push({ key, id });
  }
  ups.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    + `<Bucket>${xmlEsc(bucket)}</Bucket><Prefix>${xmlEsc(prefix)}</Prefix><IsTruncated>false</IsTruncated>`
    + ups.map(u => `<Upload><Key>${xmlEsc(u.key)}</Key><UploadId>${xmlEsc(u.id)}</UploadId></Upload>`).join('')
    + '</ListMultipartUploadsResult>';
}

const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory: dir,
  silent: !process.env.S3_VERBOSE,
  vhostBuckets: true,
  serviceEndpoint: 'localhost',
  configureBuckets: buckets.map(name => ({ name })),
});
// before s3rver's own (non-verifying) auth: admin/faults, then signatures
server.middleware.unshift(admin, sigv4, checkBody);
// just before the router (the last middleware)
server.middleware.splice(server.middleware.length - 1, 0, abortMultipart, listMultipart);
server.run().then(addr => console.log(`s3server listening on ${addr.address}:${addr.port} buckets=${buckets}`));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
// test harnesses set S3_EXIT_WITH_PARENT=1: never outlive the test that started us
if (process.env.S3_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500).unref();
}
