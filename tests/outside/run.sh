#!/usr/bin/env bash
# The outside user: uses dbkv the way someone without this checkout's
# environment would, from a temp directory outside it.
#
#   C     make install PREFIX=$tmp/prefix; cc with pkg-config, run with
#         LD_LIBRARY_PATH, with an rpath, and statically linked; the
#         installed header compiled alone;
#   Go    a new module that requires the binding through a replace
#         directive (the recipe in bindings/go/README.md), a fresh GOCACHE,
#         pkg-config of the installed library and an rpath;
#   Node  the npm tarball (make node-package) installed into a new project,
#         used from require(), import and strict TypeScript.
#
# Each program (tests/outside/{c,go,node}) writes keys (one with a TTL, a
# counter, a lock) into a data directory, closes, reopens and checks them,
# and prints "ok <lang>". No DBKV_LIB, LD_LIBRARY_PATH or PKG_CONFIG_PATH
# from the caller is used.
#
#   make test-outside            (builds the library first)
#   DBKV_OUTSIDE_KEEP=1 bash tests/outside/run.sh   keeps the temp dir
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/outside
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
STARTED=$SECONDS

# Nothing from the caller's environment may find the library for us.
unset DBKV_LIB LD_LIBRARY_PATH PKG_CONFIG_PATH CGO_CFLAGS CGO_LDFLAGS LIBRARY_PATH C_INCLUDE_PATH CPATH

CURRENT="setup"
say() { echo "outside-user: $*"; }
step() {
    CURRENT="$*"
    say "== $* [$((SECONDS - STARTED))s]"
}
# Prints a command, then runs it.
LAST=""
run() {
    say "\$ $*"
    LAST="$*"
    "$@"
    LAST=""
}
fail() {
    echo "outside-user: FAILED in step \"$CURRENT\": $*" >&2
    exit 1
}
trap 'rc=$?; echo "outside-user: FAILED in step \"$CURRENT\": command \"${LAST:-$BASH_COMMAND}\" exited with status $rc" >&2' ERR

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dbkv-outside.XXXXXX")
case "$tmp/" in
"$ROOT"/*)
    rmdir "$tmp"
    tmp=$(mktemp -d /tmp/dbkv-outside.XXXXXX)
    ;;
esac
cleanup() {
    if [[ -n "${DBKV_OUTSIDE_KEEP:-}" ]]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
PREFIX=$tmp/prefix
PC=$PREFIX/lib/pkgconfig
say "working in $tmp (outside $ROOT)"
cd "$tmp"

# ---------------------------------------------------------------- install
step "make install PREFIX=$PREFIX"
run make -C "$ROOT" --no-print-directory install PREFIX="$PREFIX"
for f in lib/libdbkv.so.$VERSION lib/libdbkv.so.${VERSION%%.*} lib/libdbkv.so lib/libdbkv.a include/dbkv.h lib/pkgconfig/dbkv.pc; do
    [[ -e $PREFIX/$f ]] || fail "make install did not install $f"
done
got=$(PKG_CONFIG_PATH=$PC pkg-config --modversion dbkv)
[[ $got == "$VERSION" ]] || fail "pkg-config --modversion dbkv is '$got', want $VERSION"

# ---------------------------------------------------------------------- C
step "C: the installed header compiles alone"
mkdir -p "$tmp/c"
printf '#include <dbkv.h>\nint dbkv_header_only;\n' > "$tmp/c/header.c"
run cc -std=c89 -pedantic -Wall -Wextra -Werror -fsyntax-only $(PKG_CONFIG_PATH=$PC pkg-config --cflags dbkv) "$tmp/c/header.c"
run cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only $(PKG_CONFIG_PATH=$PC pkg-config --cflags dbkv) "$tmp/c/header.c"

step "C: shared build with pkg-config, run with LD_LIBRARY_PATH"
cflags=$(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs dbkv)
run cc -std=c99 -Wall -Wextra -Werror -pedantic "$HERE/c/main.c" $cflags -o "$tmp/c/shared"
out=$(LD_LIBRARY_PATH=$PREFIX/lib "$tmp/c/shared" "$tmp/data-c-shared")
echo "$out"
[[ $out == "ok c"* ]] || fail "C shared build printed '$out'"
ldd_out=$(LD_LIBRARY_PATH=$PREFIX/lib ldd "$tmp/c/shared")
grep -q "libdbkv.so.${VERSION%%.*} => $PREFIX/lib/" <<<"$ldd_out" || fail "the shared build does not load libdbkv from $PREFIX/lib:"$'\n'"$ldd_out"

step "C: shared build with -Wl,-rpath, run with no LD_LIBRARY_PATH"
run cc -std=c99 -Wall -Wextra -Werror -pedantic "$HERE/c/main.c" $cflags -Wl,-rpath,"$PREFIX/lib" -o "$tmp/c/rpath"
out=$("$tmp/c/rpath" "$tmp/data-c-rpath")
echo "$out"
[[ $out == "ok c"* ]] || fail "C rpath build printed '$out'"

step "C: static link of libdbkv.a (pkg-config --static), run with no LD_LIBRARY_PATH"
libs_l=$(PKG_CONFIG_PATH=$PC pkg-config --libs-only-L dbkv)
libs_static=$(PKG_CONFIG_PATH=$PC pkg-config --static --libs-only-l dbkv | sed 's/-ldbkv //')
run cc -std=c99 -Wall -Wextra -Werror -pedantic $(PKG_CONFIG_PATH=$PC pkg-config --cflags dbkv) "$HERE/c/main.c" \
    -Wl,-Bstatic $libs_l -ldbkv -Wl,-Bdynamic $libs_static -o "$tmp/c/static"
ldd_out=$(ldd "$tmp/c/static")
if grep -q libdbkv <<<"$ldd_out"; then
    fail "the static build still needs libdbkv:"$'\n'"$ldd_out"
fi
say "ldd: no libdbkv ($(grep -c '=>' <<<"$ldd_out") shared libraries, all system ones)"
out=$("$tmp/c/static" "$tmp/data-c-static")
echo "$out"
[[ $out == "ok c"* ]] || fail "C static build printed '$out'"

# --------------------------------------------------------------------- Go
step "Go: new module requiring the binding through replace, fresh GOCACHE"
export GOCACHE=$tmp/gocache GOFLAGS=-mod=mod
mkdir -p "$tmp/gohello"
cd "$tmp/gohello"
run go mod init example.com/hello
run go mod edit -require=github.com/dbkv/dbkv/bindings/go@v0.1.0 -replace=github.com/dbkv/dbkv/bindings/go="$ROOT/bindings/go"
cp "$HERE/go/main.go" .
say "\$ PKG_CONFIG_PATH=$PC CGO_LDFLAGS=\"-Wl,-rpath,$PREFIX/lib\" go build -o hello ."
PKG_CONFIG_PATH=$PC CGO_LDFLAGS="-Wl,-rpath,$PREFIX/lib" go build -o hello .
ldd_out=$(ldd ./hello)
grep -q "libdbkv.so.${VERSION%%.*} => $PREFIX/lib/" <<<"$ldd_out" || fail "hello does not load libdbkv from $PREFIX/lib:"$'\n'"$ldd_out"

step "Go: run the binary with no LD_LIBRARY_PATH"
out=$(./hello "$tmp/data-go")
echo "$out"
[[ $out == "ok go"* ]] || fail "hello printed '$out'"
unset GOCACHE GOFLAGS
cd "$tmp"

# ------------------------------------------------------------------- Node
step "Node: make node-package (npm pack) into $tmp/pack"
pack_out=$(make -C "$ROOT" --no-print-directory node-package NODE_PACK_DIR="$tmp/pack")
printf '%s\n' "$pack_out" | sed 's/^/outside-user:   /'
tarball=$(printf '%s\n' "$pack_out" | tail -1)
[[ $tarball == "$tmp/pack/dbkv-$VERSION.tgz" && -f $tarball ]] || fail "make node-package printed '$tarball', want $tmp/pack/dbkv-$VERSION.tgz"
platform=$(node -p 'process.platform + "-" + process.arch')
contents=$(tar tzf "$tarball")
grep -qx "package/prebuilds/$platform/libdbkv.so" <<<"$contents" || fail "$tarball has no package/prebuilds/$platform/libdbkv.so:"$'\n'"$contents"
koffi=$(tar xzOf "$tarball" package/package.json | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).dependencies.koffi || ""))')
[[ -n $koffi ]] || fail "the packaged package.json has no koffi dependency"
[[ ! -e $ROOT/bindings/node/prebuilds ]] || fail "npm pack left bindings/node/prebuilds behind (postpack should remove it)"

step "Node: npm install the tarball (and typescript, @types/node) in a new project"
mkdir -p "$tmp/nodeproj"
cd "$tmp/nodeproj"
say "\$ npm init -y"
npm init -y >/dev/null
ts=$(node -p "require('$ROOT/bindings/node/package.json').devDependencies.typescript")
types=$(node -p "require('$ROOT/bindings/node/package.json').devDependencies['@types/node']")
run npm install --no-audit --no-fund "$tarball" "typescript@$ts" "@types/node@$types"
[[ -d node_modules/dbkv && ! -L node_modules/dbkv ]] || fail "node_modules/dbkv is not an installed copy"
want_lib=$tmp/nodeproj/node_modules/dbkv/prebuilds/$platform/libdbkv.so
cp "$HERE/node/roundtrip.cjs" "$HERE/node/main.cjs" "$HERE/node/main.mjs" "$HERE/node/main.ts" "$HERE/node/tsconfig.json" .

step "Node: require('dbkv') (main.cjs) with no DBKV_LIB / LD_LIBRARY_PATH"
out=$(env -u DBKV_LIB -u LD_LIBRARY_PATH node main.cjs "$tmp/data-node-cjs")
echo "$out"
[[ $out == "ok node-cjs (libdbkv $VERSION from $want_lib)" ]] || fail "main.cjs printed '$out'"

step "Node: import from 'dbkv' (main.mjs)"
out=$(env -u DBKV_LIB -u LD_LIBRARY_PATH node main.mjs "$tmp/data-node-esm")
echo "$out"
[[ $out == "ok node-esm (libdbkv $VERSION from $want_lib)" ]] || fail "main.mjs printed '$out'"

step "Node: TypeScript (main.ts) compiled by tsc, strict, then run"
run npx --no-install tsc -p .
out=$(env -u DBKV_LIB -u LD_LIBRARY_PATH node out/main.js "$tmp/data-node-ts")
echo "$out"
[[ $out == "ok node-ts (libdbkv $VERSION from $want_lib)" ]] || fail "main.ts printed '$out'"
cd "$tmp"

CURRENT="done"
say "all passed in $((SECONDS - STARTED))s"
