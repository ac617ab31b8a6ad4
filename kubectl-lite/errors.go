package kubectl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"

	"kubelite/api"
)

// errorList is several independent failures of one command (one per
// document of a file, one per name); kubectl prints each on its own line.
type errorList []error

func (l errorList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// orNil returns nil for an empty list, the error itself for one, else the list.
func (l errorList) orNil() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	default:
		return l
	}
}

// errorMessage renders err as kubectl's cmdutil.CheckErr prints it, with
// a final newline.
func errorMessage(err error) string {
	var list errorList
	if errors.As(err, &list) {
		var b strings.Builder
		for _, e := range list {
			b.WriteString(standardMessage(e))
			b.WriteString("\n")
		}
		return b.String()
	}
	if status := statusOf(err); status != nil && status.Reason == api.ReasonInvalid && status.Details != nil {
		return invalidMessage(status)
	}
	return standardMessage(err) + "\n"
}

// invalidMessage is kubectl's wording for a 422: `The Service "x" is
// invalid: field: problem`, one cause per line when there are several.
func invalidMessage(status *api.Status) string {
	d := status.Details
	prefix := "The request is invalid"
	if d.Kind != "" || d.Name != "" {
		prefix = fmt.Sprintf("The %s %q is invalid", d.Kind, d.Name)
	}
	var causes []string
	seen := map[string]bool{}
	for _, c := range d.Causes {
		msg := fmt.Sprintf("%s: %s", c.Field, c.Message)
		if !seen[msg] {
			seen[msg] = true
			causes = append(causes, msg)
		}
	}
	switch len(causes) {
	case 0:
		if status.Message != "" {
			return fmt.Sprintf("%s: %s\n", prefix, status.Message)
		}
		return prefix + "\n"
	case 1:
		return fmt.Sprintf("%s: %s\n", prefix, causes[0])
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "%s: \n", prefix)
		for _, c := range causes {
			fmt.Fprintf(&b, "* %s\n", c)
		}
		return b.String()
	}
}

// standardMessage is kubectl's StandardErrorMessage without the newline:
// `Error from server (NotFound): pods "x" not found`, connection failures,
// and `error: ...` for everything else.
func standardMessage(err error) string {
	if status := statusOf(err); status != nil {
		switch {
		case status.Reason == api.ReasonUnauthorized:
			return fmt.Sprintf("error: You must be logged in to the server (%s)", status.Message)
		case status.Reason != "":
			return fmt.Sprintf("Error from server (%s): %s", status.Reason, status.Message)
		default:
			return fmt.Sprintf("Error from server: %s", status.Message)
		}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if errors.Is(urlErr.Err, syscall.ECONNREFUSED) {
			host := urlErr.URL
			if u, perr := url.Parse(urlErr.URL); perr == nil {
				host = u.Host
			}
			return fmt.Sprintf("The connection to the server %s was refused - did you specify the right host or port?", host)
		}
		return fmt.Sprintf("Unable to connect to the server: %v", urlErr.Err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "error: ") {
		msg = "error: " + msg
	}
	return msg
}

// statusOf returns the API Status behind err, if any.
func statusOf(err error) *api.Status {
	var status *api.Status
	if errors.As(err, &status) {
		return status
	}
	return nil
}

// withSource is kubectl's AddSourceToErr: a server failure about one
// document of a file names the file (`error when creating "httpd2.yml": ...`)
// and stays an API Status, so that it is still reported as one.
func withSource(verb, source string, err error) error {
	if source == "" || err == nil {
		return err
	}
	if status := statusOf(err); status != nil {
		annotated := *status
		annotated.Message = fmt.Sprintf("error when %s %q: %s", verb, source, status.Message)
		return &annotated
	}
	return fmt.Errorf("error when %s %q: %w", verb, source, err)
}
