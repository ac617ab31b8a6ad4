package kubectl

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"kubelite/api/client"
)

// manifestWrite is what `apply -f` and `create -f` share: the files, the
// write flags, the namespace, and the loop that writes each document on its
// own — a document that fails is reported and the others still go ahead,
// as kubectl does; the command then fails.
type manifestWrite struct {
	f     *factory
	files fileOptions
	write writeFlags

	namespace         string
	explicitNamespace bool
	writeOptions      client.WriteOptions
}

// complete reads the namespace and the write flags.
func (m *manifestWrite) complete(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, "Unexpected args: %v", args)
	}
	var err error
	if m.writeOptions, err = m.write.complete(); err != nil {
		return err
	}
	m.namespace, m.explicitNamespace = m.f.Namespace()
	return nil
}

// validate checks that there is something to write.
func (m *manifestWrite) validate() error {
	if len(m.files.filenames) == 0 {
		return fmt.Errorf("must specify one of -f and -k")
	}
	return validateOutput(m.write.output, "", outputName, outputJSON, outputYAML)
}

// each resolves every document, writes it with writeOne and prints the result.
func (m *manifestWrite) each(ctx context.Context, verb string, writeOne func(context.Context, *client.Client, *resolvedManifest) (*writeResult, error)) error {
	docs, errs := readManifests(m.files, m.f.streams.In)
	if len(docs) == 0 && len(errs) == 0 {
		return fmt.Errorf("no objects passed to %s", verb)
	}
	c, err := m.f.Client()
	if err != nil {
		return err
	}
	for _, doc := range docs {
		resolved, err := doc.resolve(m.f.scheme, m.namespace, m.explicitNamespace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		result, err := writeOne(ctx, c, resolved)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.write.printResult(m.f.streams.Out, resolved.resource, resolved.name, result); err != nil {
			errs = append(errs, err)
		}
	}
	return errs.orNil()
}
