#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# generate_test_video.sh — make a test video with ffmpeg: SMPTE-like test pattern or a ball
# (data/ball.png) bouncing over black, with an optional warbling 440 Hz tone.
# Run with -h for the options. Exit status: 0 written, 1 runtime failure (output exists without
# -F, ffmpeg failed), 2 bad usage (unknown option, bad value, missing input).
set -euo pipefail

PROG="$(basename "$0")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

usage() {
  cat <<USAGE
usage: $PROG [options]

Make a test video with ffmpeg (H.264 + AAC in .mp4/.mov/.mkv, VP8 + Opus in .webm).

  -m MODE     bounce (default): IMAGE moves over black, bouncing off the edges
              testsrc: ffmpeg's test pattern with a running frame counter
  -d SECONDS  duration; decimals allowed (default: 60 for bounce, 10 for testsrc)
  -s WxH      frame size, even numbers (default: 640x480 for bounce, 320x240 for testsrc)
  -r FPS      frame rate, e.g. 30, 12.5 or 30000/1001 (default: 30 for bounce, 10 for testsrc)
  -o FILE     output file (default: bounce.mp4 or testsrc.mp4 in the current directory);
              the extension picks the container: .mp4 .m4v .mov .mkv .webm
  -i IMAGE    the image that bounces (default: data/ball.png); any format ffmpeg reads,
              transparency is kept; must be smaller than the frame
  -a yes|no   audio track: a tone sweeping 400-480 Hz around 440 Hz at 32 kbps (default: yes)
  -F          overwrite FILE if it exists (without -F an existing FILE is left untouched
              and the script fails)
  -v          show ffmpeg's own output
  -h          print this help

Examples:
  $PROG                                   # bounce.mp4: 60 s, 640x480, 30 fps, with audio
  $PROG -m testsrc -o /tmp/bars.mp4       # 10 s, 320x240, 10 fps test pattern with audio
  $PROG -d 5 -s 1280x720 -r 25 -a no -o ball720.webm
USAGE
}

die_usage() { printf '%s: error: %s\n' "$PROG" "$*" >&2; printf "Try '%s -h' for help.\n" "$PROG" >&2; exit 2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# Unset means "the mode's default"; an explicitly empty value is an error below.
unset duration size rate output
mode=bounce image="" audio=yes force=0 verbose=0

while getopts ':m:d:s:r:o:i:a:Fvh' opt; do
  case "$opt" in
    m) mode="$OPTARG" ;;
    d) duration="$OPTARG" ;;
    s) size="$OPTARG" ;;
    r) rate="$OPTARG" ;;
    o) output="$OPTARG" ;;
    i) image="$OPTARG" ;;
    a) audio="$OPTARG" ;;
    F) force=1 ;;
    v) verbose=1 ;;
    h) usage; exit 0 ;;
    :) die_usage "option -$OPTARG needs a value" ;;
    \?) die_usage "unknown option -$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die_usage "unexpected argument '$1' (options only; the output file is given with -o)"

case "$mode" in
  bounce) : "${duration=60}" "${size=640x480}" "${rate=30}" "${output=bounce.mp4}" ;;
  testsrc) : "${duration=10}" "${size=320x240}" "${rate=10}" "${output=testsrc.mp4}" ;;
  *) die_usage "unknown mode '$mode' for -m (use bounce or testsrc)" ;;
esac

# Values are checked here so that the user sees the reason, not an ffmpeg parse error.
[[ "$duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v d="$duration" 'BEGIN { exit !(d > 0) }' \
  || die_usage "duration for -d must be a positive number of seconds, got '$duration'"
[[ "$size" =~ ^([0-9]+)x([0-9]+)$ ]] || die_usage "size for -s must be WIDTHxHEIGHT, e.g. 640x480, got '$size'"
width=$((10#${BASH_REMATCH[1]})) height=$((10#${BASH_REMATCH[2]}))
if [ "$width" -lt 16 ] || [ "$height" -lt 16 ] || [ "$width" -gt 7680 ] || [ "$height" -gt 4320 ]; then
  die_usage "size for -s must be between 16x16 and 7680x4320, got '$size'"
fi
if [ $((width % 2)) -ne 0 ] || [ $((height % 2)) -ne 0 ]; then
  die_usage "size for -s must have even width and height (4:2:0 video), got '$size'"
fi
if [[ "$rate" =~ ^([0-9]+)/([0-9]+)$ ]]; then
  [ "$((10#${BASH_REMATCH[1]}))" -gt 0 ] && [ "$((10#${BASH_REMATCH[2]}))" -gt 0 ] \
    || die_usage "frame rate for -r must be positive, got '$rate'"
elif [[ "$rate" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
  awk -v r="$rate" 'BEGIN { exit !(r > 0 && r <= 240) }' || die_usage "frame rate for -r must be above 0 and at most 240, got '$rate'"
else
  die_usage "frame rate for -r must be a number or a fraction like 30000/1001, got '$rate'"
fi
case "$audio" in
  yes|on|1) audio=yes ;;
  no|off|0) audio=no ;;
  *) die_usage "value for -a must be yes or no, got '$audio'" ;;
esac

[ -n "$output" ] || die_usage "output file for -o must not be empty"
ext="${output##*.}"; [ "$ext" != "$output" ] || ext=""
case "${ext,,}" in
  mp4|m4v) container=mp4 vcodec=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p) acodec=(-c:a aac) ;;
  mov) container=mov vcodec=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p) acodec=(-c:a aac) ;;
  mkv) container=matroska vcodec=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p) acodec=(-c:a aac) ;;
  webm) container=webm vcodec=(-c:v libvpx -deadline realtime -cpu-used 8 -b:v 1M -pix_fmt yuv420p) acodec=(-c:a libopus -vbr constrained) ;;
  *) die_usage "output '$output' needs one of the extensions .mp4 .m4v .mov .mkv .webm" ;;
esac
outdir="$(dirname -- "$output")"
[ -d "$outdir" ] || die "output directory '$outdir' does not exist"
if [ -e "$output" ] && [ "$force" -ne 1 ]; then
  die "'$output' already exists; not touching it (use -F to overwrite)"
fi
[ ! -d "$output" ] || die "'$output' is a directory"

command -v ffmpeg >/dev/null || die "ffmpeg not found (Debian: apt-get install ffmpeg)"

inputs=() filter=""
if [ "$mode" = bounce ]; then
  : "${image:=$ROOT/data/ball.png}"
  [ -f "$image" ] || die_usage "image '$image' for -i not found"
  [ -r "$image" ] || die_usage "image '$image' for -i is not readable"
  command -v ffprobe >/dev/null || die "ffprobe not found (Debian: apt-get install ffmpeg)"
  # file: keeps names with ':' or a leading '-' from being read as protocols or options.
  dims="$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "file:$image" </dev/null 2>/dev/null | head -n1 || true)"
  [[ "$dims" =~ ^([1-9][0-9]*)x([1-9][0-9]*)$ ]] || die_usage "image '$image' for -i is not an image ffmpeg can read"
  iw="${BASH_REMATCH[1]}" ih="${BASH_REMATCH[2]}"
  if [ "$iw" -ge "$width" ] || [ "$ih" -ge "$height" ]; then
    die_usage "image '$image' (${iw}x${ih}) must be smaller than the frame (${width}x${height})"
  fi
  inputs=(-f lavfi -i "color=c=black:s=${width}x${height}:r=${rate}:d=${duration}"
          -loop 1 -framerate "$rate" -i "file:$image")
  # Triangle waves in x and y: the image bounces off the frame edges. Speeds scale with the
  # frame so a pass takes a few seconds at any size; the different periods avoid a diagonal.
  xexpr="(W-w)-abs(mod(t*W*0.37+(W-w)/2,2*(W-w))-(W-w))"
  yexpr="(H-h)-abs(mod(t*H*0.29+(H-h)/3,2*(H-h))-(H-h))"
  filter="[1:v]format=rgba[img];[0:v][img]overlay=x='${xexpr}':y='${yexpr}':shortest=1:format=yuv420,format=yuv420p[v]"
else
  [ -z "$image" ] || printf '%s: warning: -i applies to bounce mode only; ignored\n' "$PROG" >&2
  inputs=(-f lavfi -i "testsrc=s=${width}x${height}:r=${rate}:d=${duration}")
  filter="[0:v]format=yuv420p[v]"
fi

maps=(-map '[v]')
if [ "$audio" = yes ]; then
  # Frequency modulation: 440 Hz carrier, +-40 Hz deviation at 0.5 Hz (phase index 40/0.5).
  inputs+=(-f lavfi -i "aevalsrc=0.4*sin(2*PI*440*t+80*sin(2*PI*0.5*t)):s=48000:c=mono:d=${duration}")
  if [ "$mode" = bounce ]; then maps+=(-map 2:a); else maps+=(-map 1:a); fi
  maps+=("${acodec[@]}" -b:a 32k -ac 1 -ar 48000)
fi

# Write next to the output under a temporary name, then rename: a failed or interrupted run
# never leaves a half-written file behind, and with -F the old file survives until the new one
# is complete.
tmp="$(mktemp -- "$outdir/.$(basename -- "$output").XXXXXX")" || die "cannot create a file in '$outdir'"
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 130' INT TERM

loglevel=(-loglevel error)
[ "$verbose" -eq 1 ] && loglevel=(-loglevel info -stats)
# Keyframe every 2 s so that players (and file-sender's looping) can seek.
gop="$(awk -v r="$rate" 'BEGIN { n = split(r, a, "/"); f = (n == 2 ? a[1] / a[2] : r); g = int(f * 2 + 0.5); print (g < 1 ? 1 : g) }')"
if ! ffmpeg -hide_banner -nostdin "${loglevel[@]}" -y "${inputs[@]}" \
    -filter_complex "$filter" "${maps[@]}" "${vcodec[@]}" -g "$gop" -r "$rate" -t "$duration" \
    -f "$container" "file:$tmp"; then
  die "ffmpeg failed to write '$output' (run with -v for details)"
fi
# mktemp makes the file private; give the result the usual permissions for a new file.
chmod "$(printf '%o' $((0666 & ~$(umask))))" -- "$tmp"
mv -f -- "$tmp" "$output"
trap - EXIT
audio_note="with audio"; [ "$audio" = yes ] || audio_note="no audio"
printf '%s: wrote %s (%s, %s s, %sx%s, %s fps, %s)\n' "$PROG" "$output" "$mode" "$duration" "$width" "$height" "$rate" "$audio_note"
