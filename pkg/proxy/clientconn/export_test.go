package clientconn

// Pending is what waits to be injected, and whether the reader has yet to see a wake.
func Pending(c *Conn) (queued int, waking bool) {
	c.inject.mu.Lock()
	defer c.inject.mu.Unlock()
	return len(c.inject.queue), c.inject.waking.Load()
}
