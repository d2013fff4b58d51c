// Package reload makes reconfiguration by file dependable: it watches
// config files, rewrites them safely, and rolls back a change that fails.
//
// Watcher watches files through their parent directories, so every way a
// file is replaced is seen: a write in place, cp over it, an editor's
// atomic rename, delete and create, a Kubernetes ConfigMap's ..data symlink
// swap. It debounces bursts, reads the file once things are quiet, and
// calls the host's function only when the content's hash changed, one
// change at a time per file, always ending on the latest content. A
// removed and recreated directory is watched again, an inotify queue
// overflow triggers a rescan of every file, a periodic rescan catches what
// odd filesystems never report, and directories that cannot be watched
// (the per-user inotify limits) are polled instead.
//
// Documents are agent config files read as YAML or JSON by extension,
// updated by a deep merge of a patch and written back atomically in the
// same format (WriteFile: temporary file, fsync, rename, fsync of the
// directory, original mode and owner kept).
//
// Transaction carries out one reconfiguration: validate, write, apply
// (send SIGHUP, restart), verify (a health check); when any step fails it
// restores the last good content and applies that again.
package reload
