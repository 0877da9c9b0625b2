package lab

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"time"
)

//go:embed cache.Dockerfile
var cacheDockerfile []byte

const (
	cacheName   = "pgfleet-lab-aptcache"
	cacheVolume = "pgfleet-lab-aptcache"
	cachePort   = 3142
)

// ensureCache starts the shared package cache if it is not running and
// returns its container name.
func ensureCache(ctx context.Context, release string, logger *slog.Logger) error {
	image := "pgfleet-lab-aptcache:latest"
	mirror, err := Mirror()
	if err != nil {
		return err
	}
	files := map[string][]byte{"Dockerfile": cacheDockerfile}
	args := []string{"--build-arg", "MIRROR=" + mirror}
	hash := contentHash("", files, args)
	imageMu.Lock()
	if got, ok := imageLabel(ctx, image, Label+".hash"); !ok || got != hash {
		done := begin(logger, "building package cache image", "package cache image built", "image", image, "estimate", buildEstimate(Flavour{Release: "bookworm"}))
		base, err := ensureBase(ctx, "bookworm", logger)
		if err == nil {
			err = build(ctx, image, files, append(args, "--build-arg", "BASE="+base, "--label", Label+".hash="+hash))
		}
		if err != nil {
			imageMu.Unlock()
			return fmt.Errorf("lab: build package cache: %w", err)
		}
		done()
	}
	imageMu.Unlock()
	// Labs start and end concurrently: the container may be starting, or
	// still being removed after the last lab went. Wait those out.
	var last error
	var done func()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		state, err := docker(ctx, nil, "inspect", "--format", "{{.State.Status}}", cacheName)
		if done == nil && (err != nil || state != "running") {
			done = begin(logger, "starting package cache", "package cache started", "container", cacheName)
		}
		switch {
		case err == nil && state == "running":
			if done != nil {
				done()
			}
			return nil
		case err == nil && (state == "exited" || state == "dead"):
			docker(ctx, nil, "rm", "-f", cacheName)
		case err == nil: // created, restarting, removing
		default:
			_, last = docker(ctx, nil, "run", "-d", "--name", cacheName, "--label", Label+"=cache",
				"-v", cacheVolume+":/var/cache/apt-cacher-ng", image)
			if last == nil {
				done()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("lab: start package cache: not running after a minute (last error: %v)", last)
}

// RemoveCacheIfUnused removes the package cache's container when no lab is
// left; its volume, the cached packages, stays.
func RemoveCacheIfUnused(ctx context.Context) error {
	others, err := docker(ctx, nil, "network", "ls", "-q", "--filter", "label="+Label)
	if err != nil || others != "" {
		return err
	}
	_, err = docker(ctx, nil, "rm", "-f", cacheName)
	return err
}
