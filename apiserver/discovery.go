package apiserver

import (
	"net/http"
	"runtime"
	"sort"

	"github.com/go-chi/chi/v5"

	"kubelite/api"
)

// VersionInfo is the body of /version, as Kubernetes reports it.
type VersionInfo struct {
	Major        string `json:"major"`
	Minor        string `json:"minor"`
	GitVersion   string `json:"gitVersion"`
	GitCommit    string `json:"gitCommit"`
	GitTreeState string `json:"gitTreeState"`
	BuildDate    string `json:"buildDate"`
	GoVersion    string `json:"goVersion"`
	Compiler     string `json:"compiler"`
	Platform     string `json:"platform"`
}

// DefaultVersion is the Kubernetes version whose API kubelite speaks.
func DefaultVersion() VersionInfo {
	return VersionInfo{
		Major: "1", Minor: "32", GitVersion: "v1.32.0+kubelite", GitTreeState: "clean",
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Version
	if v.GitVersion == "" {
		v = DefaultVersion()
	}
	writeJSON(w, http.StatusOK, v)
}

type serverAddress struct {
	ClientCIDR    string `json:"clientCIDR"`
	ServerAddress string `json:"serverAddress"`
}

func (s *Server) addresses() []serverAddress {
	return []serverAddress{{ClientCIDR: "0.0.0.0/0", ServerAddress: s.cfg.ExternalAddress}}
}

// apiVersions answers /api (the core group's versions).
func (s *Server) apiVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"kind":                       "APIVersions",
		"versions":                   []string{"v1"},
		"serverAddressByClientCIDRs": s.addresses(),
	})
}

type groupVersion struct {
	GroupVersion string `json:"groupVersion"`
	Version      string `json:"version"`
}

type apiGroup struct {
	Kind                       string          `json:"kind,omitempty"`
	APIVersion                 string          `json:"apiVersion,omitempty"`
	Name                       string          `json:"name"`
	Versions                   []groupVersion  `json:"versions"`
	PreferredVersion           groupVersion    `json:"preferredVersion"`
	ServerAddressByClientCIDRs []serverAddress `json:"serverAddressByClientCIDRs,omitempty"`
}

// groups lists the named API groups with their served versions.
func (s *Server) groups() []apiGroup {
	versions := map[string][]string{}
	for _, res := range s.scheme.All() {
		if res.Group == "" {
			continue
		}
		if !contains(versions[res.Group], res.Version) {
			versions[res.Group] = append(versions[res.Group], res.Version)
		}
	}
	names := make([]string, 0, len(versions))
	for g := range versions {
		names = append(names, g)
	}
	sort.Strings(names)
	var out []apiGroup
	for _, g := range names {
		grp := apiGroup{Name: g}
		for _, v := range versions[g] {
			grp.Versions = append(grp.Versions, groupVersion{GroupVersion: g + "/" + v, Version: v})
		}
		grp.PreferredVersion = grp.Versions[0]
		out = append(out, grp)
	}
	return out
}

// apiGroups answers /apis.
func (s *Server) apiGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": s.groups()})
}

// apiGroup answers /apis/{group}.
func (s *Server) apiGroup(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "group")
	for _, g := range s.groups() {
		if g.Name == name {
			g.Kind, g.APIVersion = "APIGroup", "v1"
			writeJSON(w, http.StatusOK, g)
			return
		}
	}
	writeError(w, api.NewStatus(http.StatusNotFound, api.ReasonNotFound, "the server could not find the requested resource"))
}

type apiResource struct {
	Name         string   `json:"name"`
	SingularName string   `json:"singularName"`
	Namespaced   bool     `json:"namespaced"`
	Group        string   `json:"group,omitempty"`
	Version      string   `json:"version,omitempty"`
	Kind         string   `json:"kind"`
	Verbs        []string `json:"verbs"`
	ShortNames   []string `json:"shortNames,omitempty"`
	Categories   []string `json:"categories,omitempty"`
}

var (
	collectionVerbs  = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	subresourceVerbs = map[string][]string{
		"status":  {"get", "patch", "update"},
		"scale":   {"get", "patch", "update"},
		"binding": {"create"},
		"log":     {"get"},
		"exec":    {"create", "get"},
		"attach":  {"create", "get"},
	}
)

// resourceList answers /api/v1 and /apis/{group}/{version}.
func (s *Server) resourceList(w http.ResponseWriter, r *http.Request) {
	group, version := chi.URLParam(r, "group"), chi.URLParam(r, "version")
	gv := api.GroupVersion(group, version)
	var list []apiResource
	for _, res := range s.scheme.All() {
		if res.Group != group || res.Version != version {
			continue
		}
		list = append(list, apiResource{
			Name: res.Plural, SingularName: res.Singular, Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: collectionVerbs, ShortNames: res.ShortNames, Categories: categories(res),
		})
		for _, sub := range res.Subresources {
			kind := res.Kind
			switch sub {
			case "scale":
				kind = "Scale"
			case "binding":
				kind = "Binding"
			case "exec", "attach":
				kind = "PodExecOptions"
			case "log":
				kind = "Pod"
			}
			list = append(list, apiResource{Name: res.Plural + "/" + sub, Namespaced: res.Namespaced, Kind: kind, Verbs: subresourceVerbs[sub]})
		}
	}
	if list == nil {
		writeError(w, api.NewStatus(http.StatusNotFound, api.ReasonNotFound, "the server could not find the requested resource"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

// categories puts workload kinds in "all", so `get all` works as in kubectl.
func categories(res *api.Resource) []string {
	switch res.Kind {
	case "Pod", "Service", "Deployment", "ReplicaSet":
		return []string{"all"}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
