// Package logs writes agents' output to rotating files and reads it back.
//
// Rotator is an io.WriteCloser that appends through lumberjack and does the
// rest itself (size limit, backups kept, age limit, gzip of rotated files,
// with lumberjack's backup names), repairing lumberjack's known faults: its
// Close returns once compression and pruning are done and stops
// lumberjack's background goroutine, so a closed Rotator leaves nothing
// running and its backups in their final form; it rotates before a write
// would overflow the size limit, never twice in one millisecond (backups
// are named by the millisecond, and a second rotation would overwrite the
// first); a write larger than the limit is split at line boundaries instead
// of rejected; new files get the configured mode (default 0640) instead of
// 0600; a failing disk makes it count and drop, never block the agent or
// return an error that would make a copier give up; and it adds rotation on
// an interval or at an hourly or daily boundary.
//
// One Rotator serves one log file for the life of the host: hand it to the
// agent's every restart, not a new one per start. Streams (Rotator.Stream)
// frame each writer's output into whole lines, optionally prefixed with a
// timestamp and the stream's name, so an agent's stdout and stderr share one
// file without ever interleaving inside a line.
//
// Tail and Search read the live file and its rotated backups, gzipped or
// not, newest first: Tail reads backwards in blocks and never loads a whole
// file; Search streams matches and stops on a limit or a cancelled context.
// Cleanup removes backups past their retention.
package logs
