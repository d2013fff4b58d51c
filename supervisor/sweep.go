package supervisor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockStore takes the instance lock of a FileStore (an flock on the file
// beside it, PATH.lock, released by the kernel when the host dies), so
// that two live hosts never share a state file, nor sweep each other's
// agents. Other Stores are not locked (nil, nil). Closing the file
// releases the lock.
func lockStore(s Store) (*os.File, error) {
	fs, ok := s.(*FileStore)
	if !ok {
		return nil, nil
	}
	f, err := os.OpenFile(fs.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state store %s: %w", fs.path, ErrInstanceRunning)
		}
		return nil, fmt.Errorf("state store lock %s: %w", f.Name(), err)
	}
	return f, nil
}
