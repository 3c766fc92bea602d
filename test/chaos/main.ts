// `npm run chaos`: the full fault campaign (20 kills in each phase) and the 1,000-request
// soak of campaign.ts, with their figures. Exit code 1 when a check fails.

import * as os from 'os';
import { runCampaign, runSoak } from './campaign';

async function main(): Promise<void> {
  const kills = Number(process.env.npm_config_kills ?? 20);
  const requests = Number(process.env.npm_config_requests ?? 1000);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const t0 = Date.now();
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

main().catch((err) => {
  process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
