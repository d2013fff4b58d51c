package supervisor

import (
	"fmt"
	"runtime"

	"github.com/tend-dev/tend/config"
)

// maxFDStore bounds Spec.FDStoreMax: each stored descriptor is one the
// host holds open.
const maxFDStore = 1024

// resolveProtocol validates the systemd service protocol's part of a
// Spec: notify socket, watchdog, reload mode, listeners and fd store.
func (s Spec) resolveProtocol(out *settings) error {
	linuxOnly := func(key string, value any) error {
		if runtime.GOOS != "linux" {
			return config.Invalid(key, value, "is only supported on Linux")
		}
		return nil
	}
	switch {
	case s.Watchdog < 0:
		return config.Invalid("watchdog", s.Watchdog, "must not be negative")
	case s.Watchdog > 0 && !s.NotifyReady:
		return config.Invalid("watchdog", s.Watchdog, "needs notify_ready: the keep-alives come over NOTIFY_SOCKET")
	case s.FDStoreMax < 0 || s.FDStoreMax > maxFDStore:
		return config.Invalid("fd_store_max", s.FDStoreMax, fmt.Sprintf("must be 0-%d", maxFDStore))
	case s.FDStoreMax > 0 && !s.NotifyReady:
		return config.Invalid("fd_store_max", s.FDStoreMax, "needs notify_ready: descriptors are stored over NOTIFY_SOCKET")
	}
	if s.NotifyReady {
		if err := linuxOnly("notify_ready", true); err != nil {
			return err
		}
	}
	switch s.ReloadMode {
	case "":
		out.reloadMode = ReloadBySignal
	case ReloadBySignal, ReloadByRestart, ReloadNone:
		out.reloadMode = s.ReloadMode
	case ReloadByNotify:
		if !s.NotifyReady {
			return config.Invalid("reload_mode", s.ReloadMode, "needs notify_ready: RELOADING=1 and READY=1 come over NOTIFY_SOCKET")
		}
		out.reloadMode = s.ReloadMode
	default:
		return config.Invalid("reload_mode", s.ReloadMode, `must be "signal", "notify", "restart" or "none"`)
	}
	seen := make(map[string]bool, len(s.Listen))
	for i, raw := range s.Listen {
		key := fmt.Sprintf("listen[%d]", i)
		if err := linuxOnly(key, raw); err != nil {
			return err
		}
		a, err := parseListen(raw)
		if err != nil {
			return config.Invalid(key, raw, err.Error())
		}
		if seen[raw] {
			return config.Invalid(key, raw, "is listed twice")
		}
		seen[raw] = true
		out.contract.listen = append(out.contract.listen, a)
	}
	out.fdStoreMax = s.FDStoreMax
	return nil
}
