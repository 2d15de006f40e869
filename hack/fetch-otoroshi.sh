#!/usr/bin/env bash
# Resolves Otoroshi's runtime classpath with Maven into the cache, keyed by version. Otoroshi's published pom
# (fr.maif:otoroshi_2.12) lists its exact runtime jars; Maven Central serves them, and TORII_MAVEN_REPO (a Maven
# repository URL or folder, e.g. ../shared/maven) serves what Central lacks (Otoroshi itself, a few build-only
# artifacts). Writes lib/ (the jars) and cp.txt (sbt's classpath order, used to start it deterministically).
# Exit 3 when no repository serves the artifact (recorded as "unavailable" by hack/stack.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
home=$cache/otoroshi-$OTOROSHI_VERSION
if [[ -f $home/lib/.complete && -f $home/cp.txt ]]; then exit 0; fi
src=$cache/src/otoroshi-$OTOROSHI_VERSION
mkdir -p "$src"
repos=""
if [[ -n ${TORII_MAVEN_REPO:-} ]]; then
  url=$TORII_MAVEN_REPO
  [[ $url == *://* ]] || url="file://$(cd "$url" && pwd)"
  repos="<repositories><repository><id>torii-extra</id><url>$url</url></repository></repositories>"
fi
cat >"$src/pom.xml" <<POM
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.torii</groupId>
  <artifactId>otoroshi-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  $repos
  <dependencies>
    <dependency><groupId>fr.maif</groupId><artifactId>otoroshi_2.12</artifactId><version>$OTOROSHI_VERSION</version></dependency>
  </dependencies>
</project>
POM
log=$src/mvn.log
rm -rf "$home/lib.tmp"
mkdir -p "$home"
if ! mvn -B -f "$src/pom.xml" dependency:copy-dependencies dependency:build-classpath \
    -DoutputDirectory="$home/lib.tmp" -DincludeScope=runtime -Dmdep.outputFile="$home/cp.raw" >"$log" 2>&1; then
  if grep -qE 'Could not (find|resolve) .*fr\.maif:otoroshi|fr\.maif:otoroshi_2\.12:(jar|pom):[0-9.]+ (was not found|is missing)' "$log"; then
    echo "no Maven repository serves fr.maif:otoroshi_2.12:$OTOROSHI_VERSION (set TORII_MAVEN_REPO to one that does): $(grep -oE 'Could not find artifact [^ ]+' "$log" | head -1)"
    exit 3
  fi
  tail -40 "$log"; exit 1
fi
# The classpath in sbt's order, pointing at the copied jars (the local repository may be cleaned).
python3 - "$home" <<'PY'
import os, sys
home = sys.argv[1]
raw = open(os.path.join(home, "cp.raw")).read().strip().split(os.pathsep)
lib = os.path.join(home, "lib")
open(os.path.join(home, "cp.txt"), "w").write(os.pathsep.join(os.path.join(lib, os.path.basename(p)) for p in raw))
PY
rm -rf "$home/lib" "$home/cp.raw" && mv "$home/lib.tmp" "$home/lib" && touch "$home/lib/.complete"
echo "otoroshi $OTOROSHI_VERSION: $(ls "$home/lib" | wc -l) jars"
