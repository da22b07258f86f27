#!/usr/bin/env node
// Runs @20minutes/s3rver 5.0.0, a stand-in S3 that verifies SigV4 signatures (header and presigned),
// with one key pair of our choosing, for the integration tests.
//
//   node tests/support/s3rver.js --port 0 --dir DIR --access-key K --secret-key S [--bucket NAME]
//
// --bucket creates that bucket at start-up. Two test-only routes sit in front of S3's:
//   GET /__updraft/stats                 {"GET /bucket/key": count, ...} of every S3 request so far
//   PUT /__updraft/faults?status=500     answer every S3 request with that status and an S3 error
//                                        document (InternalError) until PUT /__updraft/faults?status=0
//   PUT /__updraft/faults?trickle_kib=N  read every PUT body at N KiB/s at most (a slow backend: TCP
//                                        backpressure slows the sender)
//   PUT /__updraft/faults?delay_ms=1000  hold every GET that long before answering it (a slow backend:
//                                        the wait is before the response head)
// so tests can count backend GETs at the server and make a backend fail, crawl or wait without stopping
// it. Each faults PUT sets all three: a parameter left out is 0 (off).
//
// Prints "s3rver listening on http://127.0.0.1:PORT" once it accepts connections (port 0: the
// kernel picks, the line says which), logs one line per request on stdout, and exits 0 on SIGTERM
// or SIGINT after closing the listener. Exit status 2 on bad usage, 1 if it cannot start.
//
// Why the keys are set this way: s3rver has no option for credentials. It keeps a registry of
// access keys (lib/models/account.js) seeded with the well-known pair S3RVER/S3RVER; requests
// signed with a key not in it get 403 InvalidAccessKeyId, and with a wrong secret 403
// SignatureDoesNotMatch unless allowMismatchedSignatures is set. So the seeded pair is revoked and
// ours registered, and allowMismatchedSignatures is pinned to false. s3rver does not check the
// payload hash and serves unsigned requests anonymously (STACK-NOTES.md).
"use strict";

const fs = require("fs");
const { Transform } = require("stream");

const S3rver = require("@20minutes/s3rver");
const AWSAccount = require("@20minutes/s3rver/lib/models/account");

function usage(why) {
    process.stderr.write(`s3rver.js: ${why}\nusage: node s3rver.js --port PORT --dir DIR --access-key K --secret-key S\n`);
    process.exit(2);
}

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    if (!["--port", "--dir", "--access-key", "--secret-key", "--bucket"].includes(name) || argv[i + 1] === undefined) {
        usage(`unknown option or missing value: ${name}`);
    }
    args[name.slice(2)] = argv[i + 1];
}
for (const name of ["port", "dir", "access-key", "secret-key"]) {
    if (args[name] === undefined) usage(`--${name} is required`);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage("--port is 0 to 65535");

AWSAccount.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
AWSAccount.DUMMY_ACCOUNT.createKeyPair(args["access-key"], args["secret-key"]);

fs.mkdirSync(args.dir, { recursive: true });
const server = new S3rver({
    address: "127.0.0.1",
    port,
    directory: args.dir,
    silent: false,
    allowMismatchedSignatures: false,
    // path-style only: the tests address 127.0.0.1, never BUCKET.host
    vhostBuckets: false,
    resetOnClose: false,
    configureBuckets: args.bucket !== undefined ? [{ name: args.bucket }] : [],
});

const counts = {};
let faultStatus = 0;
let trickleKib = 0;
let faultDelayMs = 0;

// Passes a body on no faster than rate bytes/s: each chunk waits until the bytes so far are due. pipe()'s
// backpressure stops reading the request meanwhile, so the kernel's buffers fill and the client slows down.
class Trickle extends Transform {
    constructor(rate) {
        super({ highWaterMark: 64 * 1024 });
        this.rate = rate;
        this.start = Date.now();
        this.bytes = 0;
    }
    _transform(chunk, encoding, callback) {
        this.bytes += chunk.length;
        const wait = this.start + (this.bytes / this.rate) * 1000 - Date.now();
        if (wait > 0) setTimeout(() => callback(null, chunk), wait);
        else callback(null, chunk);
    }
}
// Koa composes its middleware when the server starts listening: this one runs before s3rver's own
server.middleware.unshift(async (ctx, next) => {
    if (ctx.path === "/__updraft/stats") {
        ctx.type = "application/json";
        ctx.body = JSON.stringify(counts);
        return;
    }
    if (ctx.path === "/__updraft/faults" && ctx.method === "PUT") {
        const status = Number(ctx.query.status || "0");
        if (!Number.isInteger(status) || (status !== 0 && (status < 400 || status > 599))) {
            ctx.status = 400;
            ctx.body = "status is 0 or 400-599\n";
            return;
        }
        const trickle = Number(ctx.query.trickle_kib || "0");
        if (!Number.isInteger(trickle) || trickle < 0) {
            ctx.status = 400;
            ctx.body = "trickle_kib is a whole number of KiB/s, 0 for off\n";
            return;
        }
        const delay = Number(ctx.query.delay_ms || "0");
        if (!Number.isInteger(delay) || delay < 0 || delay > 600000) {
            ctx.status = 400;
            ctx.body = "delay_ms is 0 to 600000\n";
            return;
        }
        faultStatus = status;
        trickleKib = trickle;
        faultDelayMs = delay;
        ctx.body = `faults: status ${status}, trickle_kib ${trickle}, delay_ms ${delay}\n`;
        return;
    }
    const key = `${ctx.method} ${ctx.path}`;
    counts[key] = (counts[key] || 0) + 1;
    if (faultDelayMs !== 0 && ctx.method === "GET") {
        await new Promise((resolve) => setTimeout(resolve, faultDelayMs));
    }
    if (faultStatus !== 0) {
        ctx.status = faultStatus;
        ctx.type = "application/xml";
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
            "<Message>injected by the test</Message></Error>";
        return;
    }
    if (trickleKib !== 0 && ctx.method === "PUT") {
        const slow = new Trickle(trickleKib * 1024);
        // a client that gives up (a timeout) must not leave the object write waiting for the rest forever
        ctx.req.on("aborted", () => slow.destroy(new Error("client aborted the upload")));
        ctx.req.pipe(slow);
        // s3rver's signature middleware sets request.body = ctx.req further down: keep ours
        Object.defineProperty(ctx.request, "body", { get: () => slow, set: () => {}, configurable: true });
    }
    await next();
});

let stopping = false;
function stop() {
    if (stopping) return;
    stopping = true;
    // close() waits for open connections; a client that keeps one open must not keep us alive
    setTimeout(() => {
        process.stderr.write("s3rver.js: connections still open 5 s after the signal\n");
        process.exit(1);
    }, 5000).unref();
    // an idle keep-alive connection (origins poll and reuse connections) must not hold the close up
    if (server.httpServer) server.httpServer.closeIdleConnections();
    server.close().then(
        () => process.exit(0),
        (err) => {
            process.stderr.write(`s3rver.js: close: ${err.message}\n`);
            process.exit(1);
        }
    );
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

server.run().then(
    (address) => {
        process.stdout.write(`s3rver listening on http://127.0.0.1:${address.port}\n`);
    },
    (err) => {
        process.stderr.write(`s3rver.js: cannot start: ${err.message}\n`);
        process.exit(1);
    }
);
