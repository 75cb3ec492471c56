# Helpers the end-to-end scripts share; sourced after they set `fail` and W (their temp folder).

# write_blank_slide PATH WIDTH HEIGHT: a white pyramidal JPEG TIFF, where tissue detection finds
# nothing (a slide with no patch).
write_blank_slide() {
  vips black "$W/black.v" "$2" "$3" --bands 3
  vips linear "$W/black.v" "$W/white.v" 1 255 --uchar
  vips tiffsave "$W/white.v" "$1" --tile --pyramid --compression jpeg --tile-width 256 --tile-height 256
}

# browser_test_dir NAME: checks that Debian's chromium is there, makes <build>/Testing/NAME empty
# (the build is the folder of the slidetrain binary, BIN), for the pages and screenshots the test
# keeps, and prints its path.
browser_test_dir() {
  command -v chromium > /dev/null || fail "no chromium on PATH: launch/setup.sh installs it (Debian package chromium)"
  local out; out="$(cd "$(dirname "$BIN")" && pwd)/Testing/$1"
  rm -rf "$out"; mkdir -p "$out"
  echo "$out"
}

# mutate PAGE DIR NAME PYTHON-EXPRESSION-OF-s: writes DIR/NAME.html, the page changed by the
# expression (which must change it).
mutate() {
  python3 - "$1" "$2/$3.html" "$4" <<'PY'
import sys
s = open(sys.argv[1]).read()
t = eval(sys.argv[3])
assert t != s, "the mutation changed nothing"
open(sys.argv[2], "w").write(t)
PY
}

# expect_failure DIR NAME REGEX [checker args]: the page checker (the array CHECK) must fail on
# DIR/NAME.html, saying REGEX; its output goes to $W/NAME.log.
expect_failure() {
  local dir="$1" name="$2" regex="$3"; shift 3
  if "${CHECK[@]}" "$dir/$name.html" --timeout 10 "$@" > "$W/$name.log" 2>&1; then
    cat "$W/$name.log"; fail "the checker passed a page with $name"
  fi
  grep -qE "$regex" "$W/$name.log" || { cat "$W/$name.log"; fail "the checker failed on $name without saying '$regex'"; }
  echo "broken page ($name) fails as it should: $(grep -m1 -E "$regex" "$W/$name.log")"
}
