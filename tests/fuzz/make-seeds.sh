#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Writes seed corpora for fuzz-mp3, fuzz-ogg and fuzz-icy into DIR
# (corpus-mp3/, corpus-ogg/, corpus-icy/), from short media encoded on the
# spot with gst-launch-1.0 (the elements the tests use: lamemp3enc,
# xingmux, id3v2mux, vorbisenc, opusenc, flacenc, speexenc, theoraenc,
# oggmux).  Each seed is two bytes (selector, control) and the media, or a
# piece of it.  Keep DIR outside the source tree.
#
#   tests/fuzz/make-seeds.sh /tmp/fuzz-seeds
set -eu

dir=${1:?usage: make-seeds.sh DIR}
media="$dir/media"
mkdir -p "$media" "$dir/corpus-mp3" "$dir/corpus-ogg" "$dir/corpus-icy"

encode () {
  out=$1
  shift
  if ! gst-launch-1.0 -q "$@" ! filesink location="$media/$out" >/dev/null 2>&1; then
    echo "make-seeds: could not encode $out (missing GStreamer element?)" >&2
    rm -f "$media/$out"
  fi
}

tone="audiotestsrc wave=sine num-buffers=8 samplesperbuffer=1152"

# MPEG 1, 2 and 2.5 Layer III at constant bitrates; VBR with a Xing header;
# an ID3v2 tag in front
encode cbr44.mp3 $tone ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc target=bitrate cbr=true bitrate=128
encode mono22.mp3 $tone ! audio/x-raw,rate=22050,channels=1 ! lamemp3enc target=bitrate cbr=true bitrate=32
encode low8.mp3 $tone ! audio/x-raw,rate=8000,channels=1 ! lamemp3enc target=bitrate cbr=true bitrate=8
encode vbr.mp3 $tone ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc target=quality quality=6 ! xingmux
encode tagged.mp3 $tone ! audio/x-raw,rate=32000,channels=1 ! lamemp3enc target=bitrate cbr=true bitrate=48 \
  ! taginject tags="title=Seed,artist=Fuzz" ! id3v2mux

# Ogg: each codec the scanner knows, two streams in one link, a chain
short="audiotestsrc wave=sine num-buffers=4 samplesperbuffer=960"
encode vorbis.ogg $short ! audio/x-raw,rate=8000,channels=1 ! vorbisenc quality=0.0 ! oggmux
encode opus.ogg $short ! audio/x-raw,rate=48000,channels=1 ! opusenc bitrate=6000 ! oggmux
encode flac.ogg $short ! audio/x-raw,rate=8000,channels=1 ! flacenc ! oggmux
encode speex.ogg $short ! audio/x-raw,rate=8000,channels=1 ! speexenc ! oggmux
gst-launch-1.0 -q oggmux name=mux ! filesink location="$media/theora.ogg" \
  videotestsrc num-buffers=2 ! video/x-raw,width=16,height=16,framerate=1/1 ! theoraenc ! mux. \
  $short ! audio/x-raw,rate=48000,channels=1 ! opusenc ! mux. >/dev/null 2>&1 \
  || { echo "make-seeds: could not encode theora.ogg" >&2; rm -f "$media/theora.ogg"; }
if [ -f "$media/opus.ogg" ] && [ -f "$media/vorbis.ogg" ]; then
  cat "$media/opus.ogg" "$media/vorbis.ogg" > "$media/chain.ogg"
fi

# seed NAME SELECTOR CONTROL FILE [BYTES]: the selector and control bytes,
# then FILE (its first BYTES bytes if given)
seed () {
  out=$1 sel=$2 ctl=$3 file=$4
  [ -f "$file" ] || return 0
  {
    printf "\\$(printf %03o "$sel")\\$(printf %03o "$ctl")"
    if [ $# -ge 5 ]; then head -c "$5" "$file"; else cat "$file"; fi
  } > "$out"
}

for f in "$media"/*.mp3; do
  [ -f "$f" ] || continue
  b=$(basename "$f" .mp3)
  for mode in 0 1 2 3 4 5; do
    seed "$dir/corpus-mp3/$b-$mode" "$mode" 37 "$f"
  done
  seed "$dir/corpus-mp3/$b-cut" 2 200 "$f" 700
  seed "$dir/corpus-icy/$b" 0 8 "$f"
done
for f in "$media"/*.ogg; do
  [ -f "$f" ] || continue
  b=$(basename "$f" .ogg)
  for mode in 0 1 2 3; do
    seed "$dir/corpus-ogg/$b-$mode" "$mode" 37 "$f"
  done
  seed "$dir/corpus-ogg/$b-cut" 1 200 "$f" 900
  seed "$dir/corpus-icy/$b" 1 9 "$f"
done
printf 'GET /stream HTTP/1.0\r\nIcy-MetaData: 1\r\nUser-Agent: seed\r\n\r\n' > "$dir/corpus-icy/request"
printf "\\001StreamTitle='A - B';" > "$dir/corpus-icy/title"
for c in mp3 ogg icy; do
  echo "make-seeds: $dir/corpus-$c: $(ls "$dir/corpus-$c" | wc -l) seeds"
done
