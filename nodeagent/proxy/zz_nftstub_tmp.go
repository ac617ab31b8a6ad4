package proxy

// TEMPORARY placeholder so the package builds until nftmode.go lands:
// whoever adds nftmode.go (newNFTablesDataplane, cleanupNFTables) deletes this file.
import (
	"context"
	"log/slog"

	"kubelite/nodeagent/proxy/nftables"
)

type nftablesDataplane struct{ iptablesDataplane }

func newNFTablesDataplane(nft nftables.Interface, logger *slog.Logger) *nftablesDataplane {
	return nil
}
func cleanupNFTables(ctx context.Context, nft nftables.Interface) error { return nil }

func NFTServiceRules(listing []byte, namespace, name string) string { return "" }

const nftTableName = "kubelite"
