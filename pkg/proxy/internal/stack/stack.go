// Package stack runs work that grows a goroutine's stack on a goroutine of its own.
package stack

// Fresh runs f on a goroutine of its own and waits for it. A session's goroutine waits in the
// upgrade-aware proxy for the session's whole life, and a stack the runtime grew stays grown
// while its goroutine is parked that deep: TLS records and the audit record's encoding, before the
// upgrade, grow a goroutine that ends with them instead. A panic in f is the caller's.
func Fresh(f func()) {
	var panicked any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		f()
	}()
	<-done
	if panicked != nil {
		panic(panicked)
	}
}
