package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"kubelite/api/client"
)

// Discovery documents, as the server publishes them under /api and /apis.
type (
	apiVersions struct {
		Versions []string `json:"versions"`
	}
	apiGroupList struct {
		Groups []struct {
			Name             string `json:"name"`
			PreferredVersion struct {
				GroupVersion string `json:"groupVersion"`
			} `json:"preferredVersion"`
			Versions []struct {
				GroupVersion string `json:"groupVersion"`
			} `json:"versions"`
		} `json:"groups"`
	}
	apiResourceList struct {
		GroupVersion string        `json:"groupVersion"`
		Resources    []apiResource `json:"resources"`
	}
	apiResource struct {
		Name       string   `json:"name"`
		Namespaced bool     `json:"namespaced"`
		Kind       string   `json:"kind"`
		Verbs      []string `json:"verbs"`
		ShortNames []string `json:"shortNames"`
		Categories []string `json:"categories"`
	}
)

// discoveredResource is one resource of the server's preferred versions.
type discoveredResource struct {
	apiResource
	group, groupVersion string
}

// APIResourcesOptions are the options of `kubectl-lite api-resources`.
type APIResourcesOptions struct {
	f *factory

	output     string
	apiGroup   string
	namespaced bool
	noHeaders  bool
	// namespacedSet says whether --namespaced was given at all.
	namespacedSet bool
}

func newAPIResourcesCommand(f *factory) *cobra.Command {
	o := &APIResourcesOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "api-resources",
		DisableFlagsInUseLine: true,
		Short:                 "Print the supported API resources on the server",
		Long:                  "Print the supported API resources on the server.",
		Example: `  # Print the supported API resources
  kubectl-lite api-resources

  # Print the supported namespaced resources
  kubectl-lite api-resources --namespaced=true`,
		RunE: f.runE(o),
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format. One of: (wide, name).")
	cmd.Flags().StringVar(&o.apiGroup, "api-group", "", "Limit to resources in the specified API group.")
	cmd.Flags().BoolVar(&o.namespaced, "namespaced", true, "If false, non-namespaced resources will be returned, otherwise returning namespaced resources by default.")
	cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "When using the default or custom-column output format, don't print headers (default print headers).")
	return cmd
}

// Complete notes whether --namespaced filters.
func (o *APIResourcesOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "unexpected arguments: %v", args)
	}
	o.namespacedSet = flagChanged(cmd.Flags(), "namespaced")
	return nil
}

// Validate checks the output format.
func (o *APIResourcesOptions) Validate() error {
	return validateOutput(o.output, "", outputWide, outputName)
}

// Run reads discovery and prints the resources sorted by group and name.
func (o *APIResourcesOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	resources, err := discoverResources(ctx, c)
	if err != nil {
		return err
	}
	var shown []discoveredResource
	for _, r := range resources {
		if strings.Contains(r.Name, "/") {
			continue // subresources
		}
		if o.apiGroup != "" && r.group != o.apiGroup {
			continue
		}
		if o.namespacedSet && r.Namespaced != o.namespaced {
			continue
		}
		shown = append(shown, r)
	}
	sort.SliceStable(shown, func(i, j int) bool {
		if shown[i].group != shown[j].group {
			return shown[i].group < shown[j].group
		}
		return shown[i].Name < shown[j].Name
	})
	return printAPIResources(o.f.streams.Out, shown, o.output, o.noHeaders)
}

// printAPIResources prints kubectl's api-resources table.
func printAPIResources(out io.Writer, resources []discoveredResource, output string, noHeaders bool) error {
	if output == outputName {
		for _, r := range resources {
			name := r.Name
			if r.group != "" {
				name += "." + r.group
			}
			fmt.Fprintln(out, name)
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	if !noHeaders {
		headers := []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}
		if output == outputWide {
			headers = append(headers, "VERBS", "CATEGORIES")
		}
		fmt.Fprintln(w, strings.Join(headers, "\t"))
	}
	for _, r := range resources {
		cells := []string{r.Name, strings.Join(r.ShortNames, ","), r.groupVersion, strconv.FormatBool(r.Namespaced), r.Kind}
		if output == outputWide {
			verbs := append([]string(nil), r.Verbs...)
			sort.Strings(verbs)
			cells = append(cells, strings.Join(verbs, ","), strings.Join(r.Categories, ","))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}

// discoverResources reads the resources of the core group and of every
// group's preferred version.
func discoverResources(ctx context.Context, c *client.Client) ([]discoveredResource, error) {
	var groupVersions []struct{ group, groupVersion string }
	var core apiVersions
	if err := getJSON(ctx, c, "/api", &core); err != nil {
		return nil, err
	}
	for _, v := range core.Versions {
		groupVersions = append(groupVersions, struct{ group, groupVersion string }{"", v})
	}
	var groups apiGroupList
	if err := getJSON(ctx, c, "/apis", &groups); err != nil {
		return nil, err
	}
	for _, g := range groups.Groups {
		gv := g.PreferredVersion.GroupVersion
		if gv == "" && len(g.Versions) > 0 {
			gv = g.Versions[0].GroupVersion
		}
		if gv != "" {
			groupVersions = append(groupVersions, struct{ group, groupVersion string }{g.Name, gv})
		}
	}
	var out []discoveredResource
	for _, gv := range groupVersions {
		path := "/apis/" + gv.groupVersion
		if gv.group == "" {
			path = "/api/" + gv.groupVersion
		}
		var list apiResourceList
		if err := getJSON(ctx, c, path, &list); err != nil {
			return nil, err
		}
		for _, r := range list.Resources {
			out = append(out, discoveredResource{apiResource: r, group: gv.group, groupVersion: gv.groupVersion})
		}
	}
	return out, nil
}

// getJSON GETs path and decodes the answer into v.
func getJSON(ctx context.Context, c *client.Client, path string, v any) error {
	body, err := c.Do(ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}
