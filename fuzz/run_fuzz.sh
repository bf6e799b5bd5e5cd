#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bounded libFuzzer run for the test suite: run_fuzz.sh FUZZER SEED_CORPUS DICT SECONDS WORKDIR
# New inputs go to WORKDIR/corpus (never into the source tree); crashes to WORKDIR/crash-*.
set -eu
fuzzer=$1 seeds=$2 dict=$3 seconds=$4 work=$5
mkdir -p "$work/corpus"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -error_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 \
  -dict="$dict" -artifact_prefix="$work/" "$work/corpus" "$seeds"
