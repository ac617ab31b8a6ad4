package kubectl

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"kubelite/api"
)

// humanDuration is apimachinery's duration.HumanDuration, the AGE column:
// precise when young, coarse when old ("45s", "3m12s", "4h", "2d3h", "1y").
func humanDuration(d time.Duration) string {
	// A clock up to 2 s ahead of the server still counts as "now".
	if seconds := int(d.Seconds()); seconds < -1 {
		return "<invalid>"
	} else if seconds < 0 {
		return "0s"
	} else if seconds < 60*2 {
		return fmt.Sprintf("%ds", seconds)
	}
	minutes := int(d / time.Minute)
	if minutes < 10 {
		s := int(d/time.Second) % 60
		if s == 0 {
			return fmt.Sprintf("%dm", minutes)
		}
		return fmt.Sprintf("%dm%ds", minutes, s)
	} else if minutes < 60*3 {
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	if hours < 8 {
		m := int(d/time.Minute) % 60
		if m == 0 {
			return fmt.Sprintf("%dh", hours)
		}
		return fmt.Sprintf("%dh%dm", hours, m)
	} else if hours < 48 {
		return fmt.Sprintf("%dh", hours)
	} else if hours < 24*8 {
		h := hours % 24
		if h == 0 {
			return fmt.Sprintf("%dd", hours/24)
		}
		return fmt.Sprintf("%dd%dh", hours/24, h)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%dd", hours/24)
	} else if hours < 24*365*8 {
		dy := hours / 24 % 365
		if dy == 0 {
			return fmt.Sprintf("%dy", hours/24/365)
		}
		return fmt.Sprintf("%dy%dd", hours/24/365, dy)
	}
	return fmt.Sprintf("%dy", hours/24/365)
}

// age is how long ago t was, "<unknown>" for an unset time.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t))
}

// formatLabels is labels.FormatLabels: sorted "k=v" pairs, or "<none>".
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "<none>"
	}
	keys := sortedKeys(labels)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + labels[k]
	}
	return strings.Join(pairs, ",")
}

// selectorString is the text of a LabelSelector as kubectl shows it in a
// Deployment's SELECTOR column: "" when it selects by nothing.
func selectorString(sel *api.LabelSelector) string {
	selector, err := api.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<invalid>"
	}
	return selector.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// terminalEscaper keeps object text from driving the terminal, as
// kubectl's printers.WriteEscaped does.
var terminalEscaper = strings.NewReplacer("\x1b", "^[", "\r", "\\r")
