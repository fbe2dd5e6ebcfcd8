#!/usr/bin/env bash
# Regenerates the voicemail prompts in media/prompts/en/ from prompts.tsv
# (lines "name<TAB>text", "#" starts a comment): espeak-ng speaks each text
# and sox writes it to NAME.wav, then every .wav the tsv does not name is
# deleted. The WAVs are committed; run this after editing the tsv.
# Format: RIFF WAV, PCM signed 16-bit little-endian, mono, 8000 Hz, leading
# and trailing silence trimmed to 50 ms, peak normalised to -3 dBFS.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

dir=media/prompts/en
tsv=$dir/prompts.tsv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A keep=()
line_no=0
while IFS= read -r line || [ -n "$line" ]; do
    line_no=$((line_no + 1))
    line=${line%$'\r'}
    case $line in '' | '#'*) continue ;; esac
    if [[ $line != *$'\t'* ]]; then
        echo "$tsv:$line_no: no tab between name and text" >&2
        exit 1
    fi
    name=${line%%$'\t'*}
    text=${line#*$'\t'}
    if [[ ! $name =~ ^[a-z0-9][a-z0-9-]*$ ]] || [ -z "$text" ]; then
        echo "$tsv:$line_no: bad name or empty text: $line" >&2
        exit 1
    fi
    if [ -n "${keep[$name]:-}" ]; then
        echo "$tsv:$line_no: $name is named twice" >&2
        exit 1
    fi
    keep[$name]=1

    espeak-ng -v en-us -s 150 -g 2 -w "$tmp/raw.wav" -- "$text"
    # silence/reverse/silence/reverse strips both ends; pad puts 50 ms back.
    # -R seeds the dither, so the same text always yields the same bytes.
    sox -R "$tmp/raw.wav" -t wav -e signed-integer -b 16 -c 1 "$tmp/out.wav" \
        silence 1 0.005 -55d reverse silence 1 0.005 -55d reverse \
        rate -v 8000 pad 0.05 0.05 gain -n -3
    mv "$tmp/out.wav" "$dir/$name.wav"
done <"$tsv"

for wav in "$dir"/*.wav; do
    [ -e "$wav" ] || continue
    name=$(basename "$wav" .wav)
    if [ -z "${keep[$name]:-}" ]; then
        echo "removing $wav: not in $tsv"
        rm -f -- "$wav"
    fi
done
echo "${#keep[@]} prompts in $dir"
