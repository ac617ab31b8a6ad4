// Command build-images writes kubelite's offline images (busybox.tar and
// httpd.tar, OCI image layouts) into a folder; scripts/build-images.sh runs it.
//
//	go run ./nodeagent/images/cmd/build-images -busybox /bin/busybox OUTDIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"kubelite/nodeagent/images"
)

func main() {
	busybox := flag.String("busybox", images.DefaultBusybox, "busybox-static binary to package")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-busybox PATH] OUTDIR\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	files, err := images.BuildAll(flag.Arg(0), *busybox)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-images:", err)
		os.Exit(1)
	}
	for _, file := range files {
		sum, err := images.Digest(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "build-images:", err)
			os.Exit(1)
		}
		fmt.Printf("%s sha256:%s\n", file, sum)
	}
}
