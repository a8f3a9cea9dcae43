// Command lockstep-console is the Lockstep desktop console: a client of any
// node's admin API that shows every node as a glyph coloured by its state,
// charts the cluster's traffic, lists its events, and carries out operator
// actions (node states, membership, leadership, checksums, balancing).
//
// It reads the admin endpoints, token and CA file from --endpoint, --token
// and --cacert, or from LOCKSTEP_ENDPOINT, LOCKSTEP_TOKEN and
// LOCKSTEP_CACERT like clusterctl; list several endpoints (comma
// separated) and it follows the cluster when one member goes away.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"os"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/dialog"

	"github.com/lockstepdb/lockstep/console/ui"
	"github.com/lockstepdb/lockstep/console/view"
)

// config is the console's command line.
type config struct {
	// endpoint is the admin API of one or more members (comma separated).
	endpoint string
	token    string
	cacert   string
	// fromDemo is a file holding the line `lockstepd demo --json` printed:
	// the endpoints and token come from it.
	fromDemo string
	interval time.Duration
	// demoAction ("standby:n2") runs a node action through the context
	// menu's path once the window shows the node; screenshot is where to
	// write a PNG of the window once the node's glyph shows the new state
	// (then the console quits when exitAfterShot).
	demoAction    string
	demoWait      time.Duration
	screenshot    string
	exitAfterShot bool
}

func main() {
	cfg := config{}
	env := view.ConfigFromEnv()
	flag.StringVar(&cfg.endpoint, "endpoint", strings.Join(env.Endpoints, ","), "admin API of any member, or several, comma separated (env LOCKSTEP_ENDPOINT)")
	flag.StringVar(&cfg.token, "token", env.Token, "admin token (env LOCKSTEP_TOKEN)")
	flag.StringVar(&cfg.cacert, "cacert", env.CAFile, "PEM CA certificate for https endpoints (env LOCKSTEP_CACERT)")
	flag.StringVar(&cfg.fromDemo, "from-demo", "", "read endpoints, token and CA from the JSON line of `lockstepd demo --json` in this file")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "how often to poll the cluster")
	flag.StringVar(&cfg.demoAction, "demo-action", "", "run ACTION:NODE (e.g. standby:n2) through the context menu's path once the node shows")
	flag.DurationVar(&cfg.demoWait, "demo-wait", 3*time.Second, "how long --demo-action waits after the start (so the charts fill)")
	flag.StringVar(&cfg.screenshot, "screenshot", "", "write a PNG of the window here once --demo-action's change shows (or after 10s)")
	flag.BoolVar(&cfg.exitAfterShot, "exit-after-screenshot", false, "quit after writing --screenshot")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "lockstep-console:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	vc := view.Config{Endpoints: view.SplitEndpoints(cfg.endpoint), Token: cfg.token, CAFile: cfg.cacert}
	if cfg.fromDemo != "" {
		if err := readDemo(cfg.fromDemo, &vc); err != nil {
			return err
		}
	}
	f, err := view.NewFollower(vc)
	if err != nil {
		return err
	}
	a := app.NewWithID("io.lockstep.console")
	c := ui.New(a, f, view.NewModel(ui.Samples))
	if cfg.demoAction != "" || cfg.screenshot != "" {
		if err := driveDemo(a, c, cfg); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, cfg.interval)
	c.Window().ShowAndRun()
	return nil
}

// readDemo takes the endpoints, token and CA from `lockstepd demo --json`.
func readDemo(path string, vc *view.Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--from-demo: %w", err)
	}
	var info struct {
		Nodes []struct {
			Admin string `json:"admin"`
		} `json:"nodes"`
		AdminToken string `json:"admin_token"`
		CA         string `json:"ca"`
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	if err := json.Unmarshal(line, &info); err != nil || len(info.Nodes) == 0 {
		return fmt.Errorf("--from-demo %s: not the line `lockstepd demo --json` prints (%v)", path, err)
	}
	scheme := "http://"
	if info.CA != "" {
		scheme, vc.CAFile = "https://", info.CA
	}
	vc.Endpoints = nil
	for _, n := range info.Nodes {
		vc.Endpoints = append(vc.Endpoints, scheme+n.Admin)
	}
	vc.Token = info.AdminToken
	return nil
}

// driveDemo runs --demo-action through the console's action path (the one
// the context menu uses, confirmation included: the dialog is shown and
// accepted) and writes --screenshot once the glyph shows the change.
func driveDemo(a fyne.App, c *ui.Console, cfg config) error {
	var act view.Action
	var node string
	if cfg.demoAction != "" {
		s, n, ok := strings.Cut(cfg.demoAction, ":")
		act, node = view.Action(s), n
		if !ok || act.State() == "" || node == "" {
			return errors.New("--demo-action: want STATE:NODE with a state of active, standby, maintenance or offline, e.g. standby:n2")
		}
	}
	c.Confirm = func(title, msg string, ok func()) {
		d := dialog.NewConfirm(title, msg, func(yes bool) {
			if yes {
				ok()
			}
		}, c.Window())
		d.Show()
		fmt.Fprintf(os.Stderr, "lockstep-console: confirmation shown (%s); accepting it for --demo-action\n", title)
		time.AfterFunc(1500*time.Millisecond, func() { fyne.Do(d.Confirm) })
	}
	start := time.Now()
	acted, shot := false, false
	var changedAt time.Time
	c.OnView = func(v view.View) {
		if shot {
			return
		}
		for _, n := range v.Nodes {
			if act != "" && n.ID == node && !acted && n.Answered && time.Since(start) > cfg.demoWait {
				acted = true
				fmt.Fprintf(os.Stderr, "lockstep-console: %s on %s (was %s)\n", act.Label(), node, n.Label)
				c.Act(node, act)
			}
			if act != "" && n.ID == node && acted && n.NodeState == act.State() && changedAt.IsZero() {
				changedAt = time.Now()
				fmt.Fprintf(os.Stderr, "lockstep-console: %s shows %s\n", node, n.Label)
			}
		}
		ready := (act == "" && time.Since(start) > 10*time.Second) || (!changedAt.IsZero() && time.Since(changedAt) > 3*time.Second)
		if cfg.screenshot == "" || !ready {
			return
		}
		shot = true
		if err := capture(c.Window(), cfg.screenshot); err != nil {
			fmt.Fprintln(os.Stderr, "lockstep-console: screenshot:", err)
		} else {
			fmt.Fprintln(os.Stderr, "lockstep-console: wrote", cfg.screenshot)
		}
		if cfg.exitAfterShot {
			a.Quit()
		}
	}
	return nil
}

func capture(w fyne.Window, path string) error {
	img := w.Canvas().Capture()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
