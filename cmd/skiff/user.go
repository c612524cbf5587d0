package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"
	"go.etcd.io/bbolt"

	"github.com/skiff-registry/skiff/internal/auth"
	"github.com/skiff-registry/skiff/internal/httpapi"
	"github.com/skiff-registry/skiff/internal/storage/awsstore"
	"github.com/skiff-registry/skiff/internal/storage/local"
	"github.com/skiff-registry/skiff/pkg/oci"
)

// userArgs is a parsed `skiff user` command line.
type userArgs struct {
	action        string
	name          string
	prefix        string
	actions       []string
	robot, admin  bool
	passwordStdin bool
	registry      string
	data          string
	table         string
	json          bool
}

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4 << 10

// newUserCommand builds `skiff user`; each command hands its parsed and
// validated arguments to do, so mistakes fail before any store is touched.
func newUserCommand(getenv func(string) string, do func(*cobra.Command, userArgs) error) *cobra.Command {
	var (
		ua      userArgs
		actions string
	)
	group := &cobra.Command{
		Use:   "user",
		Short: "Users, robots and their grants: add, grant, revoke, list, delete, passwd",
		Long: `Users, robot accounts and their grants (skiff serve --auth).

The users are (one of):
  --registry=URL   behind a server's operator API (skiff serve --auth --operator-api);
                   default $SKIFF_REGISTRY. Authenticates as SKIFF_USERNAME / SKIFF_PASSWORD
                   (an admin)
  --data=DIR       in the embedded store of skiff serve --data DIR, while no server runs
                   on it: how the first admin is added
  --table=NAME     in the DynamoDB table itself, with your AWS credentials (IAM decides)

Passwords never go on the command line: a command line shows in ps and in shell history.`,
		Example: `  printf '%s\n' "$ADMIN_PASSWORD" | skiff user add admin --admin --password-stdin --data ./data
  skiff user add robot-ci --robot > robot-ci.secret
  skiff user grant robot-ci team/ --actions=pull,push`,
		Args:               cobra.ArbitraryArgs,
		RunE:               needCommand,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	const name, namePrefix = "NAME", "NAME PREFIX"
	for _, c := range []struct {
		use, short string
		n          int
		what       string
	}{
		{"add NAME [--robot] [--admin] [--password-stdin]", "Add a person (password from stdin) or a robot (--robot: its secret is generated and printed once, alone on stdout)", 1, name},
		{"passwd NAME --password-stdin", "Replace a password or robot secret", 1, name},
		{"grant NAME PREFIX --actions=pull,push,delete", "Grant actions on the repositories under PREFIX (a repository, a namespace such as team/, or '*')", 2, namePrefix},
		{"revoke NAME PREFIX [--actions=push]", "Take actions, or without --actions the whole grant, away", 2, namePrefix},
		{"list", "List the users and their grants", 0, "no arguments"},
		{"delete NAME", "Delete a user", 1, name},
	} {
		cmd := &cobra.Command{Use: c.use, Short: c.short, Args: wantArgs(c.n, c.what), RunE: func(cmd *cobra.Command, args []string) error {
			ua.action = cmd.Name()
			if err := ua.check(args, actions, getenv); err != nil {
				return err
			}
			return do(cmd, ua)
		}}
		fs := cmd.Flags()
		fs.StringVar(&ua.registry, "registry", "", "URL of a server with --auth and --operator-api (default $SKIFF_REGISTRY)")
		fs.StringVar(&ua.data, "data", "", "data directory of a stopped skiff serve")
		fs.StringVar(&ua.table, "table", "", "DynamoDB table to change directly, with your AWS credentials")
		fs.BoolVar(&ua.json, "json", false, "print JSON instead of text")
		switch cmd.Name() {
		case "add":
			fs.BoolVar(&ua.robot, "robot", false, "a robot account (for CI): without --password-stdin its secret is generated")
			fs.BoolVar(&ua.admin, "admin", false, "an admin: may do everything, the operator API included")
			fs.BoolVar(&ua.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
		case "passwd":
			fs.BoolVar(&ua.passwordStdin, "password-stdin", false, "read the new password from the first line of stdin")
		case "grant", "revoke":
			fs.StringVar(&actions, "actions", "", "comma-separated: pull, push, delete")
		}
		group.AddCommand(cmd)
	}
	return group
}

// check validates the command line: pos are the positional arguments,
// actions the --actions of grant and revoke.
func (ua *userArgs) check(pos []string, actions string, getenv func(string) string) error {
	var err error
	if len(pos) > 0 {
		ua.name = pos[0]
		if err := auth.ValidateName(ua.name); err != nil {
			return err
		}
	}
	if len(pos) > 1 {
		ua.prefix = pos[1]
		if ua.prefix != "*" {
			if ua.prefix, err = oci.NormalizePrefix(ua.prefix); err != nil {
				return err
			}
		}
	}
	for _, a := range strings.Split(actions, ",") {
		switch a = strings.TrimSpace(a); a {
		case "":
		case auth.ActionPull, auth.ActionPush, auth.ActionDelete:
			ua.actions = append(ua.actions, a)
		default:
			return fmt.Errorf("unknown action %q in --actions (want pull, push or delete)", a)
		}
	}
	switch {
	case ua.action == "grant" && len(ua.actions) == 0:
		return errors.New("skiff user grant needs --actions=pull[,push][,delete]")
	case ua.action == "passwd" && !ua.passwordStdin:
		return errors.New("skiff user passwd reads the new password from stdin: give --password-stdin (printf '%s' \"$PASSWORD\" | skiff user passwd NAME --password-stdin)")
	case ua.action == "add" && !ua.robot && !ua.passwordStdin:
		return errors.New("skiff user add reads a person's password from stdin: give --password-stdin; only robots (--robot) get a generated secret")
	}
	return ua.target(getenv)
}

// target picks the one place the users are.
func (ua *userArgs) target(getenv func(string) string) error {
	n := 0
	for _, s := range []string{ua.registry, ua.data, ua.table} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("give one of --registry, --data and --table")
	case n == 1 && ua.registry == "":
		return nil
	case ua.registry == "":
		ua.registry = getenv("SKIFF_REGISTRY")
	}
	if ua.registry == "" {
		return errors.New("say where the users are: --registry=URL (a server's operator API), --data=DIR (a stopped server's store) or --table=NAME (the DynamoDB table)")
	}
	u, err := registryURL(ua.registry)
	ua.registry = u
	return err
}

// userStore is what the commands need, whichever path they take.
type userStore interface {
	List(ctx context.Context) ([]httpapi.UserInfo, error)
	Add(ctx context.Context, name, password string, robot, admin bool) (httpapi.UserInfo, error)
	SetPassword(ctx context.Context, name, password string) (httpapi.UserInfo, error)
	Grant(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error)
	Revoke(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error)
	Delete(ctx context.Context, name string) (httpapi.UserInfo, error)
}

// runUser runs a user command against the store ua names and prints the
// result.
func runUser(cmd *cobra.Command, ua userArgs, getenv func(string) string) error {
	ctx, stdout, stderr := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	// The password is read before any store is opened, so nothing waits on
	// a lock while a person types.
	var (
		password  string
		generated bool
		err       error
	)
	switch {
	case ua.passwordStdin:
		if password, err = readPassword(cmd.InOrStdin()); err != nil {
			return err
		}
	case ua.action == "add":
		password, generated = newSecret(), true
	}
	var store userStore
	switch {
	case ua.data != "":
		us, closeStore, err := openDataUsers(ua.data, ua.action == "add")
		if err != nil {
			return err
		}
		defer closeStore()
		store = storeUsers{us}
	case ua.table != "":
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("load AWS configuration: %w", err)
		}
		store = storeUsers{auth.NewUsers(awsstore.NewMetaStore(dynamodb.NewFromConfig(cfg), ua.table))}
	default:
		cred, err := envCredentials(getenv)
		if err != nil {
			return err
		}
		store = userClient{newOperatorClient(ua.registry, cred)}
	}
	return ua.run(ctx, store, password, generated, stdout, stderr)
}

// run executes the command against store and prints the result.
func (ua userArgs) run(ctx context.Context, store userStore, password string, generated bool, stdout, stderr io.Writer) error {
	var (
		u   httpapi.UserInfo
		err error
		msg string
	)
	switch ua.action {
	case "list":
		users, err := store.List(ctx)
		if err != nil {
			return err
		}
		if users == nil {
			users = []httpapi.UserInfo{}
		}
		if ua.json {
			return printJSON(stdout, httpapi.UserList{Users: users})
		}
		printUsers(stdout, users)
		return nil
	case "add":
		u, err = store.Add(ctx, ua.name, password, ua.robot, ua.admin)
		msg = "added " + describeUser(u)
	case "passwd":
		u, err = store.SetPassword(ctx, ua.name, password)
		msg = "replaced the password of " + ua.name
	case "grant":
		u, err = store.Grant(ctx, ua.name, ua.prefix, ua.actions)
		msg = fmt.Sprintf("granted %s on %s to %s", strings.Join(ua.actions, ","), ua.prefix, ua.name)
	case "revoke":
		u, err = store.Revoke(ctx, ua.name, ua.prefix, ua.actions)
		what := "the grant"
		if len(ua.actions) > 0 {
			what = strings.Join(ua.actions, ",")
		}
		msg = fmt.Sprintf("revoked %s on %s from %s", what, ua.prefix, ua.name)
	case "delete":
		u, err = store.Delete(ctx, ua.name)
		msg = "deleted " + describeUser(u)
	}
	if err != nil {
		return err
	}
	switch {
	case generated && ua.json:
		return printJSON(stdout, struct {
			User   httpapi.UserInfo `json:"user"`
			Secret string           `json:"secret"`
		}{u, password})
	case generated:
		// The secret alone on stdout, so SECRET=$(skiff user add ...) works;
		// everything else on stderr.
		fmt.Fprintf(stderr, "%s; its secret is on stdout and is shown only now: store it (skiff user passwd replaces it)\n", msg)
		printUser(stderr, u)
		fmt.Fprintln(stdout, password)
		return nil
	case ua.json:
		return printJSON(stdout, u)
	}
	fmt.Fprintln(stdout, msg)
	if ua.action != "delete" {
		printUser(stdout, u)
	}
	return nil
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordInput)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: stdin holds no password (pipe it in: printf '%s' \"$PASSWORD\" | skiff user ...)")
	}
	return line, nil
}

// newSecret returns a robot secret: 256 random bits, URL-safe.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openDataUsers opens the user store of skiff serve's data directory.
// Only add creates the store: any other command on a directory without one
// is a typo.
func openDataUsers(dir string, create bool) (*auth.Users, func() error, error) {
	path := filepath.Join(dir, "meta.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, nil, fmt.Errorf("%s holds no Skiff store (no meta.db); give the --data directory `skiff serve` uses", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	meta, err := local.OpenMetaStore(path)
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, nil, fmt.Errorf("%s is locked by another process, most likely a running `skiff serve --data %s` "+
			"(one process at a time may open it; gave up waiting): stop that server and retry, "+
			"or manage users through its operator API with --registry=URL as an admin", path, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	return auth.NewUsers(meta), meta.Close, nil
}

// storeUsers is a userStore over the user store itself (--data, --table).
type storeUsers struct{ us *auth.Users }

// storeError words the store's errors as the server does.
func storeError(name string, err error) error {
	switch {
	case errors.Is(err, auth.ErrNoUser):
		return fmt.Errorf("there is no user named %s", name)
	case errors.Is(err, auth.ErrUserExists):
		return fmt.Errorf("user %s already exists; change its password with skiff user passwd", name)
	}
	return err
}

func (s storeUsers) List(ctx context.Context) ([]httpapi.UserInfo, error) {
	us, err := s.us.List(ctx)
	out := make([]httpapi.UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, httpapi.NewUserInfo(u))
	}
	return out, err
}

func (s storeUsers) Add(ctx context.Context, name, password string, robot, admin bool) (httpapi.UserInfo, error) {
	u, err := s.us.Add(ctx, name, password, robot, admin)
	return httpapi.NewUserInfo(u), storeError(name, err)
}

func (s storeUsers) SetPassword(ctx context.Context, name, password string) (httpapi.UserInfo, error) {
	u, err := s.us.SetPassword(ctx, name, password)
	return httpapi.NewUserInfo(u), storeError(name, err)
}

func (s storeUsers) Grant(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error) {
	u, err := s.us.GrantAccess(ctx, name, prefix, actions)
	return httpapi.NewUserInfo(u), storeError(name, err)
}

func (s storeUsers) Revoke(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error) {
	u, err := s.us.Revoke(ctx, name, prefix, actions)
	return httpapi.NewUserInfo(u), storeError(name, err)
}

func (s storeUsers) Delete(ctx context.Context, name string) (httpapi.UserInfo, error) {
	u, err := s.us.Get(ctx, name)
	if err != nil {
		return httpapi.UserInfo{}, storeError(name, err)
	}
	return httpapi.NewUserInfo(u), storeError(name, s.us.Delete(ctx, name))
}

// userClient is a userStore over a server's operator API.
type userClient struct{ c *operatorClient }

func (uc userClient) List(ctx context.Context) ([]httpapi.UserInfo, error) {
	var out httpapi.UserList
	err := uc.c.do(ctx, http.MethodGet, "/v2/_skiff/users", "", nil, &out)
	return out.Users, err
}

func (uc userClient) Add(ctx context.Context, name, password string, robot, admin bool) (httpapi.UserInfo, error) {
	var u httpapi.UserInfo
	return u, uc.c.do(ctx, http.MethodPut, "/v2/_skiff/users/"+name, "", httpapi.UserRequest{Password: password, Robot: robot, Admin: admin}, &u)
}

func (uc userClient) SetPassword(ctx context.Context, name, password string) (httpapi.UserInfo, error) {
	var u httpapi.UserInfo
	return u, uc.c.do(ctx, http.MethodPut, "/v2/_skiff/users/"+name+"/password", "", httpapi.PasswordRequest{Password: password}, &u)
}

func (uc userClient) Grant(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error) {
	var u httpapi.UserInfo
	return u, uc.c.do(ctx, http.MethodPost, "/v2/_skiff/users/"+name+"/grants", "", httpapi.GrantRequest{Prefix: prefix, Actions: actions}, &u)
}

func (uc userClient) Revoke(ctx context.Context, name, prefix string, actions []string) (httpapi.UserInfo, error) {
	q := url.Values{"prefix": {prefix}}
	if len(actions) > 0 {
		q.Set("actions", strings.Join(actions, ","))
	}
	var u httpapi.UserInfo
	return u, uc.c.do(ctx, http.MethodDelete, "/v2/_skiff/users/"+name+"/grants?"+q.Encode(), "", nil, &u)
}

func (uc userClient) Delete(ctx context.Context, name string) (httpapi.UserInfo, error) {
	var u httpapi.UserInfo
	return u, uc.c.do(ctx, http.MethodDelete, "/v2/_skiff/users/"+name, "", nil, &u)
}

// describeUser names a user with its kind: "robot robot-ci (admin)".
func describeUser(u httpapi.UserInfo) string {
	s := "user " + u.Name
	if u.Robot {
		s = "robot " + u.Name
	}
	if u.Admin {
		s += " (admin)"
	}
	return s
}

// grantsText spells grants as team:pull,push mirror:pull.
func grantsText(gs []auth.Grant) string {
	if len(gs) == 0 {
		return "-"
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.Prefix + ":" + strings.Join(g.Actions, ",")
	}
	return strings.Join(parts, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printUser(w io.Writer, u httpapi.UserInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", u.Name)
	fmt.Fprintf(tw, "robot:\t%s\n", yesNo(u.Robot))
	fmt.Fprintf(tw, "admin:\t%s\n", yesNo(u.Admin))
	fmt.Fprintf(tw, "grants:\t%s\n", grantsText(u.Grants))
	fmt.Fprintf(tw, "created:\t%s\n", u.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "updated:\t%s\n", u.Updated.Format(time.RFC3339))
	tw.Flush()
}

func printUsers(w io.Writer, users []httpapi.UserInfo) {
	if len(users) == 0 {
		fmt.Fprintln(w, "no users: add the first admin with skiff user add NAME --admin --password-stdin --data DIR (or --table)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROBOT\tADMIN\tGRANTS\tUPDATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, yesNo(u.Robot), yesNo(u.Admin), grantsText(u.Grants), u.Updated.Format(time.RFC3339))
	}
	tw.Flush()
}
