#!/usr/bin/env bash
# Re-fetches the JavaScript that report.html and the slide viewer pages inline: the minified
# browser builds of Vega, Vega-Lite and vega-embed (third_party/vega/README.md) and of
# OpenSeadragon (third_party/openseadragon/README.md) at the versions pinned below, their
# licences, the notices of the npm packages bundled into Vega's, and a versions.txt per folder
# (name, version, the npm tarball's integrity). Needs npm and its registry. To update: change a
# version below, run this, rebuild (CMake re-embeds the files), run
# tests/e2e/report_browser_test.sh and tests/e2e/viewer_browser_test.sh, and commit the lot.
# Usage: tools/vendor_js.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/vega"
# name version file-in-the-package (its browser build, UMD: sets window.vega, vegaLite, vegaEmbed)
PACKAGES=(
  "vega 6.4.0 build/vega.min.js"
  "vega-lite 6.5.0 build/vega-lite.min.js"
  "vega-embed 7.3.0 build/vega-embed.min.js"
)
command -v npm > /dev/null || { echo "vendor_js: needs npm" >&2; exit 1; }
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT

# OpenSeadragon (the viewer pages, src/eval/Viewer.cpp): its UMD build (sets window.OpenSeadragon)
# and licence. No npm dependency; its button images are not used (the pages hide OSD's controls).
OSD_VERSION=5.0.1
OSD_DEST="$ROOT/third_party/openseadragon"
mkdir -p "$T/osd" "$OSD_DEST"
(cd "$T/osd" && npm pack --json --silent "openseadragon@$OSD_VERSION" > pack.json)
tar xzf "$T/osd"/*.tgz -C "$T/osd"
cp "$T/osd/package/build/openseadragon/openseadragon.min.js" "$OSD_DEST/openseadragon.min.js"
cp "$T/osd/package/LICENSE.txt" "$OSD_DEST/LICENSE.txt"
echo "openseadragon $OSD_VERSION openseadragon.min.js $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$T/osd/pack.json")" \
  > "$OSD_DEST/versions.txt"
echo "vendor_js: wrote $(ls "$OSD_DEST" | tr '\n' ' ')"
cat "$OSD_DEST/versions.txt"

mkdir -p "$DEST"
: > "$T/versions.txt"
specs=()
for p in "${PACKAGES[@]}"; do
  read -r name version file <<< "$p"
  specs+=("$name@$version")
  mkdir -p "$T/$name"
  (cd "$T/$name" && npm pack --json --silent "$name@$version" > pack.json)
  integrity="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$T/$name/pack.json")"
  tar xzf "$T/$name"/*.tgz -C "$T/$name"
  cp "$T/$name/package/$file" "$DEST/$(basename "$file")"
  cp "$T/$name/package/LICENSE" "$DEST/LICENSE-$name"
  echo "$name $version $(basename "$file") $integrity" >> "$T/versions.txt"
done
cp "$T/versions.txt" "$DEST/versions.txt"

# The bundles carry the code of their npm dependencies (d3 modules and others) without their
# licence comments: collect the notices of the whole production dependency tree. It is a superset
# of what is bundled (it also holds command-line-only packages such as yargs).
npm install --silent --no-audit --no-fund --omit=dev --ignore-scripts --prefix "$T/tree" "${specs[@]}" > /dev/null
python3 - "$T/tree/node_modules" "$DEST/THIRD_PARTY_NOTICES.txt" <<'PY'
import json, os, sys
root, out = sys.argv[1], sys.argv[2]
dirs = []
for d in sorted(os.listdir(root)):
    if d.startswith("."):
        continue
    p = os.path.join(root, d)
    dirs += [os.path.join(p, s) for s in sorted(os.listdir(p))] if d.startswith("@") else [p]
with open(out, "w") as f:
    f.write("Notices of the npm packages in the dependency tree of the vendored Vega, Vega-Lite and\n"
            "vega-embed builds (written by tools/vendor_js.sh; packages of type declarations only\n"
            "are left out).\n")
    for d in dirs:
        meta = json.load(open(os.path.join(d, "package.json")))
        if meta["name"].startswith("@types/"):
            continue
        lic = [n for n in sorted(os.listdir(d)) if n.lower().startswith(("license", "licence", "copying"))]
        f.write("\n" + "=" * 78 + "\n%s %s (%s)\n" % (meta["name"], meta["version"], meta.get("license", "?")))
        f.write("=" * 78 + "\n")
        f.write(open(os.path.join(d, lic[0]), encoding="utf-8").read().strip() + "\n" if lic
                else "(the package ships no licence file; its package.json says %s)\n" % meta.get("license", "?"))
PY
echo "vendor_js: wrote $(ls "$DEST" | tr '\n' ' ')"
cat "$DEST/versions.txt"
