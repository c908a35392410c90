// @ts-check
/**
 * Shared by test/browser/*.test.js and bench/browser.js: a static server on 127.0.0.1 (dist/browser
 * at /, extra folders under their own prefixes; optionally cross-origin isolated) and Debian's
 * chromium, headless, driven by puppeteer-core (no browser download). Software WebGL (SwiftShader)
 * where the machine has no GPU.
 */
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.bin': 'application/octet-stream',
  '.pth': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Serves `mounts` ({ '/prefix/': folder }, plus '/' -> dist/browser) on 127.0.0.1, a free port.
 * `isolated`: COOP/COEP headers, so the page is cross-origin isolated (wasm threads).
 * @param {{ mounts?: Record<string, string>, isolated?: boolean }} opts
 * @returns {Promise<{ url: string, close: () => Promise<void> }>}
 */
function startServer(opts = {}) {
  const mounts = Object.entries({ ...(opts.mounts || {}), '/': DIST }).sort((a, b) => b[0].length - a[0].length);
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url || '/', 'http://x').pathname);
    const mount = mounts.find(([prefix]) => pathname.startsWith(prefix));
    const headers = opts.isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    if (!mount) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    let file = path.join(mount[1], pathname.slice(mount[0].length));
    if (!file.startsWith(mount[1])) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, headers).end('not found');
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Content-Length': data.length });
      res.end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = /** @type {import('net').AddressInfo} */ (server.address());
      resolve({ url: `http://127.0.0.1:${addr.port}`, close: () => new Promise((r) => server.close(() => r(undefined))) });
    });
  });
}

/** Headless chromium with software WebGL 2 (SwiftShader). */
async function launchBrowser() {
  const puppeteer = require('puppeteer-core');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Software WebGPU/WebGL forwards of a full-size model take minutes in one evaluate().
    protocolTimeout: 30 * 60 * 1000,
    args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--enable-unsafe-webgpu'],
  });
}

/**
 * A new page that records console errors and uncaught exceptions in `errors`.
 * @param {import('puppeteer-core').Browser} browser
 */
async function openPage(browser) {
  const page = await browser.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  return { page, errors };
}

/**
 * Opens the demo with `query` and waits for <pre id="result"> to hold JSON.
 * @param {import('puppeteer-core').Page} page
 * @param {string} url
 * @param {number} [timeout]
 */
async function demoResult(page, url, timeout = 240000) {
  await page.goto(url);
  await page.waitForFunction(() => (document.getElementById('result')?.textContent || '').trim().length > 0, { timeout, polling: 100 });
  return JSON.parse((await page.$eval('#result', (e) => e.textContent)) || 'null');
}

/**
 * Opens the demo without a model and waits until its backend is up (window.convnextDemo is set).
 * @param {import('puppeteer-core').Page} page
 * @param {string} url
 */
async function demoReady(page, url) {
  await page.goto(url);
  await page.waitForFunction(
    () => /** @type {any} */ (window).convnextDemo !== undefined || (document.getElementById('result')?.textContent || '').length > 0,
    { timeout: 120000 },
  );
  const failed = await page.$eval('#result', (e) => e.textContent);
  if (failed) throw new Error(`demo failed to start: ${failed}`);
}

module.exports = { DIST, ROOT, demoReady, demoResult, launchBrowser, openPage, startServer };
