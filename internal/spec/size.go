package spec

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Size errors, wrapped by ParseSize so callers can tell a missing unit (the
// usual mistake: "memory: 512") from plain garbage. Their text is phrased to
// follow a field name, as in "services.web.memory: needs a unit, e.g. 512MiB".
var (
	// ErrSizeSyntax: not a positive number followed by a unit.
	ErrSizeSyntax = errors.New("must be a positive size like 512MiB")
	// ErrSizeNoUnit: a bare number, which could mean bytes or megabytes.
	ErrSizeNoUnit = errors.New("needs a unit, e.g. 512MiB")
	// ErrSizeUnit: a unit ParseSize does not know.
	ErrSizeUnit = errors.New("unknown unit; use B, KB, MB, GB, TB (1000-based) or KiB, MiB, GiB, TiB (1024-based; K, M, G, T mean the same)")
	// ErrSizeRange: more bytes than an int64 holds.
	ErrSizeRange = errors.New("is too large")
)

// sizeUnits maps a lower-cased unit to its bytes. K, M, G and T are 1024-based
// because that is what Docker (and so every compose file) means by "512m".
var sizeUnits = map[string]int64{
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"k":   1 << 10,
	"ki":  1 << 10,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mi":  1 << 20,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gi":  1 << 30,
	"gib": 1 << 30,
	"t":   1 << 40,
	"ti":  1 << 40,
	"tib": 1 << 40,
}

// maxSizeDigits bounds the number part so a hostile spec cannot make the
// exact arithmetic below expensive; no real size needs more.
const maxSizeDigits = 30

// ParseSize parses a byte size such as "512MiB", "1.5GB" or "256m". A unit is
// required: a bare number is ambiguous (bytes? megabytes?) and the mistake is
// common enough to deserve its own error, ErrSizeNoUnit. Fractions are
// allowed and rounded down to whole bytes; the result must be positive.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if !isDecimal(num) {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeSyntax)
	}
	if unit == "" {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeNoUnit)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q: unit %q: %w", s, unit, ErrSizeUnit)
	}
	if len(num) > maxSizeDigits {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeRange)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeSyntax)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeRange)
	}
	if n.Int64() <= 0 {
		return 0, fmt.Errorf("size %q: %w", s, ErrSizeSyntax)
	}
	return n.Int64(), nil
}

// isDecimal reports whether s is digits with at most one inner '.'; big.Rat
// alone would also take "1/2" and "1e3", which are not sizes.
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return false
	}
	return !strings.Contains(frac, ".")
}

// formatUnits are tried largest first; binary before decimal because memory
// limits are nearly always written in MiB/GiB.
var formatUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
}

// FormatSize renders bytes for people, e.g. 512MiB. A whole number of some
// unit is printed exactly, so ParseSize(FormatSize(n)) == n for every size a
// spec can sensibly hold; anything else is cut to one decimal of the largest
// binary unit, e.g. 117.7MiB or 5.0KiB: never more than the real size, and
// still something ParseSize accepts.
func FormatSize(bytes int64) string {
	if bytes < 0 {
		if bytes == math.MinInt64 {
			return "-8EiB"
		}
		return "-" + FormatSize(-bytes)
	}
	if bytes < 1<<10 {
		return strconv.FormatInt(bytes, 10) + "B"
	}
	for _, u := range formatUnits {
		if bytes >= u.size && bytes%u.size == 0 {
			return strconv.FormatInt(bytes/u.size, 10) + u.name
		}
	}
	for _, u := range formatUnits[:4] {
		if bytes >= u.size {
			// Integer arithmetic: a float64 cannot hold every int64, and a
			// rounded-up result could overflow when parsed back.
			// The decimal stays even when it is 0 ("5.0KiB" for 5121), so
			// only exact values print without one.
			whole, tenths := bytes/u.size, (bytes%u.size)*10/u.size
			return strconv.FormatInt(whole, 10) + "." + strconv.FormatInt(tenths, 10) + u.name
		}
	}
	return strconv.FormatInt(bytes, 10) + "B" // unreachable: bytes >= 1KiB
}

// sizeMsg turns a ParseSize error into the message shown after the field
// name, without repeating the value the user can already see.
func sizeMsg(err error) string {
	for _, e := range []error{ErrSizeNoUnit, ErrSizeUnit, ErrSizeRange} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ErrSizeSyntax.Error()
}
