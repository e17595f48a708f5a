package scheduler

import "slices"

// readyQueue holds the ready tasks in priority order: by key, larger
// first, then by submission. A task's key is base*AgingStep - readyAt
// (see makeReady), and the clock only moves forward, so the tasks of one
// base become ready in key order: the queue is one append-only list per
// base (eleven at most), merged when Next walks it.
type readyQueue struct {
	lists []*readyList // by base, highest first
	n     int
}

type readyList struct {
	base  int64
	tasks []*task
}

func before(a, b *task) int {
	switch {
	case a.key > b.key:
		return -1
	case a.key < b.key:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

func (q *readyQueue) list(base int64) *readyList {
	i, ok := slices.BinarySearchFunc(q.lists, base, func(l *readyList, b int64) int { return compareInts(b, l.base) })
	if !ok {
		q.lists = slices.Insert(q.lists, i, &readyList{base: base})
	}
	return q.lists[i]
}

func compareInts(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (q *readyQueue) push(t *task, base int64) {
	l := q.list(base)
	if n := len(l.tasks); n == 0 || before(l.tasks[n-1], t) < 0 {
		l.tasks = append(l.tasks, t)
	} else {
		// A clock that went back: keep the order anyway.
		i, _ := slices.BinarySearchFunc(l.tasks, t, before)
		l.tasks = slices.Insert(l.tasks, i, t)
	}
	q.n++
}

func (q *readyQueue) remove(t *task, base int64) {
	l := q.list(base)
	if i, ok := slices.BinarySearchFunc(l.tasks, t, before); ok {
		l.tasks = slices.Delete(l.tasks, i, i+1)
		q.n--
	}
}

// filter walks the tasks in priority order and drops those visit does
// not keep. Once visit says stop, it and every task after it are kept.
func (q *readyQueue) filter(visit func(t *task) (keep, stop bool)) {
	read := make([]int, len(q.lists))
	write := make([]int, len(q.lists))
	for {
		best := -1
		for i, l := range q.lists {
			if read[i] < len(l.tasks) && (best < 0 || before(l.tasks[read[i]], q.lists[best].tasks[read[best]]) < 0) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		l := q.lists[best]
		t := l.tasks[read[best]]
		read[best]++
		keep, stop := visit(t)
		if keep {
			l.tasks[write[best]] = t
			write[best]++
		}
		if stop {
			break
		}
	}
	q.n = 0
	for i, l := range q.lists {
		rest := copy(l.tasks[write[i]:], l.tasks[read[i]:])
		clear(l.tasks[write[i]+rest:])
		l.tasks = l.tasks[:write[i]+rest]
		q.n += len(l.tasks)
	}
}
