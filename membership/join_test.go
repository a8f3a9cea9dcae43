package membership

import "testing"

func TestJoinDone(t *testing.T) {
	done := JoinProgress{Seeded: true, State: StateJoining, LeaderKnown: true, Commit: 10, Applied: 10}
	for _, c := range []struct {
		name string
		edit func(*JoinProgress)
		want bool
	}{
		{"caught up", func(*JoinProgress) {}, true},
		{"applied past the commit index it knows", func(p *JoinProgress) { p.Applied = 11 }, true},
		{"behind", func(p *JoinProgress) { p.Applied = 9 }, false},
		{"no commit index yet", func(p *JoinProgress) { p.Commit, p.Applied = 0, 0 }, false},
		{"not seeded", func(p *JoinProgress) { p.Seeded = false }, false},
		{"not joining", func(p *JoinProgress) { p.State = StateActive }, false},
		{"catching up", func(p *JoinProgress) { p.CatchingUp = true }, false},
		{"no leader", func(p *JoinProgress) { p.LeaderKnown = false }, false},
	} {
		p := done
		c.edit(&p)
		if got := JoinDone(p); got != c.want {
			t.Errorf("%s: JoinDone = %v, want %v", c.name, got, c.want)
		}
	}
}
