#!/usr/bin/env node
// Reads an electron-updater feed the way a stock electron-updater client does, then downloads every
// file it lists and checks its size and sha512 against the feed.
//
//   node electron-check.js FEED_URL [CLIENT_ID]
//
// FEED_URL is the channel file, e.g. http://127.0.0.1:PORT/update/acme/latest-mac.yml: its directory
// (and query, if any) is the generic provider's base URL, its last segment the channel file name.
// CLIENT_ID, when given, is sent as x-user-staging-id on the feed request (never on downloads), which
// asks Updraft for the personalised answer. Prints a JSON summary on stdout; exits 0 only when every
// check passed, 1 when one failed (the reasons are in "errors" and on stderr), 2 on bad usage.
//
// What comes from electron-updater itself, so that a change of its behaviour shows up here:
//   - parseUpdateInfo, resolveFiles (providers/Provider.js) and newBaseUrl, newUrlFromBase (util.js).
//     Those modules are required directly: they need builder-util-runtime, js-yaml and lodash, not
//     Electron. The package's entry point (out/main.js) is not required, because it builds the
//     platform's updater, which loads the 'electron' module at once.
//   - builder-util-runtime's HttpExecutor, the base class of electron-updater's ElectronHttpExecutor:
//     the same request headers (User-Agent electron-builder, Cache-Control no-cache), 404 handling,
//     redirects (up to 10) and, on downloads, the same DigestTransform that rejects a sha512 mismatch.
//     Only createRequest differs: Node's http/https instead of Electron's net module.
//   - the ?noCache=… query GenericProvider adds to the feed URL when the base URL has no query.
//   - the block map URL: Provider.getBlockMapFiles (FILE.blockmap beside the file).
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");
const os = require("os");
const path = require("path");
const { URL } = require("url");

const runtime = require("builder-util-runtime");
const provider = require("electron-updater/out/providers/Provider");
const updaterUtil = require("electron-updater/out/util");
// electron-updater's own semver (a dependency of it, resolved from its directory), for the version check it makes
const semver = require(require.resolve("semver", { paths: [path.dirname(require.resolve("electron-updater/package.json"))] }));

class NodeHttpExecutor extends runtime.HttpExecutor {
    createRequest(options, callback) {
        return (options.protocol === "http:" ? http : https).request(options, callback);
    }

    // ElectronHttpExecutor.download's contract, on Node: the bytes go to `destination` through
    // configurePipes, which verifies options.sha512 while writing.
    download(url, destination, options) {
        return options.cancellationToken.createPromise((resolve, reject, onCancel) => {
            const requestOptions = { headers: options.headers || undefined, redirect: "manual" };
            runtime.configureRequestUrl(url, requestOptions);
            runtime.configureRequestOptions(requestOptions);
            const callback = error => (error == null ? resolve(destination) : reject(error));
            this.doDownload(requestOptions, { destination, options, onCancel, callback, responseHandler: null }, 0);
        });
    }
}

function sha512File(file) {
    return crypto.createHash("sha512").update(fs.readFileSync(file)).digest("base64");
}

async function main(argv) {
    if (argv.length < 1 || argv.length > 2) {
        process.stderr.write("usage: node electron-check.js FEED_URL [CLIENT_ID]\n");
        return 2;
    }
    const [feedUrl, clientId] = argv;
    const summary = { ok: false, feedUrl, clientId: clientId || null, errors: [] };
    const fail = reason => summary.errors.push(reason);
    const executor = new NodeHttpExecutor();
    const cancellationToken = new runtime.CancellationToken();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "electron-check-"));

    try {
        const feed = new URL(feedUrl);
        const channelFile = path.posix.basename(feed.pathname);
        const base = new URL(feed.href);
        base.pathname = path.posix.dirname(feed.pathname);
        const baseUrl = updaterUtil.newBaseUrl(base.href);
        // GenericProvider.getLatestVersion: the channel file under the base, with ?noCache=… unless the base has a query
        const channelUrl = updaterUtil.newUrlFromBase(channelFile, baseUrl, true);
        summary.channelUrl = channelUrl.href;

        // Provider.httpRequest: the staging id rides on the feed request only
        const requestOptions = {};
        if (clientId) requestOptions.headers = { "x-user-staging-id": clientId };
        runtime.configureRequestUrl(channelUrl, requestOptions);
        let raw;
        try {
            raw = await executor.request(requestOptions, cancellationToken);
        } catch (e) {
            fail(`feed request failed: ${e.statusCode || ""} ${e.message.split("\n")[0]}`);
            return finish(summary);
        }

        let info;
        try {
            info = provider.parseUpdateInfo(raw, channelFile, channelUrl);
        } catch (e) {
            fail(`feed does not parse (${e.code}): ${e.message.split("\n")[0]}`);
            return finish(summary);
        }
        if (info == null || typeof info !== "object" || Array.isArray(info)) {
            fail("feed is not a YAML mapping");
            return finish(summary);
        }
        summary.version = info.version;
        summary.releaseDate = info.releaseDate === undefined ? null : info.releaseDate;
        summary.stagingPercentage = info.stagingPercentage === undefined ? null : info.stagingPercentage;

        // AppUpdater.isUpdateAvailable refuses a version semver cannot parse (a YAML number such as 1.1 among them)
        if (typeof info.version !== "string" || semver.parse(info.version) == null)
            fail(`version ${JSON.stringify(info.version)} is not a SemVer string`);
        if (typeof info.releaseDate !== "string") fail(`releaseDate ${JSON.stringify(info.releaseDate)} is not a string`);
        if (info.stagingPercentage != null) {
            // AppUpdater.isStagingMatch parseInt()s it; a personalised answer must not carry it at all
            if (Number.isNaN(parseInt(info.stagingPercentage, 10))) fail(`stagingPercentage ${info.stagingPercentage} is not a number`);
            if (clientId) fail("the personalised answer carries stagingPercentage: clients would be filtered twice");
        }

        let files;
        try {
            files = provider.resolveFiles(info, baseUrl);
        } catch (e) {
            fail(`files do not resolve (${e.code}): ${e.message.split("\n")[0]}`);
            return finish(summary);
        }

        const blockMaps = new provider.Provider({ executor, platform: process.platform });
        summary.files = [];
        for (const [i, file] of files.entries()) {
            const entry = { url: file.url.href, size: file.info.size, sha512: file.info.sha512, ok: false };
            summary.files.push(entry);
            const before = summary.errors.length;
            if (!Number.isSafeInteger(file.info.size) || file.info.size < 0) fail(`${entry.url}: size ${JSON.stringify(file.info.size)} is not an integer`);
            if (typeof file.info.sha512 !== "string") fail(`${entry.url}: sha512 is not a string`);

            const destination = path.join(tmp, `file-${i}`);
            try {
                // the headers AppUpdater.executeDownload sends on downloads: no staging id
                await executor.download(file.url, destination, { headers: { accept: "*/*" }, sha512: file.info.sha512, cancellationToken });
                entry.downloadedSize = fs.statSync(destination).size;
                entry.downloadedSha512 = sha512File(destination);
                if (entry.downloadedSize !== file.info.size) fail(`${entry.url}: ${entry.downloadedSize} bytes, the feed says ${file.info.size}`);
                if (entry.downloadedSha512 !== file.info.sha512) fail(`${entry.url}: sha512 ${entry.downloadedSha512}, the feed says ${file.info.sha512}`);
            } catch (e) {
                fail(`${entry.url}: download failed: ${e.message.split("\n")[0]}`);
            }

            // Updraft writes blockMapSize when FILE.blockmap is stored: it must be there, with that size
            if (file.info.blockMapSize != null) {
                const [, newBlockMapUrl] = blockMaps.getBlockMapFiles(file.url, info.version, info.version);
                entry.blockMap = { url: newBlockMapUrl.href, size: file.info.blockMapSize };
                try {
                    const data = await executor.downloadToBuffer(newBlockMapUrl, { headers: { accept: "*/*" }, cancellationToken });
                    entry.blockMap.downloadedSize = data.length;
                    if (data.length !== file.info.blockMapSize)
                        fail(`${newBlockMapUrl.href}: ${data.length} bytes, the feed says blockMapSize ${file.info.blockMapSize}`);
                } catch (e) {
                    fail(`${newBlockMapUrl.href}: download failed: ${e.message.split("\n")[0]}`);
                }
            }
            entry.ok = summary.errors.length === before;
        }
        if (files.length === 0) fail("the feed lists no files");
        return finish(summary);
    } catch (e) {
        fail(`unexpected: ${e.stack || e}`);
        return finish(summary);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

function finish(summary) {
    summary.ok = summary.errors.length === 0;
    process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    for (const reason of summary.errors) process.stderr.write(`electron-check: ${reason}\n`);
    return summary.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(code => process.exit(code));
