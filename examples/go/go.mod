module github.com/dbkv/dbkv/examples/go

go 1.24

require github.com/dbkv/dbkv/bindings/go v0.0.0

// The binding is used from this repository, not downloaded.
replace github.com/dbkv/dbkv/bindings/go => ../../bindings/go
