package cache

import "errors"

var (
	// ErrInvalidOptions is wrapped by every error New returns for settings
	// that cannot work; the message names the field and what to change.
	ErrInvalidOptions = errors.New("invalid cache settings")

	// ErrInvalidPattern is wrapped by Invalidate and InvalidateHost for a
	// path pattern that cannot match any stored path.
	ErrInvalidPattern = errors.New("invalid path pattern")
)
