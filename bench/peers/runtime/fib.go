// fib: fork-join fib(n); each call starts fib(n-1) as a goroutine, computes fib(n-2) inline and
// joins through a channel. Spawned goroutines per second.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func fib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	done := make(chan int64, 1)
	go func() { done <- fib(n - 1) }()
	other := fib(n - 2)
	return <-done + other
}

func spawns(n int) int {
	if n < 2 {
		return 0
	}
	a, b := 0, 0
	for i := 2; i <= n; i++ {
		a, b = b, 1+b+a
	}
	return b
}

func main() {
	n := 27
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	answer := fib(n)
	secs := time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "fib(%d) = %d\n", n, answer)
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	fmt.Printf("RESULT bench=fib impl=go n=%d secs=%.3f rate=%.0f rss_kb=%d\n", n, secs, float64(spawns(n))/secs, usage.Maxrss)
}
