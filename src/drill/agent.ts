/**
 * The shared half of the probe agents a drill runs inside a client's network namespace
 * (tcp-agent.ts, iscsi-agent.ts): print each sample as a JSON line as it comes, and when the
 * drill closes the agent's stdin, stop the loop, print the rest and exit.
 */
import type { Prober } from './probe.js';

export function pumpSamplesUntilStdinEnds(loop: Prober): void {
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
}
