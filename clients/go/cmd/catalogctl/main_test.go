//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	catalogv1 "agora/clients/go/gen/agora/catalog/v1"
)

// Bounds for the catalog process: start-up (including migrations) and shutdown on SIGTERM.
const (
	startupTimeout  = 30 * time.Second
	shutdownTimeout = 20 * time.Second
	callTimeout     = 5 * time.Second
)

// TestCatalogctlAgainstARealCatalog starts the Python catalog service as a process, seeds it
// through the generated Go client and drives the catalogctl binary against it.
func TestCatalogctlAgainstARealCatalog(t *testing.T) {
	bin := buildCatalogctl(t)
	catalog := startCatalog(t)
	client := catalogv1.NewCatalogServiceClient(dial(t, catalog.addr))

	for _, c := range []struct{ id, displayName string }{{"tea", "Tea"}, {"coffee", "Coffee"}} {
		resp, err := withDeadline(func(ctx context.Context) (*catalogv1.CreateCategoryResponse, error) {
			return client.CreateCategory(ctx, &catalogv1.CreateCategoryRequest{
				CategoryId: c.id,
				Category:   &catalogv1.Category{DisplayName: c.displayName},
			})
		})
		if err != nil {
			t.Fatalf("CreateCategory %s: %v", c.id, err)
		}
		if got, want := resp.GetCategory().GetName(), "categories/"+c.id; got != want {
			t.Fatalf("CreateCategory returned name %q, want %q", got, want)
		}
	}
	seeds := []struct {
		id, displayName, category string
		price                     *money.Money
		wantPrice                 string
	}{
		{"assam", "Assam Breakfast", "categories/tea", eur(12, 500_000_000), "12.50 EUR"},
		{"darjeeling", "Darjeeling First Flush", "categories/tea", eur(3, 50_000_000), "3.05 EUR"},
		{"espresso", "Espresso Beans", "categories/coffee", eur(100, 0), "100.00 EUR"},
		{"sencha", "Sencha", "categories/tea", eur(0, 990_000_000), "0.99 EUR"},
	}
	for _, s := range seeds {
		resp, err := withDeadline(func(ctx context.Context) (*catalogv1.CreateProductResponse, error) {
			return client.CreateProduct(ctx, &catalogv1.CreateProductRequest{
				ProductId: s.id,
				Product: &catalogv1.Product{
					DisplayName: s.displayName,
					Category:    s.category,
					Price:       s.price,
				},
			})
		})
		if err != nil {
			t.Fatalf("CreateProduct %s: %v", s.id, err)
		}
		if got, want := resp.GetProduct().GetName(), "products/"+s.id; got != want {
			t.Fatalf("CreateProduct returned name %q, want %q", got, want)
		}
	}

	// With a page size of 2 the listing spans pages: the first page must say there is more,
	// so catalogctl's output below proves it followed the page tokens.
	first, err := withDeadline(func(ctx context.Context) (*catalogv1.ListProductsResponse, error) {
		return client.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 2})
	})
	if err != nil {
		t.Fatalf("ListProducts: %v", err)
	}
	if len(first.GetProducts()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("ListProducts(page_size=2) returned %d products and next_page_token %q; want 2 and a token",
			len(first.GetProducts()), first.GetNextPageToken())
	}

	addr := "-addr=" + catalog.addr

	t.Run("list pages through every product in name order", func(t *testing.T) {
		out := runOK(t, bin, addr, "list", "-page-size", "2")
		want := []string{
			"products/assam\tAssam Breakfast\t12.50 EUR",
			"products/darjeeling\tDarjeeling First Flush\t3.05 EUR",
			"products/espresso\tEspresso Beans\t100.00 EUR",
			"products/sencha\tSencha\t0.99 EUR",
		}
		assertLines(t, out, want)
	})

	t.Run("list filters by category across pages", func(t *testing.T) {
		out := runOK(t, bin, addr, "-timeout=3s", "list", "-category", "categories/tea", "-page-size", "2")
		want := []string{
			"products/assam\tAssam Breakfast\t12.50 EUR",
			"products/darjeeling\tDarjeeling First Flush\t3.05 EUR",
			"products/sencha\tSencha\t0.99 EUR",
		}
		assertLines(t, out, want)
	})

	t.Run("list with the default page size", func(t *testing.T) {
		out := runOK(t, bin, addr, "list")
		if n := len(nonEmptyLines(out)); n != len(seeds) {
			t.Fatalf("list printed %d lines, want %d:\n%s", n, len(seeds), out)
		}
	})

	t.Run("get shows the product and its price", func(t *testing.T) {
		out := runOK(t, bin, addr, "get", "products/darjeeling")
		for _, want := range []string{
			"name:         products/darjeeling",
			"display_name: Darjeeling First Flush",
			"category:     categories/tea",
			"price:        3.05 EUR",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("get output lacks line %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "create_time:  -") {
			t.Errorf("get output has no create_time:\n%s", out)
		}
	})

	t.Run("get of a missing product fails with NOT_FOUND and its reason", func(t *testing.T) {
		res := runCatalogctl(t, bin, addr, "get", "products/does-not-exist")
		if res.code != exitFailure {
			t.Fatalf("exit status %d, want %d; stdout:\n%s\nstderr:\n%s", res.code, exitFailure, res.stdout, res.stderr)
		}
		for _, want := range []string{"code=NOT_FOUND", "reason=PRODUCT_NOT_FOUND", "domain=catalog.agora"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
			}
		}
		if res.stdout != "" {
			t.Errorf("stdout should be empty, got:\n%s", res.stdout)
		}
	})

	t.Run("a bogus page token is INVALID_ARGUMENT with reason INVALID_PAGE_TOKEN", func(t *testing.T) {
		_, err := withDeadline(func(ctx context.Context) (*catalogv1.ListProductsResponse, error) {
			return client.ListProducts(ctx, &catalogv1.ListProductsRequest{PageToken: "not-a-token"})
		})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Fatalf("ListProducts with a bogus page token: code %s, want InvalidArgument (err %v)", got, err)
		}
		if got := errorReason(err); got != "INVALID_PAGE_TOKEN" {
			t.Errorf("ListProducts with a bogus page token: reason %q, want INVALID_PAGE_TOKEN", got)
		}
	})

	catalog.stop(t)
}

// TestCatalogctlFailsWhenNothingListens points catalogctl at a port nobody listens on.
func TestCatalogctlFailsWhenNothingListens(t *testing.T) {
	bin := buildCatalogctl(t)
	addr := "127.0.0.1:" + freePort(t)
	res := runCatalogctl(t, bin, "-addr", addr, "-timeout", "2s", "list")
	if res.code != exitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", res.code, exitFailure, res.stderr)
	}
	want := "health check of agora.catalog.v1.CatalogService at " + addr + " failed: code=UNAVAILABLE"
	if !strings.Contains(res.stderr, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, res.stderr)
	}
	if res.stdout != "" {
		t.Errorf("stdout should be empty, got:\n%s", res.stdout)
	}
}

// TestCatalogctlFailsWhenNotServing talks to a health service that reports NOT_SERVING.
func TestCatalogctlFailsWhenNotServing(t *testing.T) {
	bin := buildCatalogctl(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(healthService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	res := runCatalogctl(t, bin, "-addr", lis.Addr().String(), "get", "products/assam")
	if res.code != exitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", res.code, exitFailure, res.stderr)
	}
	if want := "status NOT_SERVING, want SERVING"; !strings.Contains(res.stderr, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, res.stderr)
	}
}

// TestCatalogctlRejectsBadCommandLines needs no server: usage errors exit with status 2.
func TestCatalogctlRejectsBadCommandLines(t *testing.T) {
	bin := buildCatalogctl(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"get"},
		{"get", "products/a", "products/b"},
		{"list", "extra"},
		{"list", "-page-size", "-1"},
		{"-timeout", "0s", "list"},
	} {
		res := runCatalogctl(t, bin, args...)
		if res.code != exitUsage {
			t.Errorf("catalogctl %q: exit status %d, want %d; stderr:\n%s", args, res.code, exitUsage, res.stderr)
		}
	}
}

func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		in   *money.Money
		want string
	}{
		{eur(12, 500_000_000), "12.50 EUR"},
		{eur(0, 5_000_000), "0.005 EUR"},
		{eur(7, 0), "7.00 EUR"},
		{&money.Money{CurrencyCode: "EUR", Units: -1, Nanos: -750_000_000}, "-1.75 EUR"},
		{&money.Money{CurrencyCode: "EUR", Nanos: -10_000_000}, "-0.01 EUR"},
		{&money.Money{CurrencyCode: "JPY", Units: -9223372036854775808}, "-9223372036854775808.00 JPY"},
		{nil, "-"},
	} {
		if got := formatMoney(c.in); got != c.want {
			t.Errorf("formatMoney(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// --- helpers ---------------------------------------------------------------------------

func eur(units int64, nanos int32) *money.Money {
	return &money.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

// withDeadline runs one call of the generated client with a deadline.
func withDeadline[T any](f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return f(ctx)
}

// errorReason is the google.rpc.ErrorInfo reason in a status, or "".
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildCatalogctl compiles this package once per test binary, so the tests exercise the
// real main (flags, exit statuses, stdout and stderr).
func buildCatalogctl(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "catalogctl-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "catalogctl")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runCatalogctl runs the binary with a bound on its run time and returns what it did.
func runCatalogctl(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
	default:
		t.Fatalf("catalogctl %q did not run to completion: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// runOK runs the binary and fails the test unless it exits 0.
func runOK(t *testing.T, bin string, args ...string) string {
	t.Helper()
	res := runCatalogctl(t, bin, args...)
	if res.code != exitOK {
		t.Fatalf("catalogctl %q: exit status %d\nstdout:\n%s\nstderr:\n%s", args, res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

func nonEmptyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func assertLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := nonEmptyLines(out)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	_, port, err := net.SplitHostPort(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// repoRoot walks up from the package directory to the directory holding buf.yaml.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "buf.yaml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no buf.yaml above the test directory: cannot find the repository root")
		}
		dir = parent
	}
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// catalogProcess is a running `python -m catalog`.
type catalogProcess struct {
	addr   string
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, valid after done
}

// startCatalog starts the catalog on a free port with its own data directory and waits
// until its health service reports SERVING. The process is killed if the test fails.
func startCatalog(t *testing.T) *catalogProcess {
	t.Helper()
	root := repoRoot(t)
	python := os.Getenv("AGORA_PYTHON")
	if python == "" {
		python = filepath.Join(root, ".venv", "bin", "python")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("no Python interpreter at %s (run `make venv` or set AGORA_PYTHON): %v", python, err)
	}
	dataDir := t.TempDir()
	port := freePort(t)
	p := &catalogProcess{addr: "127.0.0.1:" + port, output: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(python, "-m", "catalog")
	p.cmd.Dir = root
	p.cmd.Env = append(os.Environ(),
		"AGORA_PORT="+port,
		"AGORA_HOST=127.0.0.1",
		"AGORA_DATA_DIR="+dataDir,
		"DATABASE_URL=sqlite+aiosqlite:///"+filepath.Join(dataDir, "catalog.db"),
	)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	// Its own process group, so a failed test can kill anything it started too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s -m catalog: %v", python, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("catalog output (the process is stopped):\n%s", p.output.String())
		}
	})

	health := healthpb.NewHealthClient(dial(t, p.addr))
	deadline := time.Now().Add(startupTimeout)
	var last string
	for {
		select {
		case <-p.done:
			t.Fatalf("catalog exited during start-up: %v", p.err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: healthService})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return p
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.GetStatus().String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog not SERVING after %s (last: %s)", startupTimeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within shutdownTimeout.
func (p *catalogProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(shutdownTimeout):
		t.Fatalf("catalog still running %s after SIGTERM", shutdownTimeout)
	}
	if p.err != nil {
		t.Fatalf("catalog exited with %v after SIGTERM, want status 0", p.err)
	}
}
