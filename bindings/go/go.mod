module github.com/dbkv/dbkv/bindings/go

// 1.24: range-over-func iterators need 1.23, and the #cgo noescape and
// nocallback directives, which keep per-call buffers on the stack, need 1.24.
go 1.24
