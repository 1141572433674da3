// Summarize one conformance run from the checks.json files the suite writes
// with --output-dir (one directory per scenario, named
// server-<scenario>-<timestamp>).
//
// usage: node summarize.mjs LABEL RESULTS_DIR [CLI_STDOUT]
//
// Prints passed/failed/warning counts and one line per failing or warning
// check (scenario, check id, the suite's error message), plus NOTE lines for
// informational checks that explain a skipped part. When CLI_STDOUT is
// given, scenarios the alpha CLI lists under "Not scored for ..." are
// reported but not counted as failures. Exits 1 if any scored check failed.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [label, dir, stdoutFile] = process.argv.slice(2);
if (!label || !dir) {
  console.error('usage: node summarize.mjs LABEL RESULTS_DIR [CLI_STDOUT]');
  process.exit(2);
}

// unscoredScenarios reads the alpha CLI's "Not scored for REV: ..." block,
// whose lines look like "  ✓ server-sse-polling (pending)".
function unscoredScenarios(file) {
  const names = new Set();
  if (!file || !existsSync(file)) return names;
  let inBlock = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('Not scored for ')) {
      inBlock = true;
    } else if (inBlock) {
      const m = /^\s+[✓✗]\s+(\S+)\s+\(/.exec(line);
      if (!m) break;
      names.add(m[1]);
    }
  }
  return names;
}

// oneLine flattens a message so each check stays on one output line.
function oneLine(s, max = 300) {
  const t = String(s ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

const unscored = unscoredScenarios(stdoutFile);
// KNOWN_FAILURES (env) lists check IDs that are scored but cannot pass in
// this configuration, for a reason run.sh states; they are reported as
// KNOWN and do not fail the run.
const known = new Set((process.env.KNOWN_FAILURES ?? '').split(/\s+/).filter(Boolean));
const totals = { scenarios: 0, passed: 0, failed: 0, warnings: 0 };
const unscoredTotals = { passed: 0, failed: 0, warnings: 0 };
const lines = [];
let scoredFailures = 0;

const dirs = existsSync(dir) ? readdirSync(dir).sort() : [];
for (const d of dirs) {
  const file = join(dir, d, 'checks.json');
  if (!existsSync(file)) continue;
  const scenario = d.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, '');
  const isScored = !unscored.has(scenario);
  let checks;
  try {
    checks = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    lines.push(`  FAIL ${scenario}: unreadable checks.json: ${oneLine(err.message)}`);
    if (isScored) scoredFailures++;
    continue;
  }
  totals.scenarios++;
  const t = isScored ? totals : unscoredTotals;
  const tag = isScored ? '' : ' [not scored]';
  for (const c of checks) {
    if (c.status === 'SUCCESS') t.passed++;
    if (c.status === 'FAILURE') {
      t.failed++;
      const isKnown = isScored && known.has(c.id);
      if (isScored && !isKnown) scoredFailures++;
      const what = isKnown ? 'KNOWN' : 'FAIL';
      lines.push(`  ${what} ${scenario} / ${c.id}${tag}: ${oneLine(c.errorMessage ?? c.description)}`);
    }
    if (c.status === 'WARNING') {
      t.warnings++;
      const msg = c.errorMessage ?? c.details?.message ?? c.description;
      lines.push(`  WARN ${scenario} / ${c.id}${tag}: ${oneLine(msg)}`);
    }
    // INFO checks with a message say a part was skipped ("Server returned
    // JSON ... not applicable"): worth seeing, since they pass silently.
    if (c.status === 'INFO' && c.details?.message) {
      lines.push(`  NOTE ${scenario} / ${c.id}${tag}: ${oneLine(c.details.message)}`);
    }
  }
}

let head = `${label}: ${totals.passed} passed, ${totals.failed} failed, ${totals.warnings} warnings`;
head += ` (${totals.scenarios} scenarios)`;
if (unscored.size > 0) {
  head += `; not scored: ${unscoredTotals.passed} passed, ${unscoredTotals.failed} failed,`;
  head += ` ${unscoredTotals.warnings} warnings (${unscored.size} scenarios)`;
}
console.log(head);
for (const l of lines) console.log(l);
process.exit(scoredFailures > 0 ? 1 : 0);
