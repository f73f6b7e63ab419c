# Alerts (docs/alerts.md): a local HTTP receiver (a forked perl server on
# 127.0.0.1 that records each request and answers as told) and LISTEN in a
# background psql.  Failure alert: JSON body with the failed nodes, their
# errors and SQLSTATEs, the secret header from the user mapping, NOTIFY;
# success alert; 500 then 200: retried and recorded; receiver down: failed
# after the retries, recorded; a hanging receiver does not hold up the
# scheduler (a 1-second flow keeps running); USAGE revoked: recorded, not
# sent; SLA missed: fired once per run, driven by taskflow.test_clock; the
# secret never in the server log, the outbox, the views or pg_stat_activity.
use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TaskflowTest;

my $secret = 'hunter2-s3cr3t-token';
my $dir = PostgreSQL::Test::Utils::tempdir();

# ---- the receiver ----------------------------------------------------------
# Answers with the first line of $dir/mode ("200", "500", "hang"); a file of
# several lines is consumed one line per request (the last one stays).
sub set_mode
{
	my ($mode) = @_;
	open(my $fh, '>', "$dir/mode.tmp") or die;
	print $fh $mode;
	close $fh;
	rename("$dir/mode.tmp", "$dir/mode") or die;
}

sub next_mode
{
	open(my $fh, '<', "$dir/mode") or return '200';
	my @lines = grep { length } map { s/\s+$//r } <$fh>;
	close $fh;
	return '200' unless @lines;
	my $m = shift @lines;
	set_mode(join("\n", @lines)) if @lines;
	return $m;
}

set_mode('200');
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
	ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
my $port = $listener->sockport;
my $receiver = fork();
die "fork: $!" unless defined $receiver;
if ($receiver == 0)
{
	# none of the test's descriptors but the listener: a child still
	# sleeping in 'hang' mode after the test ended held the TAP pipe open
	# (the test's dups of it), and prove waited for it (~30 s)
	my $keep = fileno($listener);
	POSIX::close($_) for grep { $_ != $keep } 0 .. 1023;
	open(STDIN, '<', '/dev/null');
	open(STDOUT, '>', '/dev/null');
	open(STDERR, '>', '/dev/null');
	$SIG{CHLD} = 'IGNORE';
	my $n = 0;
	while (1)
	{
		my $c = $listener->accept or next;
		$n++;
		my $mode = next_mode();
		my $pid = fork();
		if (defined $pid && $pid == 0)
		{
			my $req = '';
			while ($req !~ /\r\n\r\n/)
			{
				my $r = sysread($c, $req, 4096, length $req);
				last unless $r;
			}
			my ($len) = $req =~ /^Content-Length:\s*(\d+)/mi;
			$len //= 0;
			my ($head, $body) = split(/\r\n\r\n/, $req, 2);
			$body //= '';
			while (length($body) < $len)
			{
				my $r = sysread($c, $body, $len - length($body), length $body);
				last unless $r;
			}
			open(my $fh, '>', "$dir/req.$n.tmp") or POSIX::_exit(1);
			print $fh "$head\r\n\r\n$body";
			close $fh;
			rename("$dir/req.$n.tmp", sprintf("%s/req-%05d", $dir, $n));
			if ($mode eq 'hang')
			{
				sleep 30;
				POSIX::_exit(0);
			}
			my $status = $mode eq '500' ? '500 Internal Server Error' : '200 OK';
			syswrite($c, "HTTP/1.1 $status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
			close $c;
			POSIX::_exit(0);
		}
		close $c;
	}
}
close $listener;
END { kill 'KILL', $receiver if $receiver; }

# requests received so far: list of { headers => {lc name => value}, body => decoded JSON }
sub requests
{
	my @r;
	opendir(my $dh, $dir) or die;
	for my $f (sort grep { /^req-\d+$/ } readdir $dh)
	{
		my $text = slurp_file("$dir/$f");
		my ($head, $body) = split(/\r\n\r\n/, $text, 2);
		my %h;
		my @lines = split(/\r\n/, $head);
		my $first = shift @lines;
		for (@lines) { my ($k, $v) = split(/:\s*/, $_, 2); $h{lc $k} = $v; }
		my $json = eval { decode_json($body) };
		push @r, { file => $f, line => $first, headers => \%h, raw => $body, body => $json };
	}
	closedir $dh;
	return @r;
}

# a port nobody listens on
my $dead_port;
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, Proto => 'tcp')
	  or die;
	$dead_port = $s->sockport;
	close $s;
}

# ---- the cluster -------------------------------------------------------------
my $node = TaskflowTest->start_node('alerts');
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub poll { return TaskflowTest->poll($node, 'postgres', $_[0], $_[1] // 60); }

# the user mapping with log_statement off: the secret must not reach the log
# through the test's own statement (what the extension logs is checked below)
q1(qq{
SET log_statement = 'none';
CREATE ROLE alice LOGIN;
CREATE SERVER hooks FOREIGN DATA WRAPPER taskflow_webhook
    OPTIONS (url 'http://127.0.0.1:$port/hook?team=data', timeout '3', retries '2',
             secret_header 'X-Hook-Token');
CREATE USER MAPPING FOR alice SERVER hooks OPTIONS (secret '$secret');
GRANT USAGE ON FOREIGN SERVER hooks TO alice;
CREATE SERVER deadhooks FOREIGN DATA WRAPPER taskflow_webhook
    OPTIONS (url 'http://127.0.0.1:$dead_port/', timeout '2', retries '2');
GRANT USAGE ON FOREIGN SERVER deadhooks TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('nightly');
SELECT taskflow.add_node('nightly', 'extract', 'sql', 'SELECT 1');
SELECT taskflow.add_node('nightly', 'load', 'sql', 'SELECT 1/0', after => ARRAY['extract']);
SELECT taskflow.add_node('nightly', 'report', 'sql', 'SELECT 1', after => ARRAY['load']);
SELECT taskflow.add_alert('nightly', 'failure', notify_channel => 'tf_alerts', server => 'hooks');
SELECT taskflow.create_flow('good');
SELECT taskflow.add_node('good', 'a', 'sql', 'SELECT 1');
SELECT taskflow.add_alert('good', 'success', server => 'hooks');
SELECT taskflow.add_alert('good', 'failure', server => 'hooks');
});

my $listen = $node->background_psql('postgres');
$listen->query_safe('LISTEN tf_alerts');

# ---- failure alert: webhook + NOTIFY -------------------------------------------
my ($run, $state) = TaskflowTest->run_and_wait($node, 'nightly', bizdate => '2030-01-15');
is($state, 'failed', 'the failing flow failed');
ok(poll("SELECT count(*) = 2 FROM taskflow.alert_deliveries WHERE run_id = $run AND state = 'delivered'"),
	'failure alert delivered to both targets (webhook, NOTIFY)');
my @req = requests();
is(scalar @req, 1, 'the receiver got one request');
my $r = $req[0];
like($r->{line}, qr{^POST /hook\?team=data HTTP/1\.1$}, 'an HTTP POST to the server\'s URL');
is($r->{headers}{'x-hook-token'}, $secret, 'the secret header from the user mapping');
is($r->{headers}{'content-type'}, 'application/json', 'JSON content type');
like($r->{headers}{'x-taskflow-delivery'} // '', qr/^\d+$/, 'a delivery id header (for deduplication)');
is($r->{body}{flow}, 'nightly', 'body: flow');
is($r->{body}{run_id}, $run, 'body: run id');
is($r->{body}{bizdate}, '2030-01-15', 'body: bizdate');
is($r->{body}{state}, 'failed', 'body: state');
is($r->{body}{event}, 'failure', 'body: event');
ok($r->{body}{started_at} && $r->{body}{finished_at}, 'body: started_at and finished_at');
is(scalar @{ $r->{body}{failed_nodes} // [] }, 1, 'body: one failed node (upstream_failed nodes are not errors)');
is($r->{body}{failed_nodes}[0]{node}, 'load', 'body: the failed node');
like($r->{body}{failed_nodes}[0]{error}, qr/division by zero/, 'body: its error');
is($r->{body}{failed_nodes}[0]{sqlstate}, '22012', 'body: its SQLSTATE');
is(q1("SELECT http_status || '/' || attempts || '/' || (delivered_at IS NOT NULL) FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	'200/1/true', 'outcome recorded: HTTP 200, 1 attempt, delivered_at');

my $out = $listen->query_safe('SELECT 1');
like($out, qr/Asynchronous notification "tf_alerts" with payload "(.*)" received/, 'NOTIFY delivered to a listener');
my ($payload) = $out =~ /with payload "(.*)" received/;
my $pj = eval { decode_json($payload) } // {};
is($pj->{run_id}, $run, 'NOTIFY payload: the JSON body (run id)');
is($pj->{failed_nodes}[0]{sqlstate}, '22012', 'NOTIFY payload: failed node SQLSTATE');

# a NOTIFY payload over the limit: sent shortened, the whole body kept
q1(q{SET ROLE alice;
SELECT taskflow.create_flow('loud');
SELECT taskflow.add_node('loud', 'n' || i, 'sql', $$SELECT repeat('x', 3000)::int$$)
  FROM generate_series(1, 5) i;
SELECT taskflow.add_alert('loud', 'failure', notify_channel => 'tf_alerts');});
my ($loud) = TaskflowTest->run_and_wait($node, 'loud');
ok(poll("SELECT state = 'delivered' FROM taskflow.alert_deliveries WHERE run_id = $loud"),
	'a large NOTIFY alert is delivered');
$out = $listen->query_safe('SELECT 1');
($payload) = $out =~ /with payload "(.*)" received/;
$pj = eval { decode_json($payload // '') } // {};
ok($pj->{truncated} && $pj->{run_id} == $loud && !exists $pj->{failed_nodes},
	'... shortened (truncated, no failed_nodes)');
is(q1("SELECT jsonb_array_length(payload->'failed_nodes') FROM taskflow.alert_deliveries WHERE run_id = $loud"),
	'5', '... and the whole body is kept in alert_deliveries');

# the owner sees the outcome; another role does not
q1(q{CREATE ROLE bob LOGIN});
is($node->safe_psql('postgres', "SET ROLE alice; SELECT delivered FROM taskflow.alerts_status WHERE flow = 'nightly'"),
	'2', 'the owner sees the outcome in alerts_status');
is($node->safe_psql('postgres', 'SET ROLE bob; SELECT count(*) FROM taskflow.alert_deliveries'),
	'0', 'another role sees no deliveries (RLS)');

# ---- success alert ---------------------------------------------------------------
($run, $state) = TaskflowTest->run_and_wait($node, 'good');
is($state, 'succeeded', 'the good flow succeeded');
ok(poll("SELECT count(*) = 1 FROM taskflow.alert_deliveries WHERE run_id = $run AND state = 'delivered' AND event = 'success'"),
	'success alert delivered');
@req = requests();
is($req[-1]{body}{state}, 'succeeded', 'success body: state succeeded');
is_deeply($req[-1]{body}{failed_nodes}, [], 'success body: no failed nodes');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $run"), '1',
	'the failure alert of that flow did not fire');

# ---- 500, then 200: retried with backoff, recorded ----------------------------------
set_mode("500\n200");
my $before = scalar requests();
($run, $state) = TaskflowTest->run_and_wait($node, 'nightly');
ok(poll("SELECT state = 'delivered' FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	'500 then 200: delivered');
is(q1("SELECT attempts || '/' || http_status FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	'2/200', '... after 2 attempts, last status 200');
@req = requests();
is(scalar @req - $before, 2, 'the receiver got the request twice');
is($req[-1]{headers}{'x-taskflow-delivery'}, $req[-2]{headers}{'x-taskflow-delivery'},
	'with the same delivery id');
like(slurp_file($node->logfile), qr/taskflow alerts: delivery \d+ to server "hooks", attempt 1 of 3: HTTP 500/,
	'the failed attempt is logged');

# ---- receiver down: failed after the retries -------------------------------------
q1(q{SET ROLE alice; SELECT taskflow.add_alert('nightly', 'failure', server => 'deadhooks')});
($run, $state) = TaskflowTest->run_and_wait($node, 'nightly');
ok(poll("SELECT state = 'failed' FROM taskflow.alert_deliveries d JOIN taskflow.alerts a ON a.id = d.alert_id WHERE d.run_id = $run AND a.server = 'deadhooks'", 90),
	'receiver down: the delivery ends failed');
my $dead = q1("SELECT attempts || '|' || coalesce(http_status::text, '-') || '|' || last_error || '|' || (delivered_at IS NULL) FROM taskflow.alert_deliveries d JOIN taskflow.alerts a ON a.id = d.alert_id WHERE d.run_id = $run AND a.server = 'deadhooks'");
like($dead, qr/^3\|-\|.*connect.*\|true$/i, 'recorded: 3 attempts (1 + 2 retries), no status, the connect error');
is(q1("SELECT state FROM taskflow.alert_deliveries d JOIN taskflow.alerts a ON a.id = d.alert_id WHERE d.run_id = $run AND a.server = 'hooks' AND d.target = 'webhook'"),
	'delivered', 'the other alert of that run was delivered');
is(q1("SELECT last_state || ' ' || failed FROM taskflow.alerts_status WHERE server = 'deadhooks'"),
	'failed 1', 'alerts_status shows the failure');
q1(q{DELETE FROM taskflow.alerts WHERE server = 'deadhooks'});

# ---- a hanging receiver does not hold up the scheduler -------------------------------
q1(q{SET ROLE alice;
SELECT taskflow.create_flow('ticker', schedule => 'every 1 second', catchup => false);
SELECT taskflow.add_node('ticker', 't', 'sql', 'SELECT 1');});
ok(poll(q{SELECT count(*) >= 2 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'ticker' AND r.state = 'succeeded'}),
	'the 1-second flow runs');
set_mode('hang');
($run, $state) = TaskflowTest->run_and_wait($node, 'nightly');
ok(poll("SELECT state = 'sending' FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	'the delivery worker is waiting for the hanging receiver');
my $ticks = q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'ticker' AND r.state = 'succeeded'});
ok(poll(qq{SELECT count(*) >= $ticks + 2 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'ticker' AND r.state = 'succeeded'}, 30),
	'the scheduler keeps dispatching meanwhile');
ok(poll("SELECT state = 'failed' FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'", 90),
	'the hanging receiver: failed after the retries');
like(q1("SELECT attempts || ' ' || last_error FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	qr/^3 timeout after 3 s$/, 'recorded: 3 attempts, timeout');
q1(q{SET ROLE alice; SELECT taskflow.drop_flow('ticker')});

# DROP DATABASE is not held up by a delivery worker waiting for a receiver
q1(q{CREATE DATABASE hookdb});
$node->safe_psql('hookdb', qq{CREATE EXTENSION taskflow;
SET log_statement = 'none';
CREATE SERVER hooks2 FOREIGN DATA WRAPPER taskflow_webhook
    OPTIONS (url 'http://127.0.0.1:$port/hook', timeout '30', retries '0');
CREATE USER MAPPING FOR alice SERVER hooks2 OPTIONS (secret '$secret');
GRANT USAGE ON FOREIGN SERVER hooks2 TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('doomed');
SELECT taskflow.add_node('doomed', 'x', 'sql', 'SELECT 1/0');
SELECT taskflow.add_alert('doomed', 'failure', server => 'hooks2');});
TaskflowTest->wait_scheduler($node, 'hookdb');
my $doomed = TaskflowTest->run_flow($node, 'doomed', db => 'hookdb');
TaskflowTest->wait_run($node, $doomed, db => 'hookdb');
ok(TaskflowTest->poll($node, 'hookdb', "SELECT state = 'sending' FROM taskflow.alert_deliveries WHERE run_id = $doomed"),
	'hookdb: its delivery worker waits for the hanging receiver');
my ($drc, $dout, $derr) = $node->psql('postgres', 'DROP DATABASE hookdb');
is($drc, 0, 'DROP DATABASE succeeds meanwhile (the delivery worker is terminated)') or diag($derr);
set_mode('200');

# ---- USAGE revoked: recorded, nothing sent -------------------------------------------
$before = scalar requests();
q1(q{REVOKE USAGE ON FOREIGN SERVER hooks FROM alice});
($run, $state) = TaskflowTest->run_and_wait($node, 'nightly');
ok(poll("SELECT state = 'failed' FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	'without USAGE on the server: the delivery fails');
like(q1("SELECT last_error FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'webhook'"),
	qr/permission denied for webhook server "hooks" \(flow owner alice\)/, '... with the permission error');
is(scalar requests(), $before, '... and nothing was sent');
q1(q{GRANT USAGE ON FOREIGN SERVER hooks TO alice});

# ---- SLA via the test clock --------------------------------------------------------
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
TaskflowTest->set_clock($node, '2030-03-01 04:00:00+08');
q1(q{SET ROLE alice;
SELECT taskflow.create_flow('daily', schedule => '0 5 * * *', timezone => 'Asia/Shanghai',
                            start_date => '2030-03-01 00:00+08', catchup => false);
SELECT taskflow.add_node('daily', 'slow', 'sql', 'SELECT pg_advisory_xact_lock(4242)');
SELECT taskflow.add_alert('daily', 'sla', notify_channel => 'tf_sla', server => 'hooks', sla => '06:30');});
TaskflowTest->set_clock($node, '2030-03-01 05:00:01+08');
ok(poll(q{SELECT count(*) = 1 FROM taskflow.node_runs x JOIN taskflow.runs r ON r.id = x.run_id JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'daily' AND x.state = 'running'}),
	'the daily run started and is blocked');
my $daily = q1(q{SELECT r.id FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'daily'});
TaskflowTest->set_clock($node, '2030-03-01 06:29:00+08');
# a manual run of another flow goes through the scheduler: it saw the clock
TaskflowTest->run_and_wait($node, 'good');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $daily"), '0',
	'SLA not fired before 06:30');
TaskflowTest->set_clock($node, '2030-03-01 06:31:00+08');
ok(poll("SELECT count(*) = 2 FROM taskflow.alert_deliveries WHERE run_id = $daily AND event = 'sla' AND state = 'delivered'"),
	'SLA missed at 06:30: fired to both targets');
my ($sla) = grep { ($_->{body}{event} // '') eq 'sla' } requests();
is($sla->{body}{run_id}, $daily, 'SLA body: the run');
is($sla->{body}{state}, 'running', 'SLA body: the run is still running');
like($sla->{body}{sla_deadline} // '', qr/^2030-02-28T22:30:00/, 'SLA body: the deadline (06:30 Shanghai)');
is($sla->{headers}{'x-hook-token'}, $secret, 'SLA request: the secret header');
TaskflowTest->set_clock($node, '2030-03-01 08:00:00+08');
TaskflowTest->run_and_wait($node, 'good');
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
is(TaskflowTest->wait_run($node, $daily), 'succeeded', 'the late run finishes');
TaskflowTest->run_and_wait($node, 'good');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $daily"), '2',
	'the SLA fired once per run (per target), also after the late finish');
is(scalar(grep { ($_->{body}{run_id} // 0) == $daily } requests()), 1,
	'the receiver got one SLA request for the run');
$locker->quit;

# an SLA as an interval after the scheduled time; a run done in time fires nothing
q1(q{SET ROLE alice; SELECT taskflow.add_alert('daily', 'sla', server => 'hooks', sla => '10 minutes')});
TaskflowTest->set_clock($node, '2030-03-02 05:00:01+08');
ok(poll(q{SELECT count(*) = 2 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'daily' AND r.state = 'succeeded'}),
	'the next daily run succeeded (not blocked)');
$daily = q1(q{SELECT max(r.id) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'daily'});
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $daily"), '0',
	'a run done in time: no SLA alert');
TaskflowTest->set_clock($node, undef);

# ---- secrets ---------------------------------------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$secret\E/, 'the secret is not in the server log');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries d WHERE d::text LIKE '%$secret%'"), '0',
	'nor in the outbox');
is(q1("SELECT count(*) FROM taskflow.alerts_status s WHERE s::text LIKE '%$secret%'"), '0',
	'nor in alerts_status');
is(q1("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$secret%' AND pid <> pg_backend_pid()"), '0',
	'nor in pg_stat_activity');

$listen->quit;
$node->stop;
done_testing();
