/**
 * Helper run inside a client's network namespace by `baton drill --probe iscsi://… --probe-from`:
 *   node iscsi-agent.js '{"host":…,"port":…,"iqn":…,"lun":…,"lba":…,"blocks":…,"intervalMs":…,"readTimeoutMs":…}'
 * prints one JSON sample per read until its stdin closes, then logs out.
 */
import { iscsiLoop, type IscsiProbeOptions } from './iscsi-probe.js';

const arg = process.argv[2];
if (!arg) {
  process.stderr.write('usage: iscsi-agent.js OPTIONS_JSON\n');
  process.exit(2);
}
const loop = iscsiLoop(JSON.parse(arg) as IscsiProbeOptions);
let sent = 0;
const flush = () => {
  for (; sent < loop.samples.length; sent++) process.stdout.write(JSON.stringify(loop.samples[sent]) + '\n');
};
const pump = setInterval(flush, 20);
loop.start();
process.stdin.resume();
process.stdin.on('end', async () => {
  await loop.stop();
  clearInterval(pump);
  flush();
  process.exit(0);
});
