package steps

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/inventory"
)

func TestEachRunsEveryHostAtMostForksAtATime(t *testing.T) {
	for _, forks := range []int{1, 3} {
		t.Run(fmt.Sprint("forks ", forks), func(t *testing.T) {
			r := &Run{Opts: Options{Forks: forks}}
			var hosts []*Host
			for i := range 7 {
				hosts = append(hosts, &Host{Host: &inventory.Host{Name: fmt.Sprint("h", i)}})
			}
			var mu sync.Mutex
			active, peak, arrived := 0, 0, 0
			seen := map[string]int{}
			full := make(chan struct{}) // closed once forks hosts run at once
			r.Each(hosts, func(h *Host) {
				mu.Lock()
				active++
				peak = max(peak, active)
				seen[h.Name]++
				arrived++
				first := arrived <= forks
				if arrived == forks {
					close(full)
				}
				mu.Unlock()
				if first {
					select {
					case <-full:
					case <-time.After(5 * time.Second):
						t.Errorf("%s: fewer than %d hosts ran at once", h.Name, forks)
					}
				}
				time.Sleep(time.Millisecond)
				mu.Lock()
				active--
				mu.Unlock()
			})
			if peak > forks {
				t.Errorf("%d hosts ran at once, want at most %d", peak, forks)
			}
			for _, h := range hosts {
				if seen[h.Name] != 1 {
					t.Errorf("%s ran %d times, want once", h.Name, seen[h.Name])
				}
			}
		})
	}
}
