# Sourced (not run) by the scripts that build Go programs for the tests: find_go prints the
# path of a Go toolchain, the machine's own or, when it has none, one fetched once from the Go
# module proxy (Go publishes its toolchains there as golang.org/toolchain, so it comes from a
# registry too) into ${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers. Returns non-zero when
# there is no Go and the fetch failed.

GO_TOOLCHAIN=go1.26.8

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [ -x /usr/local/go/bin/go ]; then
    echo /usr/local/go/bin/go
  else
    fetch_go
  fi
}

# fetch_go: downloads $GO_TOOLCHAIN from the Go module proxy into the cache, once.
fetch_go() {
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers/$GO_TOOLCHAIN"
  module="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-amd64"
  if [ ! -x "$dir/$module/bin/go" ]; then
    echo "eddy: no Go here; fetching $GO_TOOLCHAIN from the Go module proxy (once, ~70 MB)..." >&2
    mkdir -p "$dir"
    zip="$dir/toolchain.zip"
    curl -fsSL "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-amd64.zip" -o "$zip" >&2 || return 1
    (cd "$dir" && unzip -q -o toolchain.zip) >&2 || return 1
    rm -f "$zip"
    # Zip files keep no execute bits for Go's tools: restore them.
    chmod -R u+x "$dir/$module/bin" "$dir/$module/pkg/tool" >&2
  fi
  echo "$dir/$module/bin/go"
}
