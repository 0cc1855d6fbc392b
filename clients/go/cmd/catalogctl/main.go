// Command catalogctl reads Agora's catalog over gRPC with the client generated from
// protos/agora/catalog/v1.
//
// Usage:
//
//	catalogctl [-addr host:port] [-timeout 5s] list [-category categories/x] [-page-size N]
//	catalogctl [-addr host:port] [-timeout 5s] get products/x
//
// Before any command it asks the standard gRPC health service whether
// agora.catalog.v1.CatalogService is SERVING, and stops with a non-zero exit status if
// not. Every call carries a deadline of -timeout. A failed call prints its canonical code
// and the reason of the google.rpc.ErrorInfo in the status details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	catalogv1 "agora/clients/go/gen/agora/catalog/v1"
)

// healthService is the name the catalog registers with the gRPC health service.
const healthService = "agora.catalog.v1.CatalogService"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the catalog is unhealthy or a call failed
	exitUsage   = 2 // the command line is wrong
)

const usageText = `usage:
  catalogctl [-addr host:port] [-timeout 5s] list [-category categories/x] [-page-size N]
  catalogctl [-addr host:port] [-timeout 5s] get products/x

Global flags go before the command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one parsed subcommand, ready to run against a connected client.
type command func(ctx context.Context, c caller, client catalogv1.CatalogServiceClient, out io.Writer) error

// run parses args, checks the catalog's health and runs the command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("catalogctl", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fmt.Fprintln(stderr, "\nglobal flags:")
		global.PrintDefaults()
	}
	addr := global.String("addr", "127.0.0.1:50052", "catalog address (host:port)")
	timeout := global.Duration("timeout", 5*time.Second, "deadline of each call")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "catalogctl: -timeout must be positive, got %s\n", *timeout)
		return exitUsage
	}
	cmd, err := parseCommand(global.Args(), stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "catalogctl: %v\n\n%s", err, usageText)
		return exitUsage
	}

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "catalogctl: bad address %q: %v\n", *addr, err)
		return exitUsage
	}
	defer conn.Close()

	c := caller{timeout: *timeout}
	if err := checkHealth(ctx, c, healthpb.NewHealthClient(conn), *addr); err != nil {
		fmt.Fprintf(stderr, "catalogctl: %v\n", err)
		return exitFailure
	}
	if err := cmd(ctx, c, catalogv1.NewCatalogServiceClient(conn), stdout); err != nil {
		fmt.Fprintf(stderr, "catalogctl: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseCommand turns the arguments after the global flags into a command.
func parseCommand(args []string, stderr io.Writer) (command, error) {
	if len(args) == 0 {
		return nil, errors.New("missing command (list or get)")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "list":
		fs := flag.NewFlagSet("list", flag.ContinueOnError)
		fs.SetOutput(stderr)
		category := fs.String("category", "", "only products in this category (categories/x)")
		pageSize := fs.Int("page-size", 0, "products per page (0: the server's default)")
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() != 0 {
			return nil, fmt.Errorf("list takes no arguments, got %q", fs.Args())
		}
		if *pageSize < 0 || *pageSize > math.MaxInt32 {
			return nil, fmt.Errorf("-page-size must be from 0 to %d, got %d", math.MaxInt32, *pageSize)
		}
		return func(ctx context.Context, c caller, client catalogv1.CatalogServiceClient, out io.Writer) error {
			return listProducts(ctx, c, client, out, *category, int32(*pageSize))
		}, nil
	case "get":
		fs := flag.NewFlagSet("get", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() != 1 {
			return nil, errors.New("get takes exactly one product name (products/x)")
		}
		product := fs.Arg(0)
		return func(ctx context.Context, c caller, client catalogv1.CatalogServiceClient, out io.Writer) error {
			return getProduct(ctx, c, client, out, product)
		}, nil
	default:
		return nil, fmt.Errorf("unknown command %q", name)
	}
}

// caller gives every call its own deadline.
type caller struct {
	timeout time.Duration
}

// call runs f with a context that expires after the per-call timeout.
func (c caller) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return f(ctx)
}

// checkHealth fails unless the health service reports the catalog as SERVING.
func checkHealth(ctx context.Context, c caller, health healthpb.HealthClient, addr string) error {
	var resp *healthpb.HealthCheckResponse
	err := c.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = health.Check(ctx, &healthpb.HealthCheckRequest{Service: healthService})
		return err
	})
	if err != nil {
		return fmt.Errorf("health check of %s at %s failed: %s", healthService, addr, describe(err))
	}
	if got := resp.GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check of %s at %s: status %s, want SERVING", healthService, addr, got)
	}
	return nil
}

// listProducts pages through ListProducts until the last page, one line per product.
func listProducts(ctx context.Context, c caller, client catalogv1.CatalogServiceClient, out io.Writer, category string, pageSize int32) error {
	req := &catalogv1.ListProductsRequest{Category: category, PageSize: pageSize}
	seen := map[string]bool{}
	for {
		var resp *catalogv1.ListProductsResponse
		err := c.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = client.ListProducts(ctx, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("ListProducts failed: %s", describe(err))
		}
		for _, p := range resp.GetProducts() {
			fmt.Fprintf(out, "%s\t%s\t%s\n", p.GetName(), p.GetDisplayName(), formatMoney(p.GetPrice()))
		}
		next := resp.GetNextPageToken()
		if next == "" {
			return nil
		}
		// An opaque token that comes back again would loop forever: stop instead.
		if seen[next] {
			return fmt.Errorf("ListProducts returned page token %q twice", next)
		}
		seen[next] = true
		req.PageToken = next
	}
}

// getProduct prints one product, a field per line.
func getProduct(ctx context.Context, c caller, client catalogv1.CatalogServiceClient, out io.Writer, name string) error {
	var resp *catalogv1.GetProductResponse
	err := c.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = client.GetProduct(ctx, &catalogv1.GetProductRequest{Name: name})
		return err
	})
	if err != nil {
		return fmt.Errorf("GetProduct %s failed: %s", name, describe(err))
	}
	p := resp.GetProduct()
	fields := []struct{ key, value string }{
		{"name", p.GetName()},
		{"display_name", p.GetDisplayName()},
		{"category", p.GetCategory()},
		{"price", formatMoney(p.GetPrice())},
		{"description", p.GetDescription()},
		{"create_time", formatTime(p.GetCreateTime().AsTime(), p.GetCreateTime() != nil)},
		{"update_time", formatTime(p.GetUpdateTime().AsTime(), p.GetUpdateTime() != nil)},
		{"etag", p.GetEtag()},
	}
	for _, f := range fields {
		fmt.Fprintln(out, strings.TrimRight(fmt.Sprintf("%-13s %s", f.key+":", f.value), " "))
	}
	return nil
}

// describe renders a gRPC error as its canonical code, the ErrorInfo reason and domain
// when the status carries one, and the message.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "code=%s", codeName(st))
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			fmt.Fprintf(&b, " reason=%s domain=%s", info.GetReason(), info.GetDomain())
			break
		}
	}
	fmt.Fprintf(&b, " message=%q", st.Message())
	return b.String()
}

// codeName is the canonical upper-snake name of a status code (NOT_FOUND, UNAVAILABLE, ...).
func codeName(st *status.Status) string {
	if name, ok := code.Code_name[int32(st.Code())]; ok {
		return name
	}
	return st.Code().String()
}

// formatMoney renders an amount with at least two decimals and its currency, e.g. `12.50 EUR`.
func formatMoney(m *money.Money) string {
	if m == nil {
		return "-"
	}
	units, nanos := m.GetUnits(), m.GetNanos()
	sign := ""
	if units < 0 || nanos < 0 {
		sign = "-"
	}
	absUnits := uint64(units)
	if units < 0 {
		absUnits = uint64(-(units + 1)) + 1 // safe for the smallest int64
	}
	if nanos < 0 {
		nanos = -nanos
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", nanos), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	amount := fmt.Sprintf("%s%d.%s", sign, absUnits, frac)
	if m.GetCurrencyCode() == "" {
		return amount
	}
	return amount + " " + m.GetCurrencyCode()
}

func formatTime(t time.Time, set bool) string {
	if !set {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
