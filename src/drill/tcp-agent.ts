/**
 * Helper run inside a client's network namespace by `baton drill --probe-from`:
 *   node tcp-agent.js HOST PORT INTERVAL_MS TIMEOUT_MS
 * prints one JSON sample per connect attempt until its stdin closes.
 */
import { ProbeLoop } from './probe.js';
import { tcpConnectOnce } from './tcp-probe.js';
import { pumpSamplesUntilStdinEnds } from './agent.js';

const [host, port, interval, timeout] = process.argv.slice(2);
if (!host || !port) {
  process.stderr.write('usage: tcp-agent.js HOST PORT [INTERVAL_MS] [TIMEOUT_MS]\n');
  process.exit(2);
}
const loop = new ProbeLoop(() => tcpConnectOnce(host, Number(port), Number(timeout ?? 300)), Number(interval ?? 50));
pumpSamplesUntilStdinEnds(loop);
