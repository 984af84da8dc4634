/**
 * Helper run inside a client's network namespace by `baton drill --probe-from`:
 *   node tcp-agent.js HOST PORT INTERVAL_MS TIMEOUT_MS
 * prints one JSON sample per connect attempt until its stdin closes.
 */
import { ProbeLoop } from './probe.js';
import { tcpConnectOnce } from './tcp-probe.js';

const [host, port, interval, timeout] = process.argv.slice(2);
if (!host || !port) {
  process.stderr.write('usage: tcp-agent.js HOST PORT [INTERVAL_MS] [TIMEOUT_MS]\n');
  process.exit(2);
}
const loop = new ProbeLoop(() => tcpConnectOnce(host, Number(port), Number(timeout ?? 300)), Number(interval ?? 50));
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
