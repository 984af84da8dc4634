/**
 * Helper run inside a client's network namespace by `baton drill --probe iscsi://… --probe-from`:
 *   node iscsi-agent.js '{"host":…,"port":…,"iqn":…,"lun":…,"lba":…,"blocks":…,"intervalMs":…,"readTimeoutMs":…}'
 * prints one JSON sample per read until its stdin closes, then logs out.
 */
import { iscsiLoop, type IscsiProbeOptions } from './iscsi-probe.js';
import { pumpSamplesUntilStdinEnds } from './agent.js';

const arg = process.argv[2];
if (!arg) {
  process.stderr.write('usage: iscsi-agent.js OPTIONS_JSON\n');
  process.exit(2);
}
const loop = iscsiLoop(JSON.parse(arg) as IscsiProbeOptions);
pumpSamplesUntilStdinEnds(loop);
