#!/usr/bin/env node
'use strict';
// Entry point of `npx convnext`: the compiled CLI lives in dist/ (built by `npm install`'s prepare step).
let cli;
try {
  cli = require('../dist/src/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    process.stderr.write('error: convnext-tfjs is not built; run `npm install` (or `npm run build`) first\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`internal error: ${e && e.stack ? e.stack : e}\n`);
    process.exit(70);
  },
);
