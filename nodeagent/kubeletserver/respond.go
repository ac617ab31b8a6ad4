package kubeletserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"kubelite/api"
)

// writeStatus answers with a Kubernetes Status: the API server's proxy
// passes it on, and kubectl prints it as it prints any server error.
func writeStatus(w http.ResponseWriter, st *api.Status) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(st) // the client may have gone; nothing to do about it
}

// queryBool reads a boolean parameter as Kubernetes converts them: absent,
// "false" and "0" are false, anything else ("1", "true") is true.
func queryBool(q url.Values, name string) bool {
	values, ok := q[name]
	if !ok || len(values) == 0 {
		return false
	}
	switch strings.ToLower(values[0]) {
	case "false", "0":
		return false
	}
	return true
}

// containerNotFound is the answer when the agent has no such container.
func containerNotFound(err error) *api.Status {
	return api.NewStatus(http.StatusNotFound, api.ReasonNotFound, err.Error())
}
