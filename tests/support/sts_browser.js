#!/usr/bin/env node
// Drives updraft-sts's browser pages in headless Chromium with a virtual WebAuthn authenticator (ctap2, internal,
// resident keys, user verification), for tests/integration/test_sts_browser.py.
//
//   node tests/support/sts_browser.js
//
// Reads one JSON command per line on stdin and answers each with one JSON line on stdout:
//   {"cmd":"enrol","url":URL}                       open the enrolment link, press "Register security key"
//   {"cmd":"approve","url":URL,"decision":"approve"|"reject"|null,"screenshot":PATH?}
//                                                   open the approval page, read what it shows, press the button
//                                                   (none when decision is null)
//   {"cmd":"admin","action":{...},"base":URL}       open BASE/admin and perform the action through its form
//   {"cmd":"set_uv","value":BOOL}                   WebAuthn.setUserVerified on the virtual authenticator
//   {"cmd":"credentials"}                           the authenticator's credentials (ids, sign counts)
//   {"cmd":"quit"}
// Each answer is {"ok":true,...} or {"ok":false,"error":TEXT}; "page_errors" lists uncaught errors in the page.
// Chromium is Debian's /usr/bin/chromium (UPDRAFT_CHROMIUM overrides it), driven by playwright-core.
"use strict";

const path = require("path");
const readline = require("readline");
const {chromium} = require(path.join(__dirname, "..", "node_modules", "playwright-core"));

const STEP_MS = 30000; // how long one page step may take before the command fails

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.UPDRAFT_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--host-resolver-rules=MAP localhost 127.0.0.1"],
  });
  const context = await browser.newContext({viewport: {width: 1000, height: 900}});
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", e => pageErrors.push(String(e)));
  // Chromium logs every non-2xx fetch as "Failed to load resource": a refusal the page shows is not an error of the page
  page.on("console", m => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push("console: " + m.text());
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const {authenticatorId} = await cdp.send("WebAuthn.addVirtualAuthenticator", {options: {
    protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true}});

  const text = sel => page.locator(sel).textContent({timeout: STEP_MS});
  const msgOf = async sel => ({kind: (await page.getAttribute(sel, "class")).replace(/^msg\s*/, ""), text: await text(sel)});

  // a new document each time: going from /enrol#A to /enrol#B alone would only change the fragment
  const open = async url => { await page.goto("about:blank"); await page.goto(url); };

  async function enrol(c) {
    await open(c.url);
    await page.click("#register", {timeout: STEP_MS});
    await page.waitForFunction(() => {
      const s = document.getElementById("status");
      return !s.hidden && !s.classList.contains("info");
    }, null, {timeout: STEP_MS});
    return {status: await msgOf("#status"), url_after: page.url(), who: await text("#who")};
  }

  async function shown() {
    return page.evaluate(() => {
      const t = id => document.getElementById(id).textContent;
      return {app: t("f-app"), status: t("f-status"), badge: t("status-badge"), generation: t("f-generation"),
              digest: t("f-digest"), requested: t("f-requested"), approvals: t("f-approvals"),
              summary: Array.from(document.querySelectorAll("#summary li"), li => li.textContent),
              approve_enabled: !document.getElementById("approve").disabled,
              buttons_visible: document.getElementById("approve").checkVisibility() ||
                               document.getElementById("reject").checkVisibility()};
    });
  }

  async function approve(c) {
    await open(c.url);
    await page.waitForSelector("body[data-loaded]", {timeout: STEP_MS});
    const before = await shown();
    if (!c.decision) return {before: before}; // only read what the page shows
    const button = c.decision === "reject" ? "#reject" : "#approve";
    await page.click(button, {timeout: STEP_MS});
    await page.waitForFunction(() => {
      const o = document.getElementById("outcome");
      return !document.body.dataset.busy && !o.hidden && !o.classList.contains("info");
    }, null, {timeout: STEP_MS});
    const out = {before: before, after: await shown(), outcome: await msgOf("#outcome")};
    if (c.screenshot) {
      await page.screenshot({path: c.screenshot, fullPage: true});
      out.screenshot = c.screenshot;
    }
    return out;
  }

  async function admin(c) {
    await open(c.base + "/admin");
    const a = c.action;
    let submit;
    if (a.op === "invite") {
      await page.fill("#invite-member", a.member);
      await page.setChecked("#invite-admin", !!a.admin);
      submit = "#invite-form button[type=submit]";
    } else if (a.op === "grant" || a.op === "revoke") {
      await page.fill("#grant-member", a.member);
      await page.fill("#grant-app", a.app);
      submit = a.op === "grant" ? "#grant-form button[type=submit]" : "#revoke";
    } else if (a.op === "policy") {
      await page.fill("#policy-app", a.app);
      await page.fill("#policy-n", String(a.approvers));
      submit = "#policy-form button[type=submit]";
    } else if (a.op === "list") {
      submit = "#list";
    } else {
      throw new Error("admin: unknown op " + a.op);
    }
    await page.click(submit, {timeout: STEP_MS});
    await page.waitForFunction(() => {
      const s = document.getElementById("status");
      return !document.body.dataset.busy && !s.hidden && !s.classList.contains("info");
    }, null, {timeout: STEP_MS});
    const out = {status: await msgOf("#status")};
    if (a.op === "invite" && out.status.kind === "ok") out.link = await page.inputValue("#link");
    if (a.op === "list" && out.status.kind === "ok") {
      out.tables = await page.evaluate(() => {
        const t = {};
        for (const id of ["t-members", "t-credentials", "t-grants", "t-policies", "t-pending"])
          t[id.slice(2)] = Array.from(document.querySelectorAll("#" + id + " tbody tr"),
                                      tr => Array.from(tr.cells, td => td.textContent));
        return t;
      });
    }
    return out;
  }

  const commands = {
    enrol, approve, admin,
    set_uv: async c => { await cdp.send("WebAuthn.setUserVerified", {authenticatorId, isUserVerified: !!c.value}); return {}; },
    credentials: async () => ({credentials: (await cdp.send("WebAuthn.getCredentials", {authenticatorId})).credentials
      .map(k => ({id: k.credentialId, sign_count: k.signCount, resident: k.isResidentCredential, rp_id: k.rpId}))}),
  };

  const rl = readline.createInterface({input: process.stdin});
  for await (const line of rl) {
    if (!line.trim()) continue;
    let answer;
    try {
      const c = JSON.parse(line);
      if (c.cmd === "quit") break;
      if (!commands[c.cmd]) throw new Error("unknown command " + c.cmd);
      pageErrors.length = 0;
      answer = Object.assign({ok: true}, await commands[c.cmd](c));
    } catch (e) {
      answer = {ok: false, error: String(e && e.stack || e)};
    }
    answer.page_errors = pageErrors.slice();
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await browser.close();
}

main().catch(e => {
  process.stderr.write("sts_browser: " + (e && e.stack || e) + "\n");
  process.exit(1);
});
