// spawn: start N trivial goroutines and wait for them all. Goroutines per second.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	var group sync.WaitGroup
	group.Add(n)
	for i := 0; i < n; i++ {
		go func() { group.Done() }()
	}
	group.Wait()
	report("spawn", n, time.Since(start).Seconds(), float64(n))
}

func report(bench string, n int, secs float64, ops float64) {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	fmt.Printf("RESULT bench=%s impl=go n=%d secs=%.3f rate=%.0f rss_kb=%d\n", bench, n, secs, ops/secs, usage.Maxrss)
}
