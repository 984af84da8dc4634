/**
 * Caps how many channels are open on one SSH connection. OpenSSH refuses sessions beyond
 * MaxSessions (default 10, sshd_config(5)), so we wait our turn instead of failing.
 *
 * One slot is kept for urgent work (killing a timed-out command): if every slot held a
 * hung command, each waiting for a kill that needs a slot, nothing would ever finish.
 */
export class ChannelQueue {
  private inUse = 0;
  private peak = 0;
  private readonly normal: Array<() => void> = [];
  private readonly urgent: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxChannels must be a positive integer, got ${max}`);
  }

  /** Most channels ever open at once. */
  get peakInUse(): number {
    return this.peak;
  }

  get active(): number {
    return this.inUse;
  }

  private get normalLimit(): number {
    return this.max > 1 ? this.max - 1 : 1;
  }

  acquire(urgent = false): Promise<() => void> {
    const limit = urgent ? this.max : this.normalLimit;
    if (this.inUse < limit && (urgent || this.urgent.length === 0)) return Promise.resolve(this.take());
    return new Promise((resolve) => (urgent ? this.urgent : this.normal).push(() => resolve(this.take())));
  }

  private take(): () => void {
    this.inUse++;
    if (this.inUse > this.peak) this.peak = this.inUse;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      this.pump();
    };
  }

  private pump(): void {
    while (this.urgent.length > 0 && this.inUse < this.max) this.urgent.shift()!();
    while (this.normal.length > 0 && this.urgent.length === 0 && this.inUse < this.normalLimit) this.normal.shift()!();
  }
}
