package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// maxApplyConflictRetries bounds how often apply re-reads an object that
// changed between its GET and its PUT.
const maxApplyConflictRetries = 5

// ApplyOptions are the options of `kubectl-lite apply`.
type ApplyOptions struct {
	manifestWrite
}

func newApplyCommand(f *factory) *cobra.Command {
	o := &ApplyOptions{manifestWrite{f: f}}
	cmd := &cobra.Command{
		Use:                   "apply (-f FILENAME | -R -f DIRECTORY)",
		DisableFlagsInUseLine: true,
		Short:                 "Apply a configuration to a resource by file name or stdin",
		Long: "Apply a configuration to a resource by file name or stdin. The resource name must be specified. " +
			"This resource will be created if it doesn't exist yet.\n\nJSON and YAML formats are accepted.",
		Example: `  # Apply the configuration in httpd.yml
  kubectl-lite apply -f httpd.yml

  # Apply every manifest of a directory tree
  kubectl-lite apply -R -f ./manifests

  # Apply the JSON passed into stdin
  cat pod.json | kubectl-lite apply -f -`,
		RunE: f.runE(o),
	}
	o.files.addFlags(cmd, "The files that contain the configurations to apply.")
	o.write.addFlags(cmd)
	return cmd
}

// Complete reads the namespace and the write flags.
func (o *ApplyOptions) Complete(cmd *cobra.Command, args []string) error {
	return o.complete(cmd, args)
}

// Validate checks that there is something to apply.
func (o *ApplyOptions) Validate() error { return o.validate() }

// Run applies every document; see manifestWrite.each.
func (o *ApplyOptions) Run(ctx context.Context) error { return o.each(ctx, "apply", o.applyOne) }

// writeResult is what one create or apply did, and the object after it.
type writeResult struct {
	verb   string // created, configured, unchanged
	object json.RawMessage
}

// applyOne creates the object if it does not exist, else patches the live
// object with the three-way merge of the last applied manifest, the new
// manifest and the live object, and writes it back.
func (o *ApplyOptions) applyOne(ctx context.Context, c *client.Client, doc *resolvedManifest) (*writeResult, error) {
	modified, err := withLastApplied(doc.body())
	if err != nil {
		return nil, err
	}
	modifiedJSON, err := json.Marshal(modified)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", doc.source, err)
	}
	dyn := c.Resource(doc.resource, doc.ns)
	for attempt := 0; ; attempt++ {
		liveJSON, err := dyn.Get(ctx, doc.name)
		if api.IsNotFound(err) {
			if o.write.dryRun == dryRunClient {
				return &writeResult{verb: "created", object: modifiedJSON}, nil
			}
			created, err := dyn.Create(ctx, doc.apiVersion, modifiedJSON, o.writeOptions)
			if err != nil {
				return nil, withSource("creating", doc.source, err)
			}
			return &writeResult{verb: "created", object: created}, nil
		}
		if err != nil {
			return nil, withSource(fmt.Sprintf("retrieving current configuration of %s from server for", quotedName(doc.resource, doc.name)), doc.source, err)
		}
		live, err := decodeJSONObject(liveJSON)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", quotedName(doc.resource, doc.name), err)
		}
		original, err := lastApplied(live)
		if err != nil {
			return nil, withSource("applying", doc.source, err)
		}
		// The live object is read in the stored version; the manifest may
		// use a legacy one. The write goes to the manifest's version path,
		// so view the live object in that version.
		live["apiVersion"] = doc.apiVersion
		patch := threeWayMergePatch(original, modified, live)
		if len(patch) == 0 {
			return &writeResult{verb: "unchanged", object: liveJSON}, nil
		}
		merged, err := json.Marshal(applyMergePatch(live, patch))
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", doc.source, err)
		}
		if o.write.dryRun == dryRunClient {
			return &writeResult{verb: "configured", object: merged}, nil
		}
		updated, err := dyn.Update(ctx, doc.apiVersion, doc.name, merged, o.writeOptions)
		if api.IsConflict(err) && attempt < maxApplyConflictRetries {
			continue // someone else wrote in between: merge again on the new state
		}
		if err != nil {
			return nil, withSource("patching", doc.source, err)
		}
		verb := "configured"
		if resourceVersionOf(updated) == resourceVersionOf(liveJSON) {
			verb = "unchanged" // the server saw nothing to change
		}
		return &writeResult{verb: verb, object: updated}, nil
	}
}

// resourceVersionOf reads metadata.resourceVersion of an object's JSON.
func resourceVersionOf(raw []byte) string {
	var obj struct {
		api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return ""
	}
	return obj.ResourceVersion
}

// Dry-run strategies.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// writeFlags are the flags of commands that write objects: --validate,
// --dry-run and -o.
type writeFlags struct {
	validate string
	dryRun   string
	output   string
}

func (w *writeFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.validate, "validate", "strict", `Must be one of: strict (or true), warn, ignore (or false).
		"true" or "strict" will use the server's field validation to fail the request on unknown or duplicate fields.
		"warn" will warn about unknown or duplicate fields without blocking the request.
		"false" or "ignore" will not perform any schema validation, silently dropping any unknown or duplicate fields.`)
	cmd.Flags().Lookup("validate").NoOptDefVal = "strict"
	cmd.Flags().StringVar(&w.dryRun, "dry-run", dryRunNone, `Must be "none" or "client". If client strategy, only print the object that would be sent, without sending it.`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunClient
	cmd.Flags().StringVarP(&w.output, "output", "o", "", "Output format. One of: (json, yaml, name).")
}

// complete maps --validate to the server's fieldValidation and checks --dry-run.
func (w *writeFlags) complete() (client.WriteOptions, error) {
	var opts client.WriteOptions
	switch w.validate {
	case "strict", "true":
		opts.FieldValidation = "Strict"
	case "warn":
		opts.FieldValidation = "Warn"
	case "ignore", "false":
		opts.FieldValidation = "Ignore"
	default:
		return opts, fmt.Errorf("invalid - validate option %q; must be one of: strict (or true), warn, ignore (or false)", w.validate)
	}
	switch w.dryRun {
	case dryRunNone, dryRunClient:
	case dryRunServer:
		return opts, fmt.Errorf("--dry-run=server is not supported by kubectl-lite; use --dry-run=client")
	default:
		return opts, fmt.Errorf(`Invalid dry-run value (%v). Must be "none", "server", or "client".`, w.dryRun)
	}
	return opts, nil
}

// printResult prints one written object: "deployment.apps/httpd created",
// with " (dry run)" when nothing was sent, or the object in the -o format.
func (w *writeFlags) printResult(out io.Writer, r *api.Resource, name string, result *writeResult) error {
	if w.output != "" && w.output != outputName {
		return printObjects(out, w.output, []printedObject{{resource: r, raw: result.object, name: name}}, true)
	}
	if w.output == outputName {
		fmt.Fprintln(out, objectName(r, name))
		return nil
	}
	suffix := ""
	if w.dryRun == dryRunClient {
		suffix = " (dry run)"
	}
	fmt.Fprintf(out, "%s %s%s\n", objectName(r, name), result.verb, suffix)
	return nil
}
