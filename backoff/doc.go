// Package backoff decides how long a supervisor waits before restarting a
// process that keeps failing.
//
// A Policy answers one question: given that this is the n-th consecutive
// failed run (n >= 1), how long to wait before the next start. Policies are
// immutable values, safe for concurrent use by any number of supervisors; the
// failure streak, its reset after a stable run and the first-restart-is-
// immediate rule all belong to the supervisor, never to the policy.
//
// The built-in policies:
//
//   - Exponential: Initial * Multiplier^(n-1) capped at Max, minus a random
//     jitter that is only ever subtracted, so Max is a hard ceiling. Its zero
//     value is the default curve: 1 s, 2 s, 4 s ... 60 s, each cut by up to 50%.
//   - Steps: systemd's RestartSteps interpolation from Min to Max.
//   - Constant, None: the same delay every time.
//   - Func: any function of n.
//
// Hosts that read restart settings from their own config file (the familiar
// `restart: {backoff_base: 10s, backoff_max: 60s}`) decode them into a Config
// and call Config.Policy, which validates them.
package backoff
