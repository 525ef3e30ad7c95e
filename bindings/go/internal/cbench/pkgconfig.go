//go:build !dbkv_nopkgconfig

package cbench

// The compiler and linker flags of libdbkv come from its pkg-config file,
// which `make lib` writes to target/release/dbkv.pc (with an rpath to that
// directory) and `make install` to $(PREFIX)/lib/pkgconfig. Build with
// -tags dbkv_nopkgconfig to give them in CGO_CFLAGS and CGO_LDFLAGS
// instead (see README.md).

// #cgo pkg-config: dbkv
import "C"
