#!/usr/bin/env bash
# Regenerates the handwritten pgwire seed corpus (each seed well under 1 KB).
# Usage: tests/fuzz/make_seeds.sh   (from anywhere)
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/corpus/pgwire"
mkdir -p "$dir"

# be32 N: 4 big-endian bytes of N.
be32() { printf "\\x$(printf %02x $((($1 >> 24) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# msg T BODY: typed message; BODY is a printf format (escapes allowed).
msg() {
  local len
  len=$(printf "$2" | wc -c)
  printf '%s' "$1"
  be32 $((len + 4))
  printf "$2"
}
# packet BODY: startup-phase packet.
packet() {
  local len
  len=$(printf "$1" | wc -c)
  be32 $((len + 4))
  printf "$1"
}
ssl() { packet '\x04\xd2\x16\x2f'; }

cd "$dir"
{ packet '\x00\x03\x00\x00user\x00bob\x00database\x00db\x00\x00'
  msg Q 'SELECT 1\x00'; msg X ''; } > startup_query
{ ssl; msg S ''; } > ssl_sync
packet '\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02' > cancel
{ packet '\x04\xd2\x16\x30'; printf 'GET / HTTP/1.1\r\n'; } > gssenc_garbage
{ ssl
  msg P '\x00SELECT $1, $2\x00\x00\x02\x00\x00\x00\x17\x00\x00\x00\x00'
  msg B '\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x0242\xff\xff\xff\xff\x00\x01\x00\x01'
  msg D 'P\x00'; msg E '\x00\x00\x00\x00\x00'; msg C 'S\x00'; msg S ''; } > extended
{ ssl
  msg p 'SCRAM-SHA-256\x00\x00\x00\x00\x03n,,'
  msg p 'c=biws,r=x,p=y'; msg p 'secret\x00'; msg H ''; } > frontend_auth
{ ssl
  msg R '\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00'
  msg R '\x00\x00\x00\x0br=abc'; msg R '\x00\x00\x00\x0cv=xyz'
  msg R '\x00\x00\x00\x05salt'; msg R '\x00\x00\x00\x00'
  msg S 'TimeZone\x00UTC\x00'; msg K '\x00\x00\x00\x07\x00\x00\x00\x09'
  msg Z 'I'; } > backend_auth
{ ssl
  msg T '\x00\x01id\x00\x00\x00\x40\x00\x00\x01\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00'
  msg D '\x00\x02\x00\x00\x00\x011\xff\xff\xff\xff'
  msg C 'SELECT 1\x00'
  msg E 'SERROR\x00C42P01\x00Mnope\x00\x00'
  msg N 'SWARNING\x00Mhm\x00\x00'
  msg A '\x00\x00\x00\x01ch\x00pay\x00'
  msg 1 ''; msg 2 ''; msg 3 ''; msg n ''; msg s ''; msg I ''; } > backend_rows
{ ssl
  msg G '\x01\x00\x01\x00\x01'; msg d 'abc'; msg c ''; msg f 'oops\x00'
  msg F '\x00\x00\x06\x3e\x00\x00\x00\x01\x00\x00\x00\x01x\x00\x00'
  msg V '\x00\x00\x00\x02ok'
  msg v '\x00\x00\x00\x00\x00\x00\x00\x01_pq_.a\x00'
  msg t '\x00\x01\x00\x00\x00\x19'; } > copy_misc
{ ssl; printf 'Q\x7f\xff\xff\xff'; } > huge_length
printf 'Q\x00\x00\x00\x03' > short_length
ls -l "$dir"
