package apiserver

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"kubelite/api"
)

// writeJSON sends v with the given HTTP code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		slog.Debug("writing response", "err", err)
	}
}

// writeError sends err as a Kubernetes Status. Errors that are not already a
// *api.Status are internal errors.
func writeError(w http.ResponseWriter, err error) {
	var st *api.Status
	if !errors.As(err, &st) {
		slog.Error("internal error", "err", err)
		st = api.NewInternalError(err)
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, st)
}

// addWarning adds a Warning header as Kubernetes sends deprecation notices:
// `299 - "apps/v1beta1 Deployment is deprecated..."`.
func addWarning(w http.ResponseWriter, msg string) {
	b, _ := json.Marshal(msg)
	w.Header().Add("Warning", "299 - "+string(b))
}
