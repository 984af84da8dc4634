/**
 * The drill's clock: milliseconds since the epoch, read from the monotonic clock anchored once at
 * process start. An outage is the difference of two readings; with `Date.now()` a clock step
 * during the failover (NTP, timesyncd) shrank a window, made it negative or moved it into the
 * wrong playbook, and a real outage could pass --max-outage. Whole milliseconds, as reports show them.
 */
export const drillNow = (): number => Math.round(performance.timeOrigin + performance.now());
