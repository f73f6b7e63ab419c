# The documentation runs: every ```sql block of README.md and docs/*.md is
# executed, in order, one psql session per page, in a fresh database of a
# cluster with taskflow preloaded and the project's local S3 server (started
# with AWS's documented example key pair and the buckets the pages use).
#
# Directives, in HTML comments (invisible on the rendered page), on the line
# before a block:
#   <!-- doctest: skip <reason> -->   the block is not run (a reason is required)
#   <!-- doctest: error -->           the block must fail (each statement is
#                                     run with ON_ERROR_STOP off; an ERROR must appear)
# and anywhere on the page:
#   <!-- doctest: setup
#   SQL ...
#   -->                               fixtures the page assumes (tables, roles)
#
# The examples run verbatim except that a commented-out
# `-- , endpoint 'http://127.0.0.1:9000'` line is uncommented and pointed at
# the local S3 server's port.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use TaskflowTest;
use TaskflowS3;

my $root = TaskflowS3->root;
my $s3 = TaskflowS3->start(
	access_key => 'AKIAIOSFODNN7EXAMPLE',
	secret_key => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
	buckets => [ 'my-bucket', 'dla' ]);
my $port = $s3->port;

my $node = TaskflowTest->start_node('docs', extension => 0, max_workers => 4);
my $archive_dir = $node->basedir . '/archive';
mkdir $archive_dir;

my @pages = ('README.md', map { s{^\Q$root\E/}{}r } sort glob("$root/docs/*.md"));

# Split a page into steps: [kind, sql, line, note]; kind is run, error, skip or setup.
sub steps
{
	my ($file) = @_;
	open my $fh, '<', "$root/$file" or die "$file: $!";
	my @lines = <$fh>;
	close $fh;
	my (@steps, $directive);
	for (my $i = 0; $i < @lines; $i++)
	{
		my $l = $lines[$i];
		if ($l =~ /^<!--\s*doctest:\s*setup\s*$/)
		{
			my $sql = '';
			my $start = $i + 1;
			$sql .= $lines[$i] while ++$i < @lines && $lines[$i] !~ /^-->\s*$/;
			push @steps, [ 'setup', $sql, $start ];
			next;
		}
		if ($l =~ /^<!--\s*doctest:\s*(skip|error)\s*(.*?)\s*-->\s*$/)
		{
			$directive = [ $1, $2 ];
			die "$file:" . ($i + 1) . ": doctest skip needs a reason\n"
			  if $1 eq 'skip' && $2 eq '';
			next;
		}
		if ($l =~ /^```sql\s*$/)
		{
			my $sql = '';
			my $start = $i + 1;
			$sql .= $lines[$i] while ++$i < @lines && $lines[$i] !~ /^```\s*$/;
			my $kind = $directive ? $directive->[0] : 'run';
			push @steps, [ $kind, $sql, $start, $directive ? $directive->[1] : '' ];
			undef $directive;
			next;
		}
		undef $directive if $l =~ /\S/ && $l !~ /^<!--/;
	}
	return @steps;
}

my ($blocks, $skipped) = (0, 0);
my $n = 0;
for my $page (@pages)
{
	my @steps = steps($page);
	next unless grep { $_->[0] ne 'setup' } @steps;
	$n++;
	my $db = "doc$n";
	my @roles_before = split /\n/, $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles ORDER BY 1');
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# a page that does not create the extension itself assumes it is there
	$node->safe_psql($db, 'CREATE EXTENSION taskflow')
	  unless grep { $_->[1] =~ /^CREATE EXTENSION taskflow/m } @steps;

	# one script: markers between steps, so the output can be attributed
	my $script = "\\set ON_ERROR_STOP on\n\\set archive_dir '$archive_dir/$db'\n"
	  . "\\set s3_endpoint 'http://127.0.0.1:$port'\nSET client_min_messages = warning;\n";
	my $i = 0;
	for my $st (@steps)
	{
		my ($kind, $sql, $line, $note) = @$st;
		$i++;
		if ($kind eq 'skip')
		{
			$skipped++;
			note "$page:$line skipped: $note";
			next;
		}
		$blocks++ unless $kind eq 'setup';
		# the optional endpoint line of the examples, uncommented for the local S3 server
		$sql =~ s{--\s*(,?\s*endpoint\s+')http://127\.0\.0\.1:9000(')}{$1http://127.0.0.1:$port$2}g;
		$script .= "\\echo '#doctest# $i $kind $page:$line'\n";
		$script .= "\\set ON_ERROR_STOP off\n" if $kind eq 'error';
		$script .= $sql;
		$script .= "\n;\n";
		$script .= "\\set ON_ERROR_STOP on\n" if $kind eq 'error';
	}
	$script .= "\\echo '#doctest# end'\n";

	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'psql', '-X', '-d', $node->connstr($db), '-v', 'VERBOSITY=default', '-f', '-' ],
		'<', \$script, '>', \$out, '2>&1');
	$out //= '';

	# attribute the output to steps
	my %part;
	my $cur = 'start';
	for my $l (split /\n/, $out)
	{
		if ($l =~ /^#doctest# (.*)$/) { $cur = $1; next; }
		$part{$cur} .= "$l\n";
	}
	ok(exists $part{end} || $out =~ /#doctest# end/, "$page: every block ran")
	  or diag(substr($out, -3000));
	for my $k (sort keys %part)
	{
		next unless $k =~ /^(\d+) (\w+) (\S+)$/;
		my ($kind, $where) = ($2, $3);
		my $text = $part{$k};
		if ($kind eq 'error')
		{
			like($text, qr/ERROR:/, "$where fails as the page says");
		}
		elsif ($text =~ /ERROR:/)
		{
			fail("$where runs");
			diag($text);
		}
	}

	# leave nothing behind for the next page
	$node->safe_psql('postgres', "DROP DATABASE $db WITH (FORCE)");
	my %before = map { $_ => 1 } @roles_before;
	for my $r (split /\n/, $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles ORDER BY 1'))
	{
		$node->safe_psql('postgres', qq{DROP ROLE "$r"}) unless $before{$r};
	}
}
cmp_ok($blocks, '>=', 40, "documentation blocks run: $blocks (skipped: $skipped)");
note "doc blocks run: $blocks, skipped: $skipped";

$node->stop;
done_testing();
