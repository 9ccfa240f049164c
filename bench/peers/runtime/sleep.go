// sleep: N goroutines each sleeping 1 s at once, then joined. Wall time and peak RSS.
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
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	var group sync.WaitGroup
	group.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(time.Second)
			group.Done()
		}()
	}
	group.Wait()
	secs := time.Since(start).Seconds()
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	fmt.Printf("RESULT bench=sleep impl=go n=%d secs=%.3f rate=%.0f rss_kb=%d\n", n, secs, float64(n)/secs, usage.Maxrss)
}
