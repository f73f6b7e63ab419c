# TaskflowS3 — the project's local S3 server (test/s3/server.js) for TAP tests.
#
#   use TaskflowS3;
#   my $s3 = TaskflowS3->start(buckets => ['tfbkt']);     # free port, own directory
#   $s3->create_server($node, 'arch', bucket => 'tfbkt', prefix => 'p',
#                      options => { part_size => '5MB' });  # CREATE SERVER + USER MAPPING
#   $s3->set_fault(status => 500, count => 2, match => 'PUT');
#   $s3->set_fault(delay_ms => 3000, match => 'GET');
#   $s3->set_fault(drop => 1, match => 'PUT');
#   my $st = $s3->stats;  # { methods => {PUT => n, ...}, total, faults, aborts, log => [...] }
#   $s3->clear_faults; $s3->reset_stats; $s3->stop;
#
# The server verifies SigV4 signatures with its own key pair (access_key /
# secret_key below), so a wrong secret really gets 403 SignatureDoesNotMatch.
package TaskflowS3;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $count = 0;
my @running;    # servers to stop at exit, even when a test dies

sub root { return $root; }

sub start
{
	my ($class, %opts) = @_;
	my $self = bless {}, $class;
	$count++;
	$self->{dir} = $opts{dir}
	  // "$PostgreSQL::Test::Utils::tmp_check/s3_${$}_$count";
	make_path($self->{dir});
	$self->{access_key} = $opts{access_key} // 'TFTESTKEY' . $count;
	$self->{secret_key} = $opts{secret_key}
	  // sprintf('tfsecret%06d%s', int(rand(1000000)), 'x' x 8);
	$self->{buckets} = $opts{buckets} // ['tfbkt'];
	$self->{log} = "$PostgreSQL::Test::Utils::tmp_check/s3server_${$}_$count.log";

	die "test/s3/node_modules is missing: run scripts/install-deps (npm install in test/s3)"
	  unless -d "$root/test/s3/node_modules/s3rver";

	local $ENV{S3_PORT} = 0;
	local $ENV{S3_DIR} = $self->{dir};
	local $ENV{S3_ACCESS_KEY} = $self->{access_key};
	local $ENV{S3_SECRET_KEY} = $self->{secret_key};
	local $ENV{S3_BUCKETS} = join(',', @{ $self->{buckets} });
	local $ENV{S3_SESSION_TOKEN} = $opts{session_token} if $opts{session_token};
	local $ENV{S3_EXIT_WITH_PARENT} = 1;
	my $out = '';
	$self->{out} = \$out;
	$self->{h} = IPC::Run::start(
		[ 'node', '--openssl-legacy-provider', "$root/test/s3/server.js" ],
		'<', \undef, '>', \$out, '2>>', $self->{log});

	my $deadline = time + 60;
	while ($out !~ /listening on [\d.]+:(\d+)/)
	{
		die "S3 test server did not start (see $self->{log}): $out"
		  if time > $deadline || !$self->{h}->pumpable;
		eval { $self->{h}->pump_nb; };
		select(undef, undef, undef, 0.05);
	}
	$out =~ /listening on [\d.]+:(\d+)/;
	$self->{port} = $1;
	$self->{http} = HTTP::Tiny->new(timeout => 10);
	push @running, $self;
	my $r = $self->{http}->get($self->url('/__stats'));
	die "S3 test server not answering: $r->{status}" unless $r->{success};
	note "S3 test server on port $self->{port}, dir $self->{dir}";
	return $self;
}

sub port       { return $_[0]->{port}; }
sub dir        { return $_[0]->{dir}; }
sub access_key { return $_[0]->{access_key}; }
sub secret_key { return $_[0]->{secret_key}; }
sub endpoint   { return 'http://127.0.0.1:' . $_[0]->{port}; }
sub url        { return $_[0]->endpoint . $_[1]; }

# answer the next requests with a fault, see test/s3/server.js
sub set_fault
{
	my ($self, %rule) = @_;
	my $r = $self->{http}->post($self->url('/__faults'),
		{ content => encode_json(\%rule), headers => { 'content-type' => 'application/json' } });
	die "setting fault failed: $r->{status} $r->{content}" unless $r->{success};
	return;
}

sub clear_faults
{
	my ($self) = @_;
	$self->{http}->delete($self->url('/__faults'));
	return;
}

sub stats
{
	my ($self) = @_;
	my $r = $self->{http}->get($self->url('/__stats'));
	die "stats failed: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub reset_stats
{
	my ($self) = @_;
	$self->{http}->delete($self->url('/__stats'));
	return;
}

# number of requests of a method since the last reset
sub count
{
	my ($self, $method) = @_;
	return $self->stats->{methods}{$method} // 0;
}

# in-progress (not completed, not aborted) multipart uploads of a bucket
sub pending_uploads
{
	my ($self, $bucket) = @_;
	my $d = "$self->{dir}/$bucket/._S3rver_uploads";
	return 0 unless -d $d;
	opendir(my $dh, $d) or return 0;
	my @u = grep { !/^\./ } readdir($dh);
	closedir($dh);
	return scalar @u;
}

# CREATE SERVER + USER MAPPING (for role, default CURRENT_USER) on $node.
# The user mapping is created with log_statement off so the secret stays
# out of the server log.
sub create_server
{
	my ($self, $node, $name, %o) = @_;
	my $bucket = $o{bucket} // $self->{buckets}[0];
	my $url = "s3://$bucket" . ($o{prefix} ? "/$o{prefix}" : '');
	my %opts = (url => $url, endpoint => $o{endpoint} // $self->endpoint, %{ $o{options} // {} });
	my $optsql = join(', ', map { "$_ " . quote_lit($opts{$_}) } sort keys %opts);
	my $db = $o{dbname} // 'postgres';
	$node->safe_psql($db,
		"CREATE SERVER $name FOREIGN DATA WRAPPER taskflow_storage OPTIONS ($optsql)");
	$self->create_user_mapping($node, $name, %o);
	return;
}

sub create_user_mapping
{
	my ($self, $node, $name, %o) = @_;
	my $role = $o{role} // 'CURRENT_USER';
	my $db = $o{dbname} // 'postgres';
	my $secret = $o{secret_key} // $self->{secret_key};
	my $um = "access_key_id " . quote_lit($o{access_key} // $self->{access_key})
	  . ", secret_access_key " . quote_lit($secret);
	$um .= ", session_token " . quote_lit($o{session_token}) if $o{session_token};
	$node->safe_psql($db,
		"SET log_statement = 'none';\n"
		  . "DROP USER MAPPING IF EXISTS FOR $role SERVER $name;\n"
		  . "CREATE USER MAPPING FOR $role SERVER $name OPTIONS ($um);");
	return;
}

sub quote_lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{h}->signal('TERM') if $self->{h}->pumpable;
	eval { $self->{h}->finish; };
	$self->{h} = undef;
	return;
}

sub DESTROY { $_[0]->stop; }

END
{
	local $?;    # keep the test's exit status
	$_->stop for grep { defined } @running;
}

1;
