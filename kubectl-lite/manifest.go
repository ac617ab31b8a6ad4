package kubectl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/api"
)

// manifestExtensions are the files a directory given to -f contributes.
func manifestExtensions() []string { return []string{".json", ".yaml", ".yml"} }

// manifest is one object read from -f: its decoded JSON, its identity and
// the file it came from.
type manifest struct {
	source string // the file name as kubectl reports it, "STDIN" for -
	object map[string]any

	apiVersion, kind, namespace, name string
}

// fileOptions are the -f/-R flags shared by apply, create and delete.
type fileOptions struct {
	filenames []string
	recursive bool
}

func (o *fileOptions) addFlags(cmd *cobra.Command, usage string) {
	cmd.Flags().StringSliceVarP(&o.filenames, "filename", "f", nil, usage)
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively. Useful when you want to manage related manifests organized within the same directory.")
}

// readManifests reads every document of every -f argument, in order. A
// document that cannot be parsed is returned as an error in its slot of
// errs, so that the others still go ahead.
func readManifests(o fileOptions, stdin io.Reader) (docs []*manifest, errs errorList) {
	for _, name := range o.filenames {
		if name == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				errs = append(errs, fmt.Errorf("reading standard input: %w", err))
				continue
			}
			d, e := parseManifests("STDIN", data)
			docs, errs = append(docs, d...), append(errs, e...)
			continue
		}
		files, err := expandPath(name, o.recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("the path %q cannot be read: %w", file, err))
				continue
			}
			d, e := parseManifests(file, data)
			docs, errs = append(docs, d...), append(errs, e...)
		}
	}
	return docs, errs
}

// expandPath lists the manifest files behind one -f argument: the file
// itself, or the .json/.yaml/.yml files of a directory (of its whole tree
// with -R), in lexical order.
func expandPath(path string, recursive bool) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("the path %q does not exist", path)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		for _, ext := range manifestExtensions() {
			if strings.HasSuffix(p, ext) {
				files = append(files, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %q: %w", path, err)
	}
	return files, nil
}

// parseManifests splits a file into its objects (YAML documents separated
// by `---` lines or a JSON stream; List items expanded; empty documents
// skipped) and reads the identity of each. A document without apiVersion
// or kind is an error of its own; the others still go ahead.
func parseManifests(source string, data []byte) (docs []*manifest, errs errorList) {
	chunks, err := api.SplitYAMLDocuments(data)
	if err != nil {
		return nil, errorList{fmt.Errorf("error parsing %s: %w", source, err)}
	}
	for _, chunk := range chunks {
		doc, err := newManifest(source, chunk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs = append(docs, doc)
	}
	return docs, errs
}

func newManifest(source string, data []byte) (*manifest, error) {
	apiVersion, kind, namespace, name, err := api.PeekMeta(data)
	if err != nil {
		return nil, fmt.Errorf("error parsing %s: %w", source, err)
	}
	switch {
	case apiVersion == "":
		return nil, fmt.Errorf("error validating %q: error validating data: apiVersion not set", source)
	case kind == "":
		return nil, fmt.Errorf("error validating %q: error validating data: kind not set", source)
	}
	obj, err := decodeJSONObject(data)
	if err != nil {
		return nil, fmt.Errorf("error parsing %s: %w", source, err)
	}
	return &manifest{
		source:     source,
		object:     obj,
		apiVersion: apiVersion,
		kind:       kind,
		namespace:  namespace,
		name:       name,
	}, nil
}

// decodeJSONObject decodes a JSON object keeping numbers exact
// (json.Number), so that re-encoding never turns 1000000 into 1e+06.
func decodeJSONObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return obj, nil
}

// resolvedManifest is a manifest bound to its resource and namespace.
type resolvedManifest struct {
	*manifest
	resource *api.Resource
	ns       string // "" for cluster-scoped resources
}

// resolve finds the manifest's resource and namespace: the document's own
// namespace, else the command's; a document namespace that contradicts an
// explicit -n is an error, as in kubectl.
func (m *manifest) resolve(scheme *api.Scheme, ns string, explicit bool) (*resolvedManifest, error) {
	r, _, ok := scheme.ByKind(m.apiVersion, m.kind)
	if !ok {
		return nil, fmt.Errorf("resource mapping not found for name: %q namespace: %q from %q: no matches for kind %q in version %q\nensure CRDs are installed first",
			m.name, m.namespace, m.source, m.kind, m.apiVersion)
	}
	if m.name == "" {
		return nil, fmt.Errorf("error when retrieving current configuration of %s from %q: resource name may not be empty", m.kind, m.source)
	}
	rm := &resolvedManifest{manifest: m, resource: r}
	if !r.Namespaced {
		return rm, nil
	}
	switch {
	case m.namespace == "":
		rm.ns = ns
	case explicit && m.namespace != ns:
		return nil, fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.", m.namespace, ns, m.namespace)
	default:
		rm.ns = m.namespace
	}
	return rm, nil
}

// body is the manifest as sent to the server, its namespace filled in.
func (m *resolvedManifest) body() map[string]any {
	obj := deepCopyJSON(m.object).(map[string]any)
	if m.ns != "" {
		meta, _ := obj["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			obj["metadata"] = meta
		}
		meta["namespace"] = m.ns
	}
	return obj
}
