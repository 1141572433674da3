package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vmcp/vmcp/internal/recovery"
)

// reloadDebounce is how long the config file must stay quiet before a
// change is read: an editor's save or a ConfigMap update is several
// events, and the file is read once after the last.
const reloadDebounce = 250 * time.Millisecond

// WatchConfig reloads the config file at path (ReloadFile) on each value
// from hup (SIGHUP), and when the file's content changes. It watches the
// file's directory, not the file, so that an editor's write-and-rename
// and a Kubernetes ConfigMap's symlink swap are seen too; a change is read
// once the directory has been quiet for a moment, and ignored when the
// content is what is in effect. A SIGHUP reloads whatever the content,
// so that changed ${VAR} values are read again. It returns once the
// watch is set up, with an error if file changes cannot be watched (SIGHUP
// then still works); Shutdown stops it. Call it at most once.
func (g *Gateway) WatchConfig(path string, hup <-chan os.Signal) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	// Without a watcher (no inotify instance left, say) SIGHUP still
	// reloads; the error says why file changes do not.
	w, werr := fsnotify.NewWatcher()
	if werr == nil {
		if werr = w.Add(filepath.Dir(abs)); werr != nil {
			w.Close()
			w = nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.srvMu.Lock()
	if g.stopped {
		g.srvMu.Unlock()
		cancel()
		if w != nil {
			w.Close()
		}
		return nil
	}
	g.reload.stopWatch, g.reload.watchDone = cancel, done
	g.srvMu.Unlock()
	go func() {
		defer close(done)
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w != nil {
			defer w.Close()
			events, errs = w.Events, w.Errors
		}
		g.watch(ctx, abs, events, errs, hup)
	}()
	if werr != nil {
		return fmt.Errorf("watching the config's directory: %w", werr)
	}
	return nil
}

func (g *Gateway) watch(ctx context.Context, path string, events <-chan fsnotify.Event, errs <-chan error, hup <-chan os.Signal) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// refused is the hash of the content the last reload refused, if it
	// did: any write in the directory (vmcp's own log, next to its config)
	// is an event, and content refused once is not read again for one.
	var refused string
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			g.log.Info("SIGHUP: reloading the config", "file", path)
			refused = g.reloadSafely(ctx, path, true, refused)
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue
			}
			timer.Reset(reloadDebounce)
		case err, ok := <-errs:
			if !ok {
				return
			}
			g.log.Warn("watching the config file", "err", err)
		case <-timer.C:
			refused = g.reloadSafely(ctx, path, false, refused)
		}
	}
}

// reloadSafely is one reload; a panic in it is logged and costs that
// reload only. Without force, a file whose content is the one in effect,
// or the one refused last (refused, its hash), or that is gone for a
// moment (mid-swap), is left alone. It returns what refused is now: the
// hash of the content this reload refused, "" once one is applied, or
// refused unchanged when it left the file alone.
func (g *Gateway) reloadSafely(ctx context.Context, path string, force bool, refused string) (nowRefused string) {
	nowRefused = refused
	defer recovery.Recover(g.log, nil, "during", "config reload")
	data, err := os.ReadFile(path)
	hash := ""
	if err == nil {
		hash = HashConfig(data)
	}
	if !force && (err != nil || hash == g.reload.currentHash() || hash == refused) {
		return refused
	}
	if g.ReloadFile(ctx, path) != nil {
		return hash
	}
	return ""
}

// stopWatching ends WatchConfig's goroutine and waits for it.
func (r *reloader) stopWatching() {
	if r.stopWatch != nil {
		r.stopWatch()
		<-r.watchDone
	}
}
