package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// Address puts the cluster address on this host and takes it off. Add and
// Del are idempotent; Owner calls them from one goroutine.
type Address interface {
	Add(ctx context.Context) error
	Del(ctx context.Context) error
	String() string
}

// Modes, as lockstepd's --vip-mode names them.
const (
	ModeNetlink = "netlink"
	ModeExec    = "exec"
	ModeNone    = "none"
)

// Netlink adds the address to a network interface and announces it with
// gratuitous ARP (a few times, so a lost frame does not strand clients on
// the old holder's MAC address).
//
// The address is added with a lifetime (addrLifetime) that the holder
// renews while it holds it: if lockstepd dies without giving it up (kill
// -9), the kernel drops the address by itself a few seconds later, so the
// host does not keep answering ARP for it beside the new holder.
type Netlink struct {
	link   netlink.Link
	ifi    *net.Interface
	prefix netip.Prefix
	addr   *netlink.Addr

	mu    sync.Mutex
	renew chan struct{} // closed by Del: stops the renewal
}

// addrLifetime is the address's valid and preferred lifetime in seconds;
// renewEvery is how often the holder renews it.
const (
	addrLifetime = 3
	renewEvery   = 500 * time.Millisecond
)

// Capabilities Netlink needs (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// NewNetlink checks that the interface exists and that this process may
// change its addresses and send ARP frames (CAP_NET_ADMIN, CAP_NET_RAW), and
// removes the address if a previous run left it there: a node starts as a
// follower, and only the leader may hold it.
func NewNetlink(iface string, prefix netip.Prefix) (*Netlink, error) {
	if !prefix.Addr().Is4() {
		return nil, fmt.Errorf("vip: %s: only IPv4 cluster addresses are supported (gratuitous ARP)", prefix)
	}
	for _, c := range []struct {
		bit  uint
		name string
	}{{capNetAdmin, "CAP_NET_ADMIN"}, {capNetRaw, "CAP_NET_RAW"}} {
		ok, err := hasCapability(c.bit)
		if err != nil {
			return nil, fmt.Errorf("vip: read this process's capabilities: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("vip: --vip-mode netlink needs %s to put %s on %s; run lockstepd as root or grant it (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW), or use --vip-mode exec or none", c.name, prefix, iface)
		}
	}
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q for the cluster address: %w (see `ip link`; set --vip-interface)", iface, err)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", iface, err)
	}
	a := &Netlink{link: link, ifi: ifi, prefix: prefix,
		addr: &netlink.Addr{IPNet: &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), 32)}}}
	if err := a.Del(context.Background()); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Netlink) String() string { return a.prefix.String() + " on " + a.ifi.Name }

// Add puts the address on the interface (renewing its lifetime until
// Del) and announces it.
func (a *Netlink) Add(ctx context.Context) error {
	if err := a.replace(); err != nil {
		return err
	}
	a.mu.Lock()
	if a.renew == nil {
		a.renew = make(chan struct{})
		go a.renewLoop(a.renew)
	}
	a.mu.Unlock()
	go a.announce(ctx)
	return nil
}

func (a *Netlink) replace() error {
	x := *a.addr
	x.ValidLft, x.PreferedLft = addrLifetime, addrLifetime
	if err := netlink.AddrReplace(a.link, &x); err != nil {
		return fmt.Errorf("vip: add %s: %w", a, err)
	}
	return nil
}

func (a *Netlink) renewLoop(stop chan struct{}) {
	t := time.NewTicker(renewEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		if a.renew == stop { // not released meanwhile
			_ = a.replace()
		}
		a.mu.Unlock()
	}
}

// Del stops the renewal and takes the address off the interface.
func (a *Netlink) Del(context.Context) error {
	a.mu.Lock()
	if a.renew != nil {
		close(a.renew)
		a.renew = nil
	}
	a.mu.Unlock()
	if err := netlink.AddrDel(a.link, a.addr); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("vip: remove %s: %w", a, err)
	}
	return nil
}

// announceAt are the delays after Add at which gratuitous ARP is sent
// (repeated, so a lost frame does not strand clients on the old holder).
var announceAt = []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, time.Second, 2 * time.Second}

// announce sends gratuitous ARP (sender and target the cluster address,
// to broadcast) so neighbours update their caches at once: a request with
// an empty target MAC and a reply whose target MAC is the sender's, the
// two forms Linux takes as gratuitous and so applies even within its
// locktime (net/ipv4/arp.c arp_is_garp); a reply to broadcast would be
// held back by it.
func (a *Netlink) announce(ctx context.Context) {
	c, err := arp.Dial(a.ifi)
	if err != nil {
		return // the address still works once neighbours ask again
	}
	defer c.Close()
	ip := a.prefix.Addr()
	mac := a.ifi.HardwareAddr
	req, err1 := arp.NewPacket(arp.OperationRequest, mac, ip, net.HardwareAddr{0, 0, 0, 0, 0, 0}, ip)
	rep, err2 := arp.NewPacket(arp.OperationReply, mac, ip, mac, ip)
	if err1 != nil || err2 != nil {
		return
	}
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	start := time.Now()
	for _, at := range announceAt {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(at))):
		}
		if !a.present() {
			return // released meanwhile
		}
		_ = c.WriteTo(req, broadcast)
		_ = c.WriteTo(rep, broadcast)
	}
}

func (a *Netlink) present() bool {
	addrs, err := netlink.AddrList(a.link, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if x.IP.Equal(a.addr.IP) {
			return true
		}
	}
	return false
}

// hasCapability reports whether bit is in this process's effective set.
func hasCapability(bit uint) (bool, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, err
			}
			return caps&(1<<bit) != 0, nil
		}
	}
	return false, errors.New("no CapEff line in /proc/self/status")
}

// Exec runs the operator's script as `script add <address>` and `script
// del <address>`; a non-zero exit is an error (Owner retries).
type Exec struct {
	Script  string
	Addr    string
	Timeout time.Duration // per run; 0 means 5s
}

// NewExec checks the script can be run.
func NewExec(script, addr string) (*Exec, error) {
	if script == "" {
		return nil, errors.New("vip: --vip-mode exec needs --vip-script (run as `script add|del <address>`)")
	}
	if _, err := exec.LookPath(script); err != nil {
		return nil, fmt.Errorf("vip: --vip-script %s: %w", script, err)
	}
	return &Exec{Script: script, Addr: addr}, nil
}

func (e *Exec) String() string { return e.Addr + " via " + e.Script }

func (e *Exec) Add(ctx context.Context) error { return e.run(ctx, "add") }
func (e *Exec) Del(ctx context.Context) error { return e.run(ctx, "del") }

func (e *Exec) run(ctx context.Context, op string) error {
	t := e.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.Script, op, e.Addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vip: %s %s %s: %w: %s", e.Script, op, e.Addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// None changes nothing on the host.
type None struct{ Addr string }

func (n None) String() string          { return n.Addr + " (no address change)" }
func (None) Add(context.Context) error { return nil }
func (None) Del(context.Context) error { return nil }
