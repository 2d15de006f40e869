#!/usr/bin/env bash
# Builds an Otoroshi classpath from Maven Central into the cache (the docs' fat jar lives on GitHub, which we
# cannot reach). Exit 3 when the registry does not serve the artifact (recorded as "unavailable").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${TORII_CACHE:-$HOME/.cache/torii}
home=$cache/otoroshi-$OTOROSHI_VERSION
if [[ -f $home/lib/.complete ]]; then exit 0; fi
src=$cache/src/otoroshi-$OTOROSHI_VERSION
mkdir -p "$src"
cat >"$src/pom.xml" <<POM
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.torii</groupId>
  <artifactId>otoroshi-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>fr.maif</groupId><artifactId>otoroshi_2.12</artifactId><version>$OTOROSHI_VERSION</version></dependency>
    <!-- linked unmanaged in Otoroshi's own build, absent from its published pom -->
    <dependency><groupId>com.arakelian</groupId><artifactId>java-jq</artifactId><version>1.3.0</version></dependency>
  </dependencies>
</project>
POM
log=$src/mvn.log
rm -rf "$home/lib.tmp"
if ! mvn -B -U -f "$src/pom.xml" dependency:copy-dependencies -DoutputDirectory="$home/lib.tmp" -DincludeScope=runtime >"$log" 2>&1; then
  if grep -qE 'Could not (find|resolve) .*fr\.maif:otoroshi|fr\.maif:otoroshi_2\.12:(jar|pom):[0-9.]+ (was not found|is missing)' "$log"; then
    echo "Maven Central does not serve fr.maif:otoroshi_2.12:$OTOROSHI_VERSION: $(grep -oE 'Could not find artifact [^ ]+|[^ ]+ was not found in [^ ]+' "$log" | head -1)"
    exit 3
  fi
  tail -40 "$log"; exit 1
fi
rm -rf "$home/lib" && mv "$home/lib.tmp" "$home/lib" && touch "$home/lib/.complete"
