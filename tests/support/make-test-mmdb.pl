#!/usr/bin/perl
# Writes a small GeoIP2-Country-shaped MaxMind DB for the geo tests.
#
#   perl make-test-mmdb.pl OUTPUT.mmdb [--no-ipv4-alias]
#
# --no-ipv4-alias leaves ::ffff:0:0/96 unaliased, as some third-party databases do, so that the tests can check that
# IPv4-mapped peers are still found.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 OUTPUT.mmdb [--no-ipv4-alias]\n";
my $alias = !( @ARGV && $ARGV[0] eq '--no-ipv4-alias' );

my %types = (
    country            => 'map',
    registered_country => 'map',
    continent          => 'map',
    iso_code           => 'utf8_string',
    code               => 'utf8_string',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version            => 6,
    record_size           => 24,
    database_type         => 'GeoIP2-Country',
    languages             => ['en'],
    description           => { en => 'Updraft unit test database' },
    alias_ipv6_to_ipv4    => $alias ? 1 : 0,
    # the documentation ranges below are reserved: the writer would silently drop them
    remove_reserved_networks => 0,
    map_key_type_callback => sub { $types{ $_[0] } // die "no type for key $_[0]\n" },
);

my @networks = (
    [ '81.2.69.0/24',    { country => { iso_code => 'GB' }, registered_country => { iso_code => 'GB' } } ],
    [ '203.0.113.0/24',  { country => { iso_code => 'FR' } } ],
    [ '198.51.100.0/24', { country => { iso_code => 'DE' } } ],
    [ '2001:db8:1::/48', { country => { iso_code => 'US' } } ],
    # no country, only where the network is registered: lookups fall back to it
    [ '192.0.2.0/24', { registered_country => { iso_code => 'SE' } } ],
    # known network without any country (as anycast ranges in real databases): no country to report
    [ '2001:db8:2::/48', { continent => { code => 'EU' } } ],
    # a malformed code must not leak out as a country
    [ '100.64.0.0/24', { country => { iso_code => 'deu' } } ],
);
$tree->insert_network(@$_) for @networks;

open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
