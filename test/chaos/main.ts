// `npm run chaos`: the fuzz targets of test/fuzz (1,000 cases each), the full fault campaign
// (20 kills in each phase) and the 1,000-request soak of campaign.ts, with their figures.
// Exit code 1 when a check fails.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCampaign, runSoak } from './campaign';

/** Runs the fuzz tests as the suite does and prints each target's `fuzz …: N cases` line. */
function runFuzz(log: (s: string) => void): void {
  const dir = path.join(__dirname, '..', 'fuzz');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js'));
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files.map((f) => path.join(dir, f))], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const lines = run.stdout.split('\n').filter((l) => /^\s*# fuzz /.test(l));
  for (const line of lines) log(line.trim().slice(2));
  if (run.status !== 0) throw new Error(`the fuzz tests failed:\n${run.stdout.slice(-4000)}${run.stderr.slice(-2000)}`);
  log(`fuzz: ${lines.filter((l) => / cases in /.test(l)).length} targets passed`);
}

async function main(): Promise<void> {
  const kills = Number(process.env.npm_config_kills ?? 20);
  const requests = Number(process.env.npm_config_requests ?? 1000);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const t0 = Date.now();
  runFuzz(log);
  const c = await runCampaign(kills, log);
  const kinds = Object.entries(c.kills)
    .map(([k, n]) => `${n} during ${k}`)
    .join(', ');
  log(
    `campaign: ${c.survived} kills survived (${kinds}); ${c.filesChecked} adapter files checked; ` +
      `restarted worker answered status in ≤ ${c.maxStatusMs} ms (${c.slowStatus} over 2 s; load average ${os.loadavg()[0].toFixed(1)})`,
  );
  log(`full disk, adapter write: ${c.fullDisk.adapterWrite}`);
  log(`full disk, weights conversion: ${c.fullDisk.weightsConversion}`);
  const s = await runSoak(requests, log);
  log(
    `soak: ${s.requests} chat requests, ${s.completed} answered, ${s.cancelled} cancelled, ${s.adapterSwitches} adapter switches, ` +
      `${s.lost} lost, ${s.answeredTwice} answered twice; RSS after 100: ${s.rssAfter100MB.toFixed(1)} MB, at the end: ${s.rssEndMB.toFixed(1)} MB ` +
      `(${(((s.rssEndMB - s.rssAfter100MB) / s.rssAfter100MB) * 100).toFixed(1)} %)`,
  );
  if (s.lost || s.answeredTwice || s.rssEndMB > 1.1 * s.rssAfter100MB) throw new Error('the soak failed');
  if (c.slowStatus) throw new Error(`${c.slowStatus} restarted workers took over 2 s to answer status`);
  log(`chaos: all checks passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

// Exit explicitly, as the suite does with --test-force-exit: after the full 20-kill campaign and
// 1,000-request soak some handle of the harness stays open (not found yet; reduced runs exit on
// their own), and `npm run chaos` printed its result and then waited for ever.
main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
