// pingpong: two goroutines pass a token back and forth N times over unbuffered channels.
// Round trips per second.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			token := <-ping
			pong <- token
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	secs := time.Since(start).Seconds()
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	fmt.Printf("RESULT bench=pingpong impl=go n=%d secs=%.3f rate=%.0f rss_kb=%d\n", n, secs, float64(n)/secs, usage.Maxrss)
}
