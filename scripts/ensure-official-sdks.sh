#!/bin/sh
# Builds, once, the function servers written with the official StateFun Go and Java SDKs that
# the end-to-end tests run Eddy against (test/support/official-sdk-servers.ts):
#
# * .tools/official-sdks/go/server: test/e2e/official-sdks/go, built with
#   github.com/apache/flink-statefun/statefun-sdk-go/v3 v3.3.0 from the Go module proxy
#   (its go.sum, committed, verifies every download);
# * .tools/official-sdks/java/server: test/e2e/official-sdks/java compiled against
#   org.apache.flink:statefun-sdk-java:3.3.0, whose jars are fetched from Maven Central with
#   Maven once into ${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers.
#
# Idempotent: a build is redone only when its sources (or this script) change. Builds land in
# temporary directories and are renamed into place, so an interrupted run never leaves a
# half-built server behind. Each server is checked to start and print its port before it is
# published. Progress goes to stderr; on failure it exits non-zero with the reason.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/scripts/go-toolchain.sh"

STATEFUN_VERSION=3.3.0
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.11.0
JAVA_MAJOR_MIN=11

tools="$root/.tools/official-sdks"
sources="$root/test/e2e/official-sdks"
java_libs="${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers/statefun-sdk-java-$STATEFUN_VERSION/libs"

say() { echo "ensure-official-sdks: $*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

# fingerprint FILE...: changes whenever one of the files (or this script) does.
fingerprint() { cat "$root/scripts/ensure-official-sdks.sh" "$@" | cksum; }

# up_to_date SDK FINGERPRINT: the server of SDK was built from these sources.
up_to_date() {
  [ -x "$tools/$1/server" ] && [ -f "$tools/$1/.eddy-sources" ] && [ "$(cat "$tools/$1/.eddy-sources")" = "$2" ]
}

# check_starts DIR: DIR/server prints a port and exits when its stdin closes (here: at once).
check_starts() {
  if ! port=$("$1/server" 0 </dev/null 2>"$1/check.log" | head -n 1) || ! [ "$port" -gt 0 ] 2>/dev/null; then
    cat "$1/check.log" >&2
    return 1
  fi
  rm -f "$1/check.log"
}

# publish SDK DIR FINGERPRINT: DIR becomes $tools/SDK.
publish() {
  # A concurrent run published the same sources meanwhile: keep its build, in use perhaps.
  if up_to_date "$1" "$3"; then
    return 0
  fi
  echo "$3" >"$2/.eddy-sources"
  rm -rf "$tools/$1"
  # rename(2) of a directory fails when the target exists: then a concurrent run got there first.
  if ! mv -T "$2" "$tools/$1" 2>/dev/null && ! up_to_date "$1" "$3"; then
    fail "could not move the $1 build into $tools/$1"
  fi
}

# new_build SDK: a fresh temporary directory under $tools, removed on exit if not published.
new_build() {
  mkdir -p "$tools"
  # Leftovers of runs that were killed outright (no trap ran) an hour or more ago.
  find "$tools" -maxdepth 1 -name ".build-$1.*" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
  mktemp -d "$tools/.build-$1.XXXXXX"
}

temporaries=""
trap 'rm -rf $temporaries' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_go() {
  go_sources="$sources/go"
  stamp=$(fingerprint "$go_sources/go.mod" "$go_sources/go.sum" "$go_sources/main.go")
  if up_to_date go "$stamp"; then
    return 0
  fi
  go=$(find_go) ||
    fail "the Go SDK tests need Go to build test/e2e/official-sdks/go, but there is no \`go\` on PATH nor /usr/local/go/bin/go, and fetching $GO_TOOLCHAIN from proxy.golang.org failed"
  say "building the Go SDK functions (statefun-sdk-go v$STATEFUN_VERSION from the Go module proxy) with $go..."
  build=$(new_build go)
  temporaries="$temporaries $build"
  # -mod=readonly: the build uses go.mod and go.sum as committed, never rewrites them.
  (cd "$go_sources" && "$go" build -mod=readonly -buildvcs=false -trimpath -o "$build/server" .) >&2 ||
    fail "building test/e2e/official-sdks/go with $go failed (output above)"
  check_starts "$build" || fail "the Go SDK functions were built but do not start (output above)"
  publish go "$build" "$stamp"
  say "ready: $tools/go/server"
}

# fetch_java_libs: the SDK's jar and its runtime dependencies in $java_libs, once.
fetch_java_libs() {
  if [ -d "$java_libs" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    fail "the Java SDK tests fetch org.apache.flink:statefun-sdk-java:$STATEFUN_VERSION from Maven Central with Maven, but there is no \`mvn\` on PATH: \`apt-get install maven\`"
  say "fetching statefun-sdk-java $STATEFUN_VERSION from Maven Central (once, ~2 MB)..."
  home=$(dirname "$java_libs")
  mkdir -p "$home"
  find "$home" -maxdepth 1 -name '.fetch.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
  fetch=$(mktemp -d "$home/.fetch.XXXXXX")
  temporaries="$temporaries $fetch"
  # statefun-sdk-java 3.3.0 depends on statefun-protocol-shaded 3.3.0, which was never published
  # (Maven Central has 3.0.0 to 3.2.0); the SDK's jar contains its classes already.
  cat >"$fetch/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eddy.test</groupId>
  <artifactId>statefun-sdk-java-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.flink</groupId>
      <artifactId>statefun-sdk-java</artifactId>
      <version>$STATEFUN_VERSION</version>
      <exclusions>
        <exclusion>
          <groupId>org.apache.flink</groupId>
          <artifactId>statefun-protocol-shaded</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
POM
  # A private local repository: nothing lands in ~/.m2, and it goes away with $fetch. Mirrors
  # and proxies from ~/.m2/settings.xml still apply. Maven's output is shown only when it fails.
  if ! mvn --batch-mode --no-transfer-progress --file "$fetch/pom.xml" \
    -Dmaven.repo.local="$fetch/repository" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$fetch/libs" >"$fetch/maven.log" 2>&1; then
    cat "$fetch/maven.log" >&2
    fail "fetching statefun-sdk-java $STATEFUN_VERSION with Maven failed (output above)"
  fi
  if ! mv -T "$fetch/libs" "$java_libs" 2>/dev/null && [ ! -d "$java_libs" ]; then
    fail "could not move the fetched jars into $java_libs"
  fi
}

ensure_java() {
  java_source="$sources/java/OfficialSdkFunctions.java"
  stamp=$(fingerprint "$java_source")
  if up_to_date java "$stamp" && [ -d "$java_libs" ]; then
    return 0
  fi
  command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 ||
    fail "the Java SDK tests need a JDK $JAVA_MAJOR_MIN or newer (\`java\` and \`javac\` on PATH), e.g. \`apt-get install openjdk-17-jdk-headless\`"
  # `openjdk version "17.0.15" 2025-04-15`, `java version "1.8.0_402"`, `openjdk version "25-ea" …`.
  java_major=$(java -version 2>&1 | sed -n 's/^.* version "\([0-9]*\)[."-].*$/\1/p' | head -n 1)
  if [ -z "$java_major" ] || [ "$java_major" -lt "$JAVA_MAJOR_MIN" ]; then
    fail "the Java SDK tests need Java $JAVA_MAJOR_MIN or newer, but \`$(command -v java)\` is: $(java -version 2>&1 | head -n 1)"
  fi
  fetch_java_libs
  say "compiling the Java SDK functions (statefun-sdk-java $STATEFUN_VERSION from Maven Central)..."
  build=$(new_build java)
  temporaries="$temporaries $build"
  javac -nowarn -d "$build/classes" -cp "$java_libs/*" "$java_source" >&2 ||
    fail "compiling $java_source failed (output above)"
  # exec: the server's PID is the java process's, so the tests stop it by that PID.
  cat >"$build/server" <<SERVER
#!/bin/sh
exec java -cp "$java_libs/*:\$(dirname "\$0")/classes" OfficialSdkFunctions "\$@"
SERVER
  chmod +x "$build/server"
  check_starts "$build" || fail "the Java SDK functions were compiled but do not start (output above)"
  publish java "$build" "$stamp"
  say "ready: $tools/java/server"
}

ensure_go
ensure_java
