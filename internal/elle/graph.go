package elle

import (
	"sort"
)

// graph is the dependency graph: txn -> txn -> edge kinds.
type graph struct {
	out   map[int]map[int]map[string]bool
	edges int
}

func newGraph() *graph { return &graph{out: map[int]map[int]map[string]bool{}} }

func (g *graph) add(from, to int, kind string) {
	m := g.out[from]
	if m == nil {
		m = map[int]map[string]bool{}
		g.out[from] = m
	}
	if m[to] == nil {
		m[to] = map[string]bool{}
	}
	if !m[to][kind] {
		m[to][kind] = true
		g.edges++
	}
}

// cycles reports one cycle per strongly connected component, classified
// by the weakest edge set that closes it: ww only (G0), ww and wr (G1c),
// one rw (G-single), more (G2).
func (g *graph) cycles() []Anomaly {
	var out []Anomaly
	for _, scc := range g.sccs(allKinds) {
		in := map[int]bool{}
		for _, v := range scc {
			in[v] = true
		}
		found := false
		for _, level := range []struct {
			kind  string
			kinds map[string]bool
		}{{G0, map[string]bool{WW: true}}, {G1c, map[string]bool{WW: true, WR: true}}} {
			if c, ok := g.cycleWithin(in, level.kinds, 0); ok {
				out = append(out, g.anomaly(level.kind, c, level.kinds))
				found = true
				break
			}
		}
		if found {
			continue
		}
		if c, ok := g.cycleWithin(in, allKinds, 1); ok {
			out = append(out, g.anomaly(GSingle, c, allKinds))
			continue
		}
		if c, ok := g.cycleWithin(in, allKinds, -1); ok {
			out = append(out, g.anomaly(G2, c, allKinds))
		}
	}
	return out
}

var allKinds = map[string]bool{WW: true, WR: true, RW: true}

func (g *graph) anomaly(kind string, cycle []int, kinds map[string]bool) Anomaly {
	a := Anomaly{Kind: kind, Txns: cycle, Detail: "dependency cycle"}
	for i, from := range cycle {
		to := cycle[(i+1)%len(cycle)]
		a.Edges = append(a.Edges, g.label(from, to, kinds))
	}
	return a
}

// label is the edge's kind, preferring the strongest allowed (ww, wr, rw).
func (g *graph) label(from, to int, kinds map[string]bool) string {
	for _, k := range []string{WW, WR, RW} {
		if kinds[k] && g.out[from][to][k] {
			return k
		}
	}
	return "?"
}

// cycleWithin finds a cycle among the nodes in, using edges of the given
// kinds, with at most maxRW read-write edges (-1: any; 1: exactly one, the
// cycle's closing edge). Breadth-first from each node, so cycles are short.
func (g *graph) cycleWithin(in map[int]bool, kinds map[string]bool, maxRW int) ([]int, bool) {
	nodes := make([]int, 0, len(in))
	for v := range in {
		nodes = append(nodes, v)
	}
	sort.Ints(nodes)
	step := func(from int, rwAllowed bool, f func(to int)) {
		tos := make([]int, 0, len(g.out[from]))
		for to := range g.out[from] {
			tos = append(tos, to)
		}
		sort.Ints(tos)
		for _, to := range tos {
			if !in[to] {
				continue
			}
			ks := g.out[from][to]
			ok := false
			for k := range ks {
				if kinds[k] && (k != RW || rwAllowed) {
					ok = true
				}
			}
			if ok {
				f(to)
			}
		}
	}
	for _, start := range nodes {
		if maxRW == 1 {
			// One rw edge start -> x, then a path x -> start without rw.
			var firsts []int
			for to, ks := range g.out[start] {
				if in[to] && ks[RW] {
					firsts = append(firsts, to)
				}
			}
			sort.Ints(firsts)
			for _, x := range firsts {
				if p, ok := g.path(x, start, func(f int, fn func(int)) { step(f, false, fn) }); ok {
					return append([]int{start}, p[:len(p)-1]...), true
				}
			}
			continue
		}
		var firsts []int
		step(start, maxRW != 0, func(to int) { firsts = append(firsts, to) })
		for _, x := range firsts {
			if x == start {
				return []int{start}, true
			}
			if p, ok := g.path(x, start, func(f int, fn func(int)) { step(f, maxRW != 0, fn) }); ok {
				return append([]int{start}, p[:len(p)-1]...), true
			}
		}
	}
	return nil, false
}

// path is a shortest path from -> to (both included) by next.
func (g *graph) path(from, to int, next func(int, func(int))) ([]int, bool) {
	prev := map[int]int{from: from}
	queue := []int{from}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		if v == to {
			var p []int
			for x := to; ; x = prev[x] {
				p = append([]int{x}, p...)
				if x == from {
					break
				}
			}
			return p, true
		}
		next(v, func(w int) {
			if _, seen := prev[w]; !seen {
				prev[w] = v
				queue = append(queue, w)
			}
		})
	}
	return nil, false
}

// sccs are the strongly connected components with more than one node
// (Tarjan's algorithm, iterative), over edges of the given kinds.
func (g *graph) sccs(kinds map[string]bool) [][]int {
	index := map[int]int{}
	low := map[int]int{}
	onStack := map[int]bool{}
	var stack []int
	var out [][]int
	next := 0
	nodes := make([]int, 0, len(g.out))
	for v := range g.out {
		nodes = append(nodes, v)
	}
	sort.Ints(nodes)
	succ := func(v int) []int {
		var s []int
		for to, ks := range g.out[v] {
			for k := range ks {
				if kinds[k] {
					s = append(s, to)
					break
				}
			}
		}
		sort.Ints(s)
		return s
	}
	type frame struct {
		v    int
		succ []int
		i    int
	}
	for _, root := range nodes {
		if _, seen := index[root]; seen {
			continue
		}
		frames := []*frame{{v: root, succ: succ(root)}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(frames) > 0 {
			f := frames[len(frames)-1]
			if f.i < len(f.succ) {
				w := f.succ[f.i]
				f.i++
				if _, seen := index[w]; !seen {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					frames = append(frames, &frame{v: w, succ: succ(w)})
				} else if onStack[w] && index[w] < low[f.v] {
					low[f.v] = index[w]
				}
				continue
			}
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				p := frames[len(frames)-1]
				if low[f.v] < low[p.v] {
					low[p.v] = low[f.v]
				}
			}
			if low[f.v] == index[f.v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == f.v {
						break
					}
				}
				if len(comp) > 1 {
					sort.Ints(comp)
					out = append(out, comp)
				}
			}
		}
	}
	return out
}
