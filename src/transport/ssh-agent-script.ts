/**
 * The node half of the command agent (ssh-agent-mux.ts): a Perl loop started once per
 * connection that forks and execs each command it is sent, directly (no shell), in a session of
 * its own, and sends each result back as one frame the moment the command ended and its output
 * pipes closed (the frames of commands that end in one turn of its loop in one write: each write
 * is an SSH packet for sshd to encrypt and baton to read). Perl because perl-base is Essential on
 * Debian and Ubuntu and present on every RHEL-family system with a package manager; only modules
 * of perl-base are used (POSIX, IO::Select). A node without Perl keeps one SSH channel per command.
 *
 * Requests, one line each, words hex-encoded (so any byte but NUL travels):
 *   R ID ENV... -- ARGV...   run ARGV with ENV (NAME=VALUE words) added to the agent's environment
 *   K ID GRACE               TERM the command's process group; KILL it GRACE tenths of a second later
 * Answers: `B ready` once, then per command
 *   \nB ID c STATUS\n or \nB ID s SIGNAL\n, STDOUT, \nB e\n, STDERR, \nB .\n
 * where B is the boundary the client chose for this agent (random, 128 bits).
 */
export const AGENT_SCRIPT = String.raw`use strict; use warnings; use POSIX (); use IO::Select;
my $B = shift @ARGV;
binmode STDIN; binmode STDOUT;
$SIG{PIPE} = 'IGNORE';
my $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub now { (POSIX::times())[0] / $TICK }
pipe(my $wr, my $ww) or die "pipe: $!";
{ my $o = select($ww); $| = 1; select($o); }
$SIG{CHLD} = sub { syswrite($ww, 'x') };
my $sel = IO::Select->new(\*STDIN, $wr);
my (%job, %fh, %pid, @kills);
my $in = '';
my $obuf = '';
sub out { $obuf .= shift; }
# A write that blocks (sshd reads slowly) is interrupted by the next SIGCHLD: EINTR is not an
# end, and neither is a full non-blocking pipe; anything else is (the channel is gone).
sub again { my $e = $! + 0; return $e == POSIX::EINTR() || $e == POSIX::EAGAIN(); }
sub writable { my $w = ''; vec($w, fileno(STDOUT), 1) = 1; select(undef, $w, undef, 1); }
sub flush { my $o = 0; while ($o < length $obuf) { my $n = syswrite(STDOUT, $obuf, length($obuf) - $o, $o); unless (defined $n) { exit 0 unless again(); writable(); next; } $o += $n; } $obuf = ''; }
sub finish {
  my $id = shift; my $j = $job{$id};
  return unless $j && $j->{open} == 0 && defined $j->{status};
  delete $job{$id};
  my $st = $j->{status};
  my $h = ($st & 127) ? 's ' . ($st & 127) : 'c ' . ($st >> 8);
  out("\n$B $id $h\n$j->{out}\n$B e\n$j->{err}\n$B .\n");
}
sub start {
  my ($id, @w) = @_;
  @w = map { pack 'H*', $_ } @w;
  my %env; my $i = 0;
  while ($i < @w && $w[$i] ne '--') { my ($k, $v) = split /=/, $w[$i], 2; $env{$k} = $v; $i++; }
  my @argv = @w[$i + 1 .. $#w];
  my ($or, $ow, $er, $ew);
  unless (@argv && pipe($or, $ow) && pipe($er, $ew)) { $job{$id} = { out => '', err => "baton agent: cannot start: $!\n", open => 0, status => 126 << 8 }; return finish($id); }
  my $pid = fork;
  unless (defined $pid) { $job{$id} = { out => '', err => "baton agent: fork: $!\n", open => 0, status => 126 << 8 }; return finish($id); }
  if ($pid == 0) {
    POSIX::setsid();
    $SIG{PIPE} = 'DEFAULT'; $SIG{CHLD} = 'DEFAULT';
    open(STDIN, '<', '/dev/null'); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    @ENV{keys %env} = values %env;
    { no warnings 'exec'; exec { $argv[0] } @argv; }
    print STDERR "$argv[0]: $!\n";
    POSIX::_exit(127);
  }
  close $ow; close $ew;
  $job{$id} = { pid => $pid, out => '', err => '', open => 2 };
  $fh{fileno $or} = [$id, 'out']; $fh{fileno $er} = [$id, 'err'];
  $sel->add($or, $er);
  $pid{$pid} = $id;
}
sub request {
  my $l = shift;
  if ($l =~ /^R (\d+) ?(.*)$/) { start($1, split(/ /, $2, -1)); }
  elsif ($l =~ /^K (\d+) (\d+)$/) {
    my $j = $job{$1}; return unless $j && $j->{pid};
    kill 'TERM', -$j->{pid};
    push @kills, [now() + $2 / 10, $j->{pid}];
  }
}
out("$B ready\n"); flush();
while (1) {
  my $wait = 5;
  if (@kills) { my $d = $kills[0][0] - now(); $wait = $d < 0 ? 0 : $d; }
  for my $r ($sel->can_read($wait)) {
    if ($r == \*STDIN) {
      my $n = sysread(STDIN, my $buf, 65536);
      next if !defined $n && again();
      unless ($n) { flush(); exit 0; }
      $in .= $buf;
      while ($in =~ s/^([^\n]*)\n//) { request($1); }
    } elsif ($r == $wr) {
      sysread($wr, my $x, 512);
    } else {
      my $f = $fh{fileno $r};
      my $n = sysread($r, my $buf, 65536);
      next if !defined $n && again();
      if ($n) { $job{$f->[0]}{$f->[1]} .= $buf; next; }
      $sel->remove($r); delete $fh{fileno $r}; close $r;
      $job{$f->[0]}{open}--;
      finish($f->[0]);
    }
  }
  while ((my $p = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $id = delete $pid{$p};
    next unless defined $id && $job{$id};
    $job{$id}{status} = $?;
    finish($id);
  }
  while (@kills && $kills[0][0] <= now()) { my $k = shift @kills; kill 'KILL', -$k->[1]; }
  flush();
}
`;
