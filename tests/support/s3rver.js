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
//   PUT /__updraft/faults?delay_ms=1000  hold every GET that long before answering it (a slow backend:
//                                        the wait is before the response head) until delay_ms=0
// so tests can count backend GETs at the server and make a backend fail or slow without stopping it.
// Each parameter given changes that fault only.
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
let faultDelayMs = 0;
// Koa composes its middleware when the server starts listening: this one runs before s3rver's own
server.middleware.unshift(async (ctx, next) => {
    if (ctx.path === "/__updraft/stats") {
        ctx.type = "application/json";
        ctx.body = JSON.stringify(counts);
        return;
    }
    if (ctx.path === "/__updraft/faults" && ctx.method === "PUT") {
        const status = Number(ctx.query.status === undefined ? faultStatus : ctx.query.status);
        const delay = Number(ctx.query.delay_ms === undefined ? faultDelayMs : ctx.query.delay_ms);
        if (!Number.isInteger(status) || (status !== 0 && (status < 400 || status > 599))) {
            ctx.status = 400;
            ctx.body = "status is 0 or 400-599\n";
            return;
        }
        if (!Number.isInteger(delay) || delay < 0 || delay > 600000) {
            ctx.status = 400;
            ctx.body = "delay_ms is 0 to 600000\n";
            return;
        }
        faultStatus = status;
        faultDelayMs = delay;
        ctx.body = `faults: status ${status}, delay_ms ${delay}\n`;
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
