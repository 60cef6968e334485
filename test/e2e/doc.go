// Package e2e runs witnessnet the way its users do: real `witness` and `client` binaries, a
// testnet written by `witness testnet`, nodes started with `witness run`, killed with SIGKILL and
// restarted, stopped with SIGSTOP and resumed. Its tests carry the build tag e2e:
//
//	go test -tags e2e -count=1 ./test/e2e/...
package e2e
