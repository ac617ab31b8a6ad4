package podproxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"kubelite/api"
)

// writeStatus answers with err as a Kubernetes Status; an error that is
// not one is an internal error.
func writeStatus(w http.ResponseWriter, err error) {
	var st *api.Status
	if !errors.As(err, &st) {
		st = api.NewInternalError(err)
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(st) // the caller may have gone; nothing to do about it
}
