#!/bin/sh
# Builds, once, the real servers the tests run against: versitygw (an S3 gateway over a
# directory) and fake-gcs-server (a GCS emulator) for the blob store tests, and Jaeger v2 (an
# OTLP trace receiver with a query API) for the trace tests, at pinned versions, from the Go
# module proxy into a cache outside the repo. test/support/blob-servers.ts and
# test/support/jaeger.ts find them at the same paths. A build lands in a temporary directory
# and is renamed into place, so an interrupted or concurrent run never leaves a half-written
# binary behind.
set -eu

cache="${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers"

# find_go: the machine's Go, or $GO_TOOLCHAIN fetched once from the Go module proxy.
. "$(dirname "$0")/go-toolchain.sh"

# ensure NAME VERSION PACKAGE PURPOSE SECONDS [tool]: $cache/NAME-VERSION/NAME exists
# afterwards. SECONDS is what the message says a build takes. With `tool`, the program is one
# `go install` refuses because its go.mod has replace directives: it is built inside a throwaway
# module that requires it as a tool (`go get -tool`), which resolves its dependencies without
# those replacements.
ensure() {
  name=$1
  version=$2
  package=$3
  purpose=$4
  seconds=$5
  how=${6:-install}
  dir="$cache/$name-$version"
  if [ -x "$dir/$name" ]; then
    return 0
  fi
  if ! go=$(find_go); then
    echo "eddy: the $purpose tests need $name $version, built from source with Go, but there is no \`go\` on PATH nor /usr/local/go/bin/go, and fetching $GO_TOOLCHAIN from proxy.golang.org failed" >&2
    exit 1
  fi
  echo "eddy: building $name $version for the $purpose tests (once, ~$seconds s)..." >&2
  mkdir -p "$dir"
  temporary=$(mktemp -d "$dir/.build.XXXXXX")
  if [ "$how" = tool ]; then
    mkdir "$temporary/module"
    # GOWORK=off: a go.work above the cache must not pull this module into a workspace. `go get`
    # lists every module it adds (hundreds): its output is shown only if the build fails.
    if ! (
      cd "$temporary/module" &&
        GOWORK=off "$go" mod init eddy-test-server-build &&
        GOWORK=off "$go" get -tool "$package@$version" &&
        GOWORK=off "$go" build -o "$temporary/$name" "$package"
    ) >"$temporary/build.log" 2>&1; then
      cat "$temporary/build.log" >&2
      built=false
    else
      built=true
    fi
  elif GOBIN="$temporary" "$go" install "$package@$version" >&2; then
    built=true
  else
    built=false
  fi
  if [ "$built" = false ]; then
    rm -rf "$temporary"
    echo "eddy: building $name $version with $go failed (output above)" >&2
    exit 1
  fi
  # rename(2) replaces atomically: a concurrent build that finished first is simply overwritten
  # by an identical binary.
  mv -f "$temporary/$name" "$dir/$name"
  rm -rf "$temporary"
  echo "eddy: built $dir/$name" >&2
}

ensure versitygw v1.8.0 github.com/versity/versitygw/cmd/versitygw S3 90
ensure fake-gcs-server v1.56.1 github.com/fsouza/fake-gcs-server GCS 90
ensure jaeger v1.75.0 github.com/jaegertracing/jaeger/cmd/jaeger trace 360 tool
