package kubectl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// quantity is a resource amount in thousandths of a unit ("100m" CPU is
// 100, "1Ki" memory is 1024000), enough for the sums and shares of
// `describe node`. binary remembers whether the amount was written with a
// binary suffix (Ki, Mi, ...), to print sums the same way.
type quantity struct {
	value  int64
	binary bool
}

type quantitySuffix struct {
	suffix     string
	multiplier float64
	binary     bool
}

// quantitySuffixes lists the suffixes of quantities, longest first.
func quantitySuffixes() []quantitySuffix {
	return []quantitySuffix{
		{"Ki", 1 << 10, true}, {"Mi", 1 << 20, true}, {"Gi", 1 << 30, true}, {"Ti", 1 << 40, true}, {"Pi", 1 << 50, true},
		{"k", 1e3, false}, {"M", 1e6, false}, {"G", 1e9, false}, {"T", 1e12, false}, {"P", 1e15, false},
		{"m", 1e-3, false},
	}
}

// parseQuantity reads "100m", "2", "1.5", "128Mi", "1G"; anything else is 0.
func parseQuantity(s string) quantity {
	s = strings.TrimSpace(s)
	multiplier, binary := 1.0, false
	for _, sfx := range quantitySuffixes() {
		if strings.HasSuffix(s, sfx.suffix) {
			s = strings.TrimSuffix(s, sfx.suffix)
			multiplier, binary = sfx.multiplier, sfx.binary
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return quantity{}
	}
	return quantity{value: int64(math.Round(n * multiplier * 1000)), binary: binary}
}

func (q quantity) add(other quantity) quantity {
	if q.value == 0 {
		return other
	}
	return quantity{value: q.value + other.value, binary: q.binary}
}

// String prints the amount as Kubernetes would: "0", "250m", "2",
// "192Mi", "1500k".
func (q quantity) String() string {
	if q.value == 0 {
		return "0"
	}
	if q.value%1000 != 0 {
		return fmt.Sprintf("%dm", q.value)
	}
	units := q.value / 1000
	if q.binary {
		for _, s := range []string{"Pi", "Ti", "Gi", "Mi", "Ki"} {
			if m := binaryMultiplier(s); units%m == 0 {
				return fmt.Sprintf("%d%s", units/m, s)
			}
		}
		return strconv.FormatInt(units, 10)
	}
	for _, s := range []struct {
		suffix string
		m      int64
	}{{"P", 1e15}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if units%s.m == 0 {
			return fmt.Sprintf("%d%s", units/s.m, s.suffix)
		}
	}
	return strconv.FormatInt(units, 10)
}

func binaryMultiplier(suffix string) int64 {
	for _, s := range quantitySuffixes() {
		if s.suffix == suffix {
			return int64(s.multiplier)
		}
	}
	return 1
}
